"""int8 weights through export and compile: the ONNX stores int8 codes, the TVM build int8 code kernels,
and onnxruntime and TVM give the same outputs."""

import numpy as np
import pytest
import torch

from compress.models import create_model
from compress.quant import project_int8
from deploy.onnx.export import export_onnx
from deploy.tvm.compile import compile_onnx

INPUT_SHAPE = (1, 1, 28, 28)


@pytest.fixture(scope="module")
def int8_lenet(tmp_path_factory):
    root = tmp_path_factory.mktemp("int8_lenet")
    torch.manual_seed(0)
    net = create_model("lenet5").eval()
    records = []
    with torch.no_grad():
        for name, module in net.named_modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                quantized = project_int8(module.weight, per_channel=True)
                module.weight.copy_(quantized.dequantize())
                records.append(quantized.to_record(fqn=f"{name}.weight"))
    exported = export_onnx(net, torch.rand(INPUT_SHAPE), root / "model.onnx", quant=records)
    compiled = compile_onnx(exported.path, target="host", out_dir=root / "host", input_shape=INPUT_SHAPE)
    return exported, compiled


def test_int8_lenet5_compiles_every_layer_to_int8_code_kernels(int8_lenet):
    exported, compiled = int8_lenet
    assert {layer.format for layer in exported.sizes.layers} == {"int8"}
    assert [layer.choice.kernel for layer in compiled.layers] == ["int8-conv", "int8-conv", "int8-linear", "int8-linear"]
    payload = sum(layer.payload_bytes for layer in compiled.layers)
    assert payload <= 1.25 * sum(layer.stored_bytes for layer in exported.sizes.layers)


def test_int8_lenet5_tvm_outputs_match_onnxruntime(int8_lenet):
    import onnxruntime
    import tvm
    from tvm import relax

    exported, compiled = int8_lenet
    x = np.random.default_rng(0).random(INPUT_SHAPE).astype(np.float32)
    session = onnxruntime.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: x})[0]
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(compiled.library_path)), tvm.cpu())
    np.testing.assert_allclose(vm["main"](tvm.runtime.tensor(x)).numpy(), expected, rtol=1e-4, atol=1e-4)
