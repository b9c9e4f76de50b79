"""compile_onnx: host build matches onnxruntime; arm64 and mobile GPU presets build and export."""

import json

import numpy as np
import onnx
import pytest
import torch

from deploy.tvm.bundle import elf_machine
from deploy.tvm.compile import compile_onnx
from deploy.tvm.errors import CompileError, TargetError

INPUT_SHAPE = (2, 3, 8, 8)


class SmallNet(torch.nn.Module):
    """conv (8x1 block-sparse) -> conv (ternary, strided) -> linear (dense) -> linear (unstructured sparse)."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 16, 3, padding=1, stride=2)
        self.fc1 = torch.nn.Linear(16 * 4 * 4, 32)
        self.fc2 = torch.nn.Linear(32, 16)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def _small_net() -> torch.nn.Module:
    torch.manual_seed(0)
    net = SmallNet().eval()
    with torch.no_grad():
        w = net.conv1.weight.view(2, 8, -1)
        w.mul_((torch.rand(2, 1, w.shape[2]) < 0.15).float())
        codes = torch.randint(-1, 2, net.conv2.weight.shape).float()
        net.conv2.weight.copy_(codes * torch.rand(16, 1, 1, 1).add(0.1))
        net.fc2.weight.mul_((torch.rand(net.fc2.weight.shape) < 0.04).float())
    return net


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "small.onnx"
    torch.onnx.export(_small_net(), (torch.randn(*INPUT_SHAPE),), str(path), opset_version=17,
                      input_names=["input"], output_names=["logits"], dynamo=False)
    return path


def _onnxruntime(path, x):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def _run_host(library, x):
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.runtime.load_module(str(library)), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


def _input(seed=0):
    return np.random.default_rng(seed).standard_normal(INPUT_SHAPE).astype(np.float32)


def test_compile_host_matches_onnxruntime_and_reports_each_kernel(small_onnx, tmp_path):
    result = compile_onnx(small_onnx, target="host", out_dir=tmp_path, input_shape=INPUT_SHAPE)
    # conv2's weight is ternary (codes times a per-channel scale), so it compiles to the code kernel
    assert [layer.choice.kernel for layer in result.layers] == ["direct-conv", "ternary-conv", "block-linear", "block-linear"]
    assert result.layers[0].choice.sparsity_ratio > 0.5  # conv1's zero 8x1 tap blocks are skipped
    assert all("fused bias + relu" in layer.choice.reason for layer in result.layers[:3])
    x = _input()
    np.testing.assert_allclose(_run_host(result.library_path, x), _onnxruntime(small_onnx, x), rtol=1e-4, atol=1e-4)
    report = json.loads(result.report_path.read_text())
    assert report["layers"][0]["reason"] and report["input_name"] == "input"


def test_compile_host_leaves_no_operator_unscheduled(small_onnx):
    from tvm import relax

    from deploy.tvm.compile import _import
    from deploy.tvm.fusion import fuse_layers
    from deploy.tvm.schedule_rest import schedule_rest, unscheduled_functions

    mod, _ = _import(small_onnx, INPUT_SHAPE)
    assert unscheduled_functions(relax.transform.LegalizeOps()(mod))  # TVM alone leaves loops unscheduled
    mod, _ = fuse_layers(mod, vector_floats=8)
    assert unscheduled_functions(schedule_rest(mod, vector_floats=8)) == []


def test_compile_imports_sparse_initializers_when_onnx_stores_them(small_onnx, tmp_path):
    from onnx import helper, numpy_helper

    model = onnx.load(str(small_onnx))
    init = next(i for i in model.graph.initializer if numpy_helper.to_array(i).ndim == 2
                and np.mean(numpy_helper.to_array(i) == 0) > 0.9)
    dense = numpy_helper.to_array(init)
    flat = np.flatnonzero(dense)
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(dense.reshape(-1)[flat], init.name),
                                       numpy_helper.from_array(flat.astype(np.int64), init.name + "_idx"),
                                       list(dense.shape))
    model.graph.initializer.remove(init)
    model.graph.sparse_initializer.append(sparse)
    path = tmp_path / "sparse.onnx"
    onnx.save(model, str(path))
    result = compile_onnx(path, target="host", out_dir=tmp_path / "out", input_shape=INPUT_SHAPE)
    x = _input(2)
    np.testing.assert_allclose(_run_host(result.library_path, x), _onnxruntime(small_onnx, x), rtol=1e-4, atol=1e-4)


def test_compile_arm64_exports_aarch64_elf(small_onnx, tmp_path):
    result = compile_onnx(small_onnx, target="arm64", out_dir=tmp_path, input_shape=INPUT_SHAPE)
    assert elf_machine(result.library_path) == "aarch64"


@pytest.mark.parametrize("target", ["opencl-adreno", "opencl-mali"])
def test_compile_mobile_gpu_embeds_opencl_kernels(small_onnx, tmp_path, target):
    result = compile_onnx(small_onnx, target=target, out_dir=tmp_path, input_shape=INPUT_SHAPE)
    assert elf_machine(result.library_path) == "aarch64"
    source = result.device_sources["opencl"].read_text()
    assert "__kernel void" in source
    assert [layer.choice.kernel for layer in result.layers] == ["dense"] * 4


def test_compile_vulkan_fails_with_one_clear_line(small_onnx, tmp_path):
    with pytest.raises(TargetError) as info:
        compile_onnx(small_onnx, target="vulkan", out_dir=tmp_path, input_shape=INPUT_SHAPE)
    assert "vulkan" in str(info.value) and "\n" not in str(info.value)


def test_compile_raises_compile_error_when_onnx_unreadable(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(CompileError, match="cannot read ONNX"):
        compile_onnx(bad, target="host", out_dir=tmp_path / "out", input_shape=INPUT_SHAPE)


def test_compile_direct_conv_matches_onnxruntime_with_dilation_and_uneven_stride(tmp_path):
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=(1, 2), padding=2, dilation=2), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 12, (1, 3), padding=(0, 1))).eval()
    path = tmp_path / "dilated.onnx"
    torch.onnx.export(net, (torch.randn(1, 3, 9, 10),), str(path), opset_version=17, input_names=["input"],
                      dynamo=False)
    result = compile_onnx(path, target="host", out_dir=tmp_path / "out", input_shape=(1, 3, 9, 10))
    assert [layer.choice.kernel for layer in result.layers] == ["direct-conv", "direct-conv"]
    x = np.random.default_rng(3).standard_normal((1, 3, 9, 10)).astype(np.float32)
    np.testing.assert_allclose(_run_host(result.library_path, x), _onnxruntime(path, x), rtol=1e-4, atol=1e-4)


def test_compile_refuses_tuning_when_target_runs_elsewhere(small_onnx, tmp_path):
    with pytest.raises(CompileError, match="tune with target 'host'"):
        compile_onnx(small_onnx, target="arm64", out_dir=tmp_path, input_shape=INPUT_SHAPE, tune_trials=4)


@pytest.mark.slow
def test_compile_tunes_the_operators_around_our_kernels_then_reapplies_the_records(tmp_path):
    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 10)).eval()
    path = tmp_path / "pool.onnx"
    torch.onnx.export(net, (torch.randn(1, 3, 8, 8),), str(path), opset_version=17, input_names=["input"], dynamo=False)
    database = tmp_path / "db"
    tuned = compile_onnx(path, target="host", out_dir=tmp_path / "tuned", input_shape=(1, 3, 8, 8), tune_trials=2,
                         tuning_db=database)
    reapplied = compile_onnx(path, target="host", out_dir=tmp_path / "again", input_shape=(1, 3, 8, 8), tuning_db=database)
    x = np.random.default_rng(4).standard_normal((1, 3, 8, 8)).astype(np.float32)
    for result in (tuned, reapplied):
        assert result.tuned
        np.testing.assert_allclose(_run_host(result.library_path, x), _onnxruntime(path, x), rtol=1e-4, atol=1e-4)
    assert list(database.iterdir())  # one record directory per tuned operator


def test_compile_reports_each_conv_tile_and_keeps_the_row_kernel_for_one_pixel_images(tmp_path):
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Conv2d(16, 8, 1)).eval()
    path = tmp_path / "squeeze.onnx"
    torch.onnx.export(net, (torch.randn(1, 3, 14, 14),), str(path), opset_version=17, input_names=["input"], dynamo=False)
    result = compile_onnx(path, target="host", out_dir=tmp_path / "out", input_shape=(1, 3, 14, 14))
    tiled, rows = (layer.choice.reason for layer in result.layers)
    assert "flat pixel tiles" in tiled and "tile (model" in tiled and "next best" in tiled
    assert "by rows" in rows  # one output pixel: fewer than one vector of flat pixels
    x = np.random.default_rng(5).standard_normal((1, 3, 14, 14)).astype(np.float32)
    np.testing.assert_allclose(_run_host(result.library_path, x), _onnxruntime(path, x), rtol=1e-4, atol=1e-4)
