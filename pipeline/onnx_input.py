"""The per-sample input shape of an ONNX model (the batch dimension excluded)."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import UserError


def onnx_sample_shape(path: Path) -> tuple[int, ...]:
    """``(C, H, W)`` of the first graph input; raises ``UserError`` for unreadable or dynamic models."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (OSError, ValueError, DecodeError) as error:
        raise UserError(f"{path} is not a readable ONNX model ({error})") from None
    if not model.graph.input:
        raise UserError(f"{path}: the ONNX graph has no input")
    dims = model.graph.input[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value for d in dims[1:])
    if not shape or any(v <= 0 for v in shape):
        raise UserError(f"{path}: the ONNX input needs static non-batch dimensions, got {shape}")
    return shape
