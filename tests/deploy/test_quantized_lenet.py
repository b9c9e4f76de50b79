"""A default-run-like LeNet-5 (16x1 block-sparse, ternary) compiled for arm64: codes in the library,
its size and weight payload bounded, and its qemu outputs equal to the float reference."""

import numpy as np
import pytest
import torch

from compress.models import create_model
from compress.quant import project_twn
from deploy.onnx.export import export_onnx
from deploy.tvm.bundle import make_arm64_bundle, run_arm64_bundle
from deploy.tvm.compile import compile_onnx

INPUT_SHAPE = (1, 1, 28, 28)
KEEP_RATIOS = {"0": 1.0, "3": 0.15, "7": 0.05, "9": 0.3}  # of the 16x1 blocks: conv1 dense, the rest sparse
LIBRARY_LIMIT_BYTES = 100 * 1024  # issue target for the default run's arm64 library, code included
PAYLOAD_LIMIT_RATIO = 1.25  # library weight payload / ONNX stored weights, ternary layers


def _ternary_lenet5() -> torch.nn.Module:
    torch.manual_seed(0)
    net = create_model("lenet5").eval()
    with torch.no_grad():
        for name, module in net.named_modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                flat = module.weight.view(module.weight.shape[0], -1)
                rows = -(-flat.shape[0] // 16)
                mask = (torch.rand(rows, flat.shape[1]) < KEEP_RATIOS[name]).repeat_interleave(16, 0)[: flat.shape[0]]
                flat.copy_(project_twn(flat * mask, per_channel=False, mask=mask).dequantize().view_as(flat))
    return net


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    root = tmp_path_factory.mktemp("ternary_lenet")
    net = _ternary_lenet5()
    exported = export_onnx(net, torch.rand(INPUT_SHAPE), root / "model.onnx")
    compiled = compile_onnx(exported.path, target="arm64", out_dir=root / "arm64", input_shape=INPUT_SHAPE)
    bundle = make_arm64_bundle(compiled.library_path, bundle_dir=root / "bundle", input_name=compiled.input_name,
                               input_shape=compiled.input_shape)
    return net, exported, compiled, bundle


def test_ternary_lenet5_layers_compile_to_code_kernels(lenet):
    _, _, compiled, _ = lenet
    kernels = sorted(layer.choice.kernel for layer in compiled.layers)
    assert kernels == ["ternary-conv", "ternary-conv", "ternary-linear", "ternary-linear"]


def test_ternary_lenet5_arm64_library_is_at_most_100_kib(lenet):
    _, _, compiled, _ = lenet
    assert compiled.library_path.stat().st_size <= LIBRARY_LIMIT_BYTES


def test_ternary_lenet5_library_weight_payload_is_within_1_25x_of_the_onnx_weights(lenet):
    _, exported, compiled, _ = lenet
    onnx_bytes = sum(layer.stored_bytes for layer in exported.sizes.layers)
    payload = sum(layer.payload_bytes for layer in compiled.layers)
    dense_bytes = sum(layer.dense_bytes for layer in exported.sizes.layers)
    assert payload <= PAYLOAD_LIMIT_RATIO * onnx_bytes, (payload, onnx_bytes)
    assert payload * 10 < dense_bytes


@pytest.mark.slow
def test_ternary_lenet5_qemu_outputs_equal_the_float_reference(lenet):
    net, _, _, bundle = lenet
    samples = torch.rand((2, *INPUT_SHAPE), generator=torch.Generator().manual_seed(1))
    outputs = run_arm64_bundle(bundle, samples.numpy())
    with torch.no_grad():
        expected = np.stack([net(sample).numpy().reshape(-1) for sample in samples])
    np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-4)
