"""An ONNX model given as the run's input: its per-sample input shape (the batch dimension excluded),
static dimensions from ``--input-shape``, and the line that says which stages it skips."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import UserError

SHAPE_OPTION = "--input-shape"


def onnx_sample_shape(path: Path) -> tuple[int, ...]:
    """``(C, H, W)`` of the graph input; raises ``UserError`` for unreadable models or dynamic dimensions."""
    model = _load(path)
    value = _graph_input(model, path)
    dims = value.type.tensor_type.shape.dim
    if not dims:
        raise UserError(f"{path}: the rank of ONNX input {value.name!r} is unknown; it needs a declared shape")
    dynamic = [index for index, dim in enumerate(dims) if index > 0 and not dim.dim_value > 0]
    if dynamic:
        names = ", ".join(_dim_text(dims[index], index) for index in dynamic)
        hint = ",".join(str(dim.dim_value) if dim.dim_value > 0 else f"<{_dim_text(dim, index)}>"
                        for index, dim in enumerate(dims) if index > 0)
        raise UserError(f"{path}: ONNX input {value.name!r} {_shape_text(dims)} has dynamic dimension(s) {names}; "
                        f"fix them with {SHAPE_OPTION} {hint}")
    return tuple(dim.dim_value for dim in dims[1:])


def onnx_input_bytes(path: Path, *, sample_shape: tuple[int, ...] | None) -> bytes:
    """The bytes of the run's copy of ``path``: the file as it is, or with its input's non-batch
    dimensions set to ``sample_shape`` (``--input-shape``); the result must have static ones.

    External data stays where it is (only the graph's input type changes).
    """
    if not sample_shape:
        onnx_sample_shape(path)
        return path.read_bytes()
    model = _load(path)
    value = _graph_input(model, path)
    dims = value.type.tensor_type.shape.dim
    if dims and len(dims) != len(sample_shape) + 1:
        raise UserError(f"{path}: {SHAPE_OPTION} {','.join(map(str, sample_shape))} gives {len(sample_shape)} dimensions, "
                        f"ONNX input {value.name!r} {_shape_text(dims)} has {len(dims) - 1} besides the batch")
    if not dims:
        dims.add()
        for _ in sample_shape:
            dims.add()
    for index, (dim, size) in enumerate(zip(dims[1:], sample_shape), start=1):
        if dim.dim_value > 0 and dim.dim_value != size:
            raise UserError(f"{path}: {SHAPE_OPTION} sets dimension {index} of ONNX input {value.name!r} to {size}, "
                            f"but the model fixes it to {dim.dim_value} {_shape_text(dims)}")
        dim.Clear()
        dim.dim_value = size
    return model.SerializeToString()


def onnx_run_notice(skipped: list[str]) -> str:
    """The line ``compress run`` prints for an ONNX input: the stages it skips."""
    return (f"ONNX input: compiled as it is; {', '.join(skipped)} need a PyTorch model "
            "(give a checkpoint, TorchScript or .pt2 file to compress it)")


def _load(path: Path):
    import onnx
    from google.protobuf.message import DecodeError

    try:
        return onnx.load(str(path), load_external_data=False)
    except (OSError, ValueError, DecodeError) as error:
        raise UserError(f"{path} is not a readable ONNX model ({error})") from None


def _graph_input(model, path: Path):
    """The graph input that is not an initializer (the compile stage takes models with exactly one)."""
    initializers = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if not inputs:
        raise UserError(f"{path}: the ONNX graph has no input")
    if len(inputs) > 1:
        raise UserError(f"{path}: the ONNX graph has {len(inputs)} inputs ({', '.join(v.name for v in inputs)}); "
                        "models with one input are supported")
    return inputs[0]


def _dim_text(dim, index: int) -> str:
    return dim.dim_param or f"dim{index}"


def _shape_text(dims) -> str:
    return "[" + ", ".join(str(dim.dim_value) if dim.dim_value > 0 else (dim.dim_param or "?") for dim in dims) + "]"
