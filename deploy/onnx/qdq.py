"""QDQ int8 ONNX: ``QuantizeLinear`` / ``DequantizeLinear`` around every int8 conv / linear node.

For a layer with int8 weight codes ``q_w`` (per output channel scales ``s_w``), input scale ``s_in``
and output scale ``s_out`` (zero points 0, symmetric; Jacob et al., "Quantization and Training of
Neural Networks for Efficient Integer-Arithmetic-Only Inference", CVPR 2018; the QDQ form of the
ONNX operator set, onnxruntime's "QDQ format")::

    x -> QuantizeLinear(s_in) -> DequantizeLinear(s_in) --\\
    q_w (int8 initializer) -> DequantizeLinear(s_w, axis) --> Conv / Gemm / MatMul -> QuantizeLinear(s_out)
    q_b (int32 initializer) -> DequantizeLinear(s_in s_w) -/                          -> DequantizeLinear(s_out) -> y

The weights are stored as int8 (one byte each), the biases as int32. onnxruntime's graph optimizer
(``ORT_ENABLE_ALL``) fuses these node groups into ``QLinearConv`` / ``QGemm`` / ``QLinearMatMul``
(or ``MatMulIntegerToFloat`` when the output stays float), i.e. integer kernels; without graph
optimization the same file computes the float simulation the torch fake-quantized model computes.

The nodes are written with ``onnx.helper`` from the exact codes of our calibrated model rather than
by ``onnxruntime.quantization.quantize_static``: that tool re-derives every scale from its own
calibration and quantizes every tensor it supports, so its model would not be the one we trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from compress.types import QuantRecord
from deploy.onnx.errors import OnnxFormatError
from deploy.onnx.metadata import PREPROCESS_KEY, set_metadata
from deploy.onnx.sizes import LayerSize, SizeTable, size_table
from deploy.onnx.torch_export import export_folded

QDQ_KEY = "compress.qdq"
QDQ_OPS = ("Conv", "Gemm", "MatMul")
INT8_FUSED_OPS = ("QLinearConv", "QLinearMatMul", "QGemm", "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat")


@dataclass(frozen=True)
class QdqLayer:
    """One int8 node of the graph: the weight's ``fqn``, its initializer and scales."""

    fqn: str
    initializer: str
    op: str
    input_scale: float
    output_scale: float | None
    record: QuantRecord


@dataclass(frozen=True)
class QdqExportResult:
    """What ``export_qdq`` wrote: the file, its size table and one metadata record per int8 layer."""

    path: Path
    sizes: SizeTable
    layers: list[dict]


def export_qdq(
    model: torch.nn.Module,
    example_input: torch.Tensor,
    path: str | Path,
    *,
    records: list[QuantRecord],
    activations: dict[str, tuple[float, float | None]],
    opset: int = 17,
    preprocess: dict | None = None,
) -> QdqExportResult:
    """Export ``model`` (int8 weights written by the int8 method, activations in float) as a QDQ ONNX.

    Args:
        model: the plain module (no fake-quantization hooks): its int8 layers hold ``codes * scales``.
        example_input: a batch for the export trace.
        path: output file.
        records: the int8 weights' records (other schemes are refused).
        activations: ``{weight fqn: (input scale, output scale or None)}`` of every int8 layer.
        opset: default-domain opset (>= 17).
        preprocess: input preprocessing, stored as JSON metadata.

    Raises:
        OnnxFormatError: a record that is not int8, a weight that is not exactly ``codes * scales``, an
            int8 layer the graph does not consume as a Conv / Gemm / MatMul weight.
    """
    dense, weights = export_folded(model, example_input, opset=opset)
    layers = _qdq_layers(weights, records=records, activations=activations)
    quantized = quantize_graph(dense, layers)
    records_out = [_metadata(layer) for layer in layers]
    set_metadata(quantized, key=QDQ_KEY, value=records_out)
    set_metadata(quantized, key=PREPROCESS_KEY, value=preprocess or {})
    onnx.checker.check_model(quantized, full_check=True)
    data = quantized.SerializeToString()
    path = Path(path)
    path.write_bytes(data)
    sizes = size_table(dense=dense.SerializeToString(), compressed=data, layers=_layer_sizes(quantized, weights, layers))
    return QdqExportResult(path, sizes, records_out)


def _qdq_layers(weights, *, records: list[QuantRecord], activations: dict) -> list[QdqLayer]:
    by_fqn = {record.fqn: record for record in records}
    bad = [record.fqn for record in records if record.scheme != "int8"]
    if bad:
        raise OnnxFormatError(f"QDQ export takes int8 weights only; {bad[0]!r} is {by_fqn[bad[0]].scheme}")
    missing = sorted(set(activations) - set(by_fqn))
    if missing:
        raise OnnxFormatError(f"activation scales for {missing[0]!r}, which has no int8 weight record")
    layers = []
    for initializer, fqn, op in weights:
        if fqn in activations:
            if op not in QDQ_OPS:
                raise OnnxFormatError(f"int8 weight {fqn!r} feeds a {op}; QDQ export handles {', '.join(QDQ_OPS)}")
            input_scale, output_scale = activations[fqn]
            layers.append(QdqLayer(fqn, initializer, op, float(input_scale), output_scale, by_fqn[fqn]))
    unseen = sorted(set(activations) - {layer.fqn for layer in layers})
    if unseen:
        raise OnnxFormatError(f"int8 weight {unseen[0]!r} is not a conv / linear weight of the exported graph")
    return layers


def channel_axis(node: onnx.NodeProto) -> int:
    """Output-channel axis of the weight a Conv / Gemm / MatMul node consumes as input 1."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        trans_b = next((attr.i for attr in node.attribute if attr.name == "transB"), 0)
        return 0 if trans_b else 1
    return 1


def exact_codes(weight: np.ndarray, scales: np.ndarray, *, axis: int, fqn: str) -> np.ndarray:
    """int8 codes ``q`` with ``q * scales == weight`` exactly (scales along ``axis``, one or per channel)."""
    shape = [1] * weight.ndim
    shape[axis] = -1
    step = scales.astype(np.float32).reshape(shape) if scales.size > 1 else scales.astype(np.float32).reshape([1] * weight.ndim)
    safe = np.where(step > 0, step, np.float32(1.0))
    codes = np.clip(np.round(weight / safe), -127, 127)
    if not np.array_equal(codes.astype(np.float32) * step, weight):
        raise OnnxFormatError(f"weight {fqn!r} is not exactly int8 codes times its scales (changed after the int8 method, "
                              "or a BatchNorm folded into it at export: fold BatchNorm before quantizing)")
    return codes.astype(np.int8)


def quantize_graph(model: onnx.ModelProto, layers: list[QdqLayer]) -> onnx.ModelProto:
    """A copy of ``model`` with each layer's weight, bias, input and output in QDQ form.

    A ``MatMul`` whose bias is a following ``Add`` of an initializer (torch's linear on 3-d inputs)
    keeps that float ``Add``; its output is quantized after the ``Add``, where the torch module's
    output is.
    """
    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    inits = {init.name: init for init in graph.initializer}
    by_weight = {layer.initializer: layer for layer in layers}
    bias_adds = _bias_adds(graph, by_weight, inits)
    nodes: list[onnx.NodeProto] = []
    deferred: dict[int, tuple[QdqLayer, str]] = {}
    for index, node in enumerate(graph.node):
        layer = by_weight.get(node.input[1]) if node.op_type in QDQ_OPS and len(node.input) > 1 else None
        if layer is None:
            nodes.append(node)
            if index in deferred:
                nodes += _quantized_output(graph, node, *deferred.pop(index))
            continue
        prefix = f"{layer.initializer}_qdq{index}"
        nodes += _quantized_input(graph, node, layer, prefix)
        nodes += _quantized_weight(graph, node, layer, inits, prefix)
        nodes += _quantized_bias(graph, node, layer, inits, prefix)
        nodes.append(node)
        if index in bias_adds:
            deferred[bias_adds[index]] = (layer, prefix)
        else:
            nodes += _quantized_output(graph, node, layer, prefix)
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return result


def _bias_adds(graph, by_weight: dict, inits: dict) -> dict[int, int]:
    """``{MatMul node index: index of the Add that adds its bias initializer}``."""
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            consumers.setdefault(name, []).append(index)
    found = {}
    for index, node in enumerate(graph.node):
        if node.op_type != "MatMul" or len(node.input) < 2 or node.input[1] not in by_weight:
            continue
        users = consumers.get(node.output[0], [])
        if len(users) == 1 and graph.node[users[0]].op_type == "Add" and any(name in inits for name in graph.node[users[0]].input):
            found[index] = users[0]
    return found


def _scalar(graph, name: str, value: float) -> tuple[str, str]:
    graph.initializer.append(numpy_helper.from_array(np.array(value, dtype=np.float32), f"{name}_scale"))
    graph.initializer.append(numpy_helper.from_array(np.array(0, dtype=np.int8), f"{name}_zero_point"))
    return f"{name}_scale", f"{name}_zero_point"


def _qdq_pair(graph, tensor: str, scale: float, name: str) -> tuple[list[onnx.NodeProto], str, str]:
    """QuantizeLinear -> DequantizeLinear of ``tensor``: the two nodes and their int8 / float outputs."""
    scale_name, zero_name = _scalar(graph, name, scale)
    quantized, dequantized = f"{name}_quantized", f"{name}_dequantized"
    nodes = [
        helper.make_node("QuantizeLinear", [tensor, scale_name, zero_name], [quantized], name=f"{name}_QuantizeLinear"),
        helper.make_node("DequantizeLinear", [quantized, scale_name, zero_name], [dequantized], name=f"{name}_DequantizeLinear"),
    ]
    return nodes, quantized, dequantized


def _quantized_input(graph, node, layer: QdqLayer, prefix: str) -> list[onnx.NodeProto]:
    nodes, _, dequantized = _qdq_pair(graph, node.input[0], layer.input_scale, f"{prefix}_input")
    node.input[0] = dequantized
    return nodes


def _quantized_weight(graph, node, layer: QdqLayer, inits, prefix: str) -> list[onnx.NodeProto]:
    weight = numpy_helper.to_array(inits[layer.initializer])
    axis = channel_axis(node)
    scales = np.asarray(layer.record.scales, dtype=np.float32)
    codes = exact_codes(weight, scales, axis=axis, fqn=layer.fqn)
    channels = weight.shape[axis]
    scales = np.broadcast_to(scales, (channels,)).copy()
    name = f"{prefix}_weight"
    graph.initializer.append(numpy_helper.from_array(codes, f"{name}_quantized"))
    graph.initializer.append(numpy_helper.from_array(scales, f"{name}_scale"))
    graph.initializer.append(numpy_helper.from_array(np.zeros(channels, dtype=np.int8), f"{name}_zero_point"))
    node.input[1] = f"{name}_dequantized"
    return [helper.make_node("DequantizeLinear", [f"{name}_quantized", f"{name}_scale", f"{name}_zero_point"],
                             [f"{name}_dequantized"], name=f"{name}_DequantizeLinear", axis=axis)]


def _quantized_bias(graph, node, layer: QdqLayer, inits, prefix: str) -> list[onnx.NodeProto]:
    if len(node.input) < 3 or not node.input[2] or node.input[2] not in inits:
        return []
    bias = numpy_helper.to_array(inits[node.input[2]]).astype(np.float32)
    if bias.ndim != 1:
        raise OnnxFormatError(f"bias of {layer.fqn!r} has shape {bias.shape}; a per-channel vector is expected")
    step = np.float32(layer.input_scale) * np.broadcast_to(np.asarray(layer.record.scales, dtype=np.float32), bias.shape)
    codes = np.round(bias / step)
    if np.abs(codes).max(initial=0) > 2**31 - 1:
        raise OnnxFormatError(f"bias of {layer.fqn!r} does not fit int32 at scale input_scale * weight_scale")
    name = f"{prefix}_bias"
    graph.initializer.append(numpy_helper.from_array(codes.astype(np.int32), f"{name}_quantized"))
    graph.initializer.append(numpy_helper.from_array(step.astype(np.float32), f"{name}_scale"))
    graph.initializer.append(numpy_helper.from_array(np.zeros(bias.shape, dtype=np.int32), f"{name}_zero_point"))
    node.input[2] = f"{name}_dequantized"
    return [helper.make_node("DequantizeLinear", [f"{name}_quantized", f"{name}_scale", f"{name}_zero_point"],
                             [f"{name}_dequantized"], name=f"{name}_DequantizeLinear", axis=0)]


def _quantized_output(graph, node, layer: QdqLayer, prefix: str) -> list[onnx.NodeProto]:
    if layer.output_scale is None:
        return []
    output = node.output[0]
    node.output[0] = f"{prefix}_output_float"
    nodes, _, dequantized = _qdq_pair(graph, node.output[0], float(layer.output_scale), f"{prefix}_output")
    nodes[1].output[0] = output
    return nodes


def _metadata(layer: QdqLayer) -> dict:
    return {"fqn": layer.fqn, "initializer": layer.initializer, "op": layer.op, "shape": list(layer.record.shape),
            "input_scale": layer.input_scale, "output_scale": layer.output_scale}


def _layer_sizes(model: onnx.ModelProto, weights, layers: list[QdqLayer]) -> list[LayerSize]:
    """Per weight: int8 layers count their codes, scales and zero points; float ones their fp32 array."""
    inits = {init.name: init for init in model.graph.initializer}
    quantized = {layer.initializer for layer in layers}
    rows = []
    for initializer, fqn, _ in weights:
        numel = int(np.prod(inits[initializer].dims)) if initializer in inits else 0
        if initializer in quantized:
            stored = [init for name, init in inits.items() if name.startswith(f"{initializer}_qdq") and "_weight_" in name]
            codes = next(init for init in stored if init.data_type == TensorProto.INT8 and len(init.dims) > 1)
            numel = int(np.prod(codes.dims))
            nnz = int(np.count_nonzero(numpy_helper.to_array(codes)))
            rows.append(LayerSize(fqn, initializer, "int8-qdq", numel, nnz, 4 * numel, sum(i.ByteSize() for i in stored)))
        else:
            array = numpy_helper.to_array(inits[initializer])
            rows.append(LayerSize(fqn, initializer, "dense", numel, int(np.count_nonzero(array)), 4 * numel, inits[initializer].ByteSize()))
    return rows


def onnxruntime_int8_ops(model: onnx.ModelProto | str | Path) -> dict[str, int]:
    """Integer kernels onnxruntime runs for ``model``: the op types of ``INT8_FUSED_OPS`` (with their
    counts) in the graph its ``ORT_ENABLE_ALL`` optimizer produces, read from the saved optimized model."""
    import tempfile

    import onnxruntime

    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else Path(model).read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(Path(folder) / "optimized.onnx")
        options.log_severity_level = 3  # the optimized file is machine specific (NCHWc): we only read it
        onnxruntime.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        optimized = onnx.load(options.optimized_model_filepath)
    counts: dict[str, int] = {}
    for node in optimized.graph.node:
        if node.op_type in INT8_FUSED_OPS:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def output_step(model: onnx.ModelProto) -> float | None:
    """The quantization step of the graph output when a ``DequantizeLinear`` produces it, else ``None``."""
    output = model.graph.output[0].name
    inits = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.output[0] == output and node.input[1] in inits:
            return float(numpy_helper.to_array(inits[node.input[1]]).max())
    return None
