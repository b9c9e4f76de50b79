"""Dense ONNX export with torch and the map from weight initializers to torch names."""

from __future__ import annotations

import io
import warnings

import onnx
import torch

from deploy.onnx.errors import OnnxFormatError
from deploy.onnx.fold import fold_constants

WEIGHT_OPS = {"Conv": (1,), "ConvTranspose": (1,), "Gemm": (1, 0), "MatMul": (1, 0)}
INPUT_NAME, OUTPUT_NAME = "input", "output"


def export_dense(model: torch.nn.Module, example_input: torch.Tensor, *, opset: int) -> onnx.ModelProto:
    """Export ``model`` (in eval mode) with a dynamic batch dimension, BN folded into conv.

    Uses the TorchScript exporter (``dynamo=False``): with ``do_constant_folding`` in eval mode it
    folds BatchNorm into the preceding conv and keeps parameters as initializers named by ``fqn``.
    """
    was_training = model.training
    model.eval()
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example_input,), buffer, dynamo=False, opset_version=opset,
                do_constant_folding=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
    finally:
        model.train(was_training)
    return onnx.load_from_string(buffer.getvalue())


def _module_from_scope(node_name: str, module_names: set[str]) -> str | None:
    """Module fqn from a TorchScript node name such as ``/layer/layer.0/conv1/Conv``."""
    parts = [p for p in node_name.split("/") if p][:-1]
    current = ""
    for part in parts:
        joined = f"{current}.{part}" if current else part
        if joined in module_names:
            current = joined
        elif part in module_names:
            current = part
        else:
            return None
    return current or None


def weight_initializers(model_proto: onnx.ModelProto, module: torch.nn.Module) -> list[tuple[str, str, str]]:
    """``(initializer, fqn, op)`` for every float initializer consumed as a conv / linear weight.

    The fqn is the initializer name when it is a parameter name, else the ``.weight`` of the module
    named by the consuming node's scope (BN-folded convs get new initializer names), else the
    initializer name itself.
    """
    initializers = {init.name: init for init in model_proto.graph.initializer}
    params = dict(module.named_parameters())
    module_names = {name for name, _ in module.named_modules() if name}
    found: dict[str, tuple[str, str, str]] = {}
    for node in model_proto.graph.node:
        for position in WEIGHT_OPS.get(node.op_type, ()):
            name = node.input[position] if position < len(node.input) else ""
            init = initializers.get(name)
            if init is None or len(init.dims) < 2 or init.data_type != onnx.TensorProto.FLOAT or name in found:
                continue
            found[name] = (name, _fqn(name, node.name, params, module_names), node.op_type)
    return list(found.values())


def _fqn(name: str, node_name: str, params: dict, module_names: set[str]) -> str:
    if name in params:
        return name
    owner = _module_from_scope(node_name, module_names)
    if owner is not None and f"{owner}.weight" in params:
        return f"{owner}.weight"
    return name


def check_opset(opset: int) -> None:
    """Raise unless ``opset`` supports our decode ops (``ScatterElements`` add needs >= 16)."""
    if not isinstance(opset, int) or opset < 17:
        raise OnnxFormatError(f"opset must be an int >= 17, got {opset!r}")


def export_folded(model: torch.nn.Module, example_input: torch.Tensor, *, opset: int) -> tuple[onnx.ModelProto, list]:
    """The dense ONNX of ``model`` with shape arithmetic and constant chains folded (computed pads,
    Reshape targets) and its conv / linear weights kept as exported, plus those weights as
    :func:`weight_initializers` lists them. Raises :class:`OnnxFormatError` for an unsupported opset."""
    check_opset(opset)
    dense = export_dense(model, example_input, opset=opset)
    weights = weight_initializers(dense, model)
    return fold_constants(dense, keep={name for name, _, _ in weights}), weights
