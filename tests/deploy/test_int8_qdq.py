"""int8 QDQ compile: quad packing, the int8 kernels against integer references, and a QDQ model
compiled end to end against onnxruntime's int8 run."""

from __future__ import annotations

import numpy as np
import pytest

from deploy.tvm.int8_weights import compensation, pack_conv_quads, pack_linear_quads, weight_quads
from deploy.tvm.kernels.conv_geometry import ConvGeometry

tvm = pytest.importorskip("tvm")


def _geometry(channels, out_channels, size, kernel, stride):
    pad = kernel // 2
    return ConvGeometry(batch=1, channels=channels, height=size, width=size, out_channels=out_channels, kernel_h=kernel,
                        kernel_w=kernel, stride=(stride, stride), padding=(pad,) * 4, dilation=(1, 1))


def _flavours():
    from deploy.tvm.kernels.int8_dot import host_dot_flavour

    return sorted({"generic", host_dot_flavour(16)})


def test_weight_quads_hold_four_input_channels_per_int32():
    codes = np.arange(-20, 20, dtype=np.int8).reshape(2, 5, 2, 2)  # 5 channels: two quads, the second padded
    quads = weight_quads(codes, rows=4)
    assert quads.shape == (4, 2, 2, 2)
    first = np.array([quads[1, 0, 1, 0]], np.int32).view(np.int8)
    assert list(first) == [codes[1, t, 1, 0] for t in range(4)]
    last = np.array([quads[0, 1, 0, 1]], np.int32).view(np.int8)
    assert list(last) == [codes[0, 4, 0, 1], 0, 0, 0]
    assert not quads[2:].any()


def test_sparse_packing_skips_all_zero_blocks_and_compensates_the_offset():
    rng = np.random.default_rng(0)
    codes = rng.integers(-127, 128, (16, 8)).astype(np.int8)
    codes[:, 4:] = 0  # the second input quad is zero in every row
    blocks = pack_linear_quads(codes, block_rows=16, unroll=1)
    assert blocks.nnz_blocks == 1 and blocks.zero_block_ratio == 0.5 and list(blocks.positions) == [0]
    init = compensation(codes, zero_point=3, length=16)
    assert init[5] == -131 * int(codes[5].astype(np.int64).sum())


def test_a_requantize_repeated_after_relu_is_dropped_and_others_are_kept():
    from deploy.tvm.kernels.int8_dot import simplified_steps

    residual_block = (("qdq", 0.5, 0), ("residual",), ("qdq", 0.25, 0), ("relu",), ("qdq", 0.25, 0))
    assert simplified_steps(residual_block) == residual_block[:4]
    relu6 = (("qdq", 0.5, 0), ("clip", 0.0, 6.0), ("qdq", 0.5, 0))  # 6 / 0.5 is on the grid, but clip is kept general
    assert simplified_steps(relu6) == relu6
    assert simplified_steps((("qdq", 0.5, 0), ("relu",), ("qdq", 0.25, 0))) == (("qdq", 0.5, 0), ("relu",), ("qdq", 0.25, 0))


def _build(func, flavour_target="llvm"):
    import tvm

    target = tvm.target.Target({"kind": "llvm", "mcpu": str(tvm.target.codegen.llvm_get_system_cpu())})
    return tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), target=target)["main"]


def _qdq(values, scale, zero=0):
    return (np.clip(np.rint(values / np.float32(scale)) + zero, -128, 127) - zero) * np.float32(scale)


@pytest.mark.parametrize("stride,kernel,sparse", [(1, 3, False), (2, 3, True), (2, 1, False)])
def test_int8_conv_matches_the_integer_convolution(stride, kernel, sparse):
    import torch

    from deploy.tvm.int8_qdq_fusion import conv_tile
    from deploy.tvm.kernels.int8_conv import Int8ConvShape, int8_conv_func
    from deploy.tvm.kernels.int8_pack import packed_size, quantize_pack_func

    g = _geometry(6, 12, 10, kernel, stride)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 6, 10, 10)).astype(np.float32)
    codes = rng.integers(-127, 128, (12, 6, kernel, kernel)).astype(np.int8)
    if sparse:
        codes[:, :4, 0, :] = 0
    scale_x, zero, scale_w = 0.03, -2, rng.random(12).astype(np.float32) * 0.01
    bias = rng.standard_normal(12).astype(np.float32)
    residual = rng.standard_normal((1, 12, g.out_height, g.out_width)).astype(np.float32)
    steps = (("qdq", 0.05, 0), ("residual",), ("relu",))
    rows, vectors = conv_tile(g)
    blocks = pack_conv_quads(codes, geometry=g, block_rows=rows)
    length = -(-12 // rows) * rows
    pad = lambda v: np.concatenate([v, np.zeros(length - 12, np.float32)])  # noqa: E731
    q = np.clip(np.rint(x / np.float32(scale_x)) + zero, -128, 127) - zero
    acc = torch.nn.functional.conv2d(torch.tensor(q, dtype=torch.float64), torch.tensor(codes, dtype=torch.float64),
                                     stride=stride, padding=kernel // 2).numpy().astype(np.float32)
    expected = np.maximum(_qdq(acc * (scale_x * scale_w)[None, :, None, None] + bias[None, :, None, None], 0.05) + residual, 0)
    for flavour in _flavours():
        pack = _build(quantize_pack_func(geometry=g, scale=scale_x, zero_point=zero))
        conv = _build(int8_conv_func(geometry=g, shape=Int8ConvShape(rows, vectors, blocks.nnz_blocks), steps=steps,
                                     residual=True, flavour=flavour))
        xq = tvm.runtime.tensor(np.zeros((1, packed_size(g)), np.int32))
        y = tvm.runtime.tensor(np.zeros(expected.shape, np.float32))
        pack(tvm.runtime.tensor(x), xq)
        operands = (blocks.data, blocks.positions, blocks.indptr, compensation(codes, zero_point=zero, length=length),
                    pad(scale_x * scale_w), pad(bias), residual)
        conv(xq, *(tvm.runtime.tensor(a) for a in operands), y)
        np.testing.assert_allclose(y.numpy(), expected, atol=1e-5, err_msg=flavour)
    if sparse:
        assert blocks.zero_block_ratio > 0


def _small_model():
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.depthwise = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)  # stays float: its requantize / clip run fused
            self.conv = torch.nn.Conv2d(8, 8, 3, padding=1)
            self.down = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
            self.fc = torch.nn.Linear(16, 10)

        def forward(self, x):
            x = torch.nn.functional.relu6(self.depthwise(torch.relu(self.stem(x))))
            x = torch.relu(self.conv(x) + x)
            x = torch.relu(self.down(x))
            return self.fc(x.mean(dim=(2, 3)))

    torch.manual_seed(0)
    return Net().eval()


@pytest.fixture(scope="module")
def qdq_model(tmp_path_factory):
    """A small conv / depthwise + ReLU6 / residual / strided conv / linear model as a symmetric static QDQ ONNX file."""
    import onnx
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from deploy.onnx.torch_export import export_dense

    work = tmp_path_factory.mktemp("qdq")
    dense = work / "net.onnx"
    onnx.save(export_dense(_small_model(), torch.zeros(1, 3, 12, 12), opset=17), str(dense))

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.batches = iter([{"input": rng.random((1, 3, 12, 12)).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.batches, None)

    qdq = work / "net-int8.onnx"
    quantize_static(str(dense), str(qdq), Reader(), quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    return qdq


def _onnxruntime_outputs(qdq, samples):
    import onnxruntime as ort

    session = ort.InferenceSession(str(qdq), providers=["CPUExecutionProvider"])
    return np.stack([session.run(None, {"input": sample[None]})[0].reshape(-1) for sample in samples])


def _samples(count: int) -> np.ndarray:
    return np.random.default_rng(7).random((count, 3, 12, 12)).astype(np.float32)


def test_qdq_model_compiles_to_int8_kernels_matching_onnxruntime(qdq_model, tmp_path):
    import onnx
    from tvm import relax

    from deploy.tvm.compile import compile_onnx

    result = compile_onnx(qdq_model, target="host", out_dir=tmp_path / "tvm", input_shape=(1, 3, 12, 12))
    assert [layer.choice.kernel for layer in result.layers] == ["int8-conv", "depthwise-conv", "int8-conv", "int8-conv", "int8-linear"]
    library = result.library_path.read_bytes().decode("latin-1")
    assert "qdq_steps" in library  # the depthwise output's requantize + clip, fused
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(result.library_path)), tvm.cpu())
    samples = _samples(3)
    actual = np.stack([vm["main"](tvm.runtime.tensor(sample[None])).numpy().reshape(-1) for sample in samples])
    assert np.abs(actual - _onnxruntime_outputs(qdq_model, samples)).max() <= _output_step(onnx.load(str(qdq_model))) * 1.001


@pytest.mark.slow
def test_qdq_model_arm64_outputs_under_qemu_match_onnxruntime(qdq_model, tmp_path):
    import onnx

    from deploy.tvm.bundle import make_arm64_bundle, run_arm64_bundle
    from deploy.tvm.compile import compile_onnx

    result = compile_onnx(qdq_model, target="arm64", out_dir=tmp_path / "tvm", input_shape=(1, 3, 12, 12))
    assert [layer.choice.kernel for layer in result.layers] == ["int8-conv", "depthwise-conv", "int8-conv", "int8-conv", "int8-linear"]
    bundle = make_arm64_bundle(result.library_path, bundle_dir=tmp_path / "bundle", input_name=result.input_name,
                               input_shape=(1, 3, 12, 12))
    samples = _samples(2)
    outputs = run_arm64_bundle(bundle, samples[:, None])
    assert np.abs(outputs - _onnxruntime_outputs(qdq_model, samples)).max() <= _output_step(onnx.load(str(qdq_model))) * 1.001

def _output_step(model) -> float:
    """The quantization step of the graph output (the scale of the DequantizeLinear producing it)."""
    import onnx

    node = next(n for n in model.graph.node if model.graph.output[0].name in n.output)
    assert node.op_type == "DequantizeLinear"
    scale = next(init for init in model.graph.initializer if init.name == node.input[1])
    return float(onnx.numpy_helper.to_array(scale))
