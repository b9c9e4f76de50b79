"""QDQ int8 ONNX export: int8 weight initializers, per-channel / per-tensor scales, zero points 0,
onnxruntime's integer kernels, and parity with the torch fake-quantized model within one step."""

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import TensorProto, numpy_helper
from torch import nn

from compress.quant import attach_activation_quant, create_quant_method
from compress.types import QuantRecord
from deploy.onnx.errors import OnnxFormatError
from deploy.onnx.qdq import export_qdq, onnxruntime_int8_ops, output_step

torch.set_num_threads(1)


def _int8_model(seed: int = 0):
    """A small conv + linear net, calibrated and finalized by the int8 method, and its record dicts."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(16 * 3 * 3, 24), nn.ReLU(), nn.Linear(24, 5))
    with torch.no_grad():
        model[6].weight[:, ::3] = 0.0  # pruned zeros
    generator = torch.Generator().manual_seed(seed)
    batches = [torch.randn(16, 1, 12, 12, generator=generator) for _ in range(4)]
    method = create_quant_method("int8", skip_first_last=False, calibration_batches=4)
    method.calibrate(model, iter(batches))
    method.finalize(model)
    method.activations.remove()
    return model, method.record_dicts()


def _export(model, records, path):
    return export_qdq(model, torch.randn(4, 1, 12, 12), path, records=[QuantRecord.from_dict(r) for r in records],
                      activations={r["fqn"]: (r["input_scale"], r["output_scale"]) for r in records})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model, records = _int8_model()
    path = tmp_path_factory.mktemp("qdq") / "model.onnx"
    result = _export(model, records, path)
    return model, records, result, onnx.load(str(path))


def _session(path, level):
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = level
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def test_qdq_export_stores_int8_weights_int32_biases_and_zero_points_zero(exported):
    _, records, result, proto = exported
    inits = {init.name: init for init in proto.graph.initializer}
    weight_nodes = [n for n in proto.graph.node if n.op_type == "DequantizeLinear" and "_weight_" in n.input[0]]
    assert len(weight_nodes) == 4
    for node in weight_nodes:
        assert inits[node.input[0]].data_type == TensorProto.INT8
        scales = numpy_helper.to_array(inits[node.input[1]])
        assert scales.ndim == 1 and scales.size > 1  # per output channel
    bias_codes = [i for name, i in inits.items() if name.endswith("_bias_quantized")]
    assert len(bias_codes) == 4 and all(i.data_type == TensorProto.INT32 for i in bias_codes)
    zero_points = [numpy_helper.to_array(i) for name, i in inits.items() if name.endswith("_zero_point")]
    assert zero_points and all(not z.any() for z in zero_points)
    activation_scales = [numpy_helper.to_array(i) for name, i in inits.items() if name.endswith(("_input_scale", "_output_scale"))]
    assert len(activation_scales) == 8 and all(s.ndim == 0 for s in activation_scales)  # per tensor
    assert not [i for i in proto.graph.initializer if i.data_type == TensorProto.FLOAT and len(i.dims) > 1]


def test_qdq_export_weights_take_about_one_byte_each(exported):
    _, _, result, _ = exported
    for layer in result.sizes.layers:
        assert layer.format == "int8-qdq"
        assert layer.stored_bytes <= layer.numel + 64 * 5 + 64  # codes + per-channel scales / zero points + framing
    linear = next(layer for layer in result.sizes.layers if layer.fqn == "6.weight")
    assert linear.nnz < linear.numel  # pruned zeros kept as code 0


def test_qdq_export_runs_as_integer_kernels_in_onnxruntime(exported):
    _, _, result, _ = exported
    ops = onnxruntime_int8_ops(result.path)
    assert ops.get("QLinearConv", 0) == 2
    assert ops.get("QGemm", 0) + ops.get("QLinearMatMul", 0) + ops.get("MatMulIntegerToFloat", 0) == 2


def test_qdq_export_matches_the_torch_fake_quant_model_within_one_step(exported):
    model, records, result, proto = exported
    x = torch.randn(64, 1, 12, 12, generator=torch.Generator().manual_seed(3))
    handles = attach_activation_quant(model, records)
    try:
        model.eval()
        with torch.no_grad():
            expected = model(x).numpy()
    finally:
        handles.remove()
    step = output_step(proto)
    assert step == pytest.approx(records[-1]["output_scale"])
    for level in (onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL, onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL):
        actual = _session(result.path, level).run(None, {"input": x.numpy()})[0]
        assert np.abs(actual - expected).max() <= step * (1 + 1e-5)
        assert np.mean(np.abs(actual - expected) < 1e-5) > 0.95  # most outputs identical, a rounding tie at most one step


def test_qdq_export_refuses_a_weight_that_is_not_int8_codes(tmp_path):
    model, records = _int8_model()
    with torch.no_grad():
        model[3].weight[0, 0, 0, 0] += 1e-3
    with pytest.raises(OnnxFormatError, match="not exactly int8 codes"):
        _export(model, records, tmp_path / "m.onnx")


def test_qdq_export_refuses_a_record_that_is_not_int8(tmp_path):
    model, records = _int8_model()
    records[0] = {**records[0], "scheme": "ternary"}
    with pytest.raises(OnnxFormatError, match="int8 weights only"):
        _export(model, records, tmp_path / "m.onnx")


@pytest.mark.slow
def test_qdq_export_compiles_with_tvm_and_matches_onnxruntime(exported, tmp_path):
    from deploy.runtimes import load_session
    from deploy.tvm.compile import compile_onnx

    _, _, result, _ = exported
    compiled = compile_onnx(result.path, target="host", out_dir=tmp_path / "host", input_shape=(1, 1, 12, 12))
    x = np.random.default_rng(0).standard_normal((1, 1, 12, 12)).astype(np.float32)
    tvm_output = load_session("tvm", compiled.library_path).run_one(x)
    reference = _session(result.path, onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL).run(None, {"input": x})[0]
    assert np.abs(tvm_output - reference).max() <= output_step(onnx.load(str(result.path))) * (1 + 1e-5)


class _Tokens(nn.Module):
    """A conv, then a linear over the last axis of a 3-d tensor (exported as MatMul + Add), then a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.mix = nn.Linear(100, 6)
        self.head = nn.Linear(24, 5)

    def forward(self, x):
        tokens = torch.relu(self.conv(x)).flatten(2)  # [N, 4, 100]
        return self.head(torch.relu(self.mix(tokens)).flatten(1))


def test_qdq_export_quantizes_a_matmul_and_its_bias_add_like_the_torch_module(tmp_path):
    torch.manual_seed(0)
    model = _Tokens()
    method = create_quant_method("int8", skip_first_last=False, calibration_batches=2)
    method.calibrate(model, iter([torch.randn(8, 1, 12, 12) for _ in range(2)]))
    method.finalize(model)
    records = method.record_dicts()
    x = torch.randn(16, 1, 12, 12)
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    method.activations.remove()
    result = export_qdq(model, torch.randn(2, 1, 12, 12), tmp_path / "m.onnx", records=[QuantRecord.from_dict(r) for r in records],
                        activations={r["fqn"]: (r["input_scale"], r["output_scale"]) for r in records})
    proto = onnx.load(str(result.path))
    matmul = next(n for n in proto.graph.node if n.op_type == "MatMul")
    add = next(n for n in proto.graph.node if n.op_type == "Add" and matmul.output[0] in n.input)
    assert any(n.op_type == "QuantizeLinear" and n.input[0] == add.output[0] for n in proto.graph.node)
    actual = _session(result.path, onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL).run(None, {"input": x.numpy()})[0]
    assert np.abs(actual - expected).max() <= output_step(proto) * (1 + 1e-5)
    assert onnxruntime_int8_ops(result.path)  # integer kernels for the conv / matmul / gemm
