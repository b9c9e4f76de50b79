"""arm64 bundle: real AArch64 files, manifest, and a qemu run that matches the host build."""

import json
import subprocess

import numpy as np
import pytest
import torch

from deploy.tvm.bundle import elf_machine, make_arm64_bundle, run_arm64_bundle, verify_arm64_bundle
from deploy.tvm.compile import compile_onnx
from deploy.tvm.errors import BundleError

INPUT_SHAPE = (1, 3, 8, 8)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(16 * 64, 32)).eval()
    with torch.no_grad():
        net[3].weight.view(2, 16, -1).mul_((torch.rand(2, 1, 16 * 64) < 0.1).float())
    path = root / "model.onnx"
    torch.onnx.export(net, (torch.randn(*INPUT_SHAPE),), str(path), opset_version=17, input_names=["input"],
                      dynamo=False)
    host = compile_onnx(path, target="host", out_dir=root / "host", input_shape=INPUT_SHAPE)
    arm = compile_onnx(path, target="arm64", out_dir=root / "arm64", input_shape=INPUT_SHAPE)
    bundle = make_arm64_bundle(arm.library_path, bundle_dir=root / "bundle", input_name=arm.input_name,
                               input_shape=arm.input_shape)
    return host, arm, bundle


def _host_output(library, x):
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.runtime.load_module(str(library)), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


@pytest.mark.slow
def test_bundle_holds_aarch64_model_runner_and_runtime(compiled):
    _, arm, bundle = compiled
    assert arm.layers[-1].choice.kernel == "block-linear" and arm.layers[-1].choice.sparsity_ratio > 0.8
    for name in ("model.so", "runner", "lib/libtvm_runtime.so", "lib/libtvm_ffi.so"):
        assert elf_machine(bundle / name) == "aarch64", name
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["input_shape"] == list(INPUT_SHAPE)
    assert {f["path"] for f in manifest["files"]} >= {"model.so", "runner", "README.txt", "lib/libtvm_ffi.so"}


@pytest.mark.slow
def test_bundle_qemu_run_matches_host_build_within_1e_4(compiled):
    host, _, bundle = compiled
    x = np.random.default_rng(0).standard_normal(INPUT_SHAPE).astype(np.float32)
    check = verify_arm64_bundle(bundle, x, _host_output(host.library_path, x), atol=1e-4)
    assert check.max_abs_error <= 1e-4 and check.output_shape == (1, 32)


@pytest.mark.slow
def test_bundle_verify_raises_when_outputs_differ(compiled):
    host, _, bundle = compiled
    x = np.zeros(INPUT_SHAPE, np.float32)
    wrong = _host_output(host.library_path, x) + 1.0
    with pytest.raises(BundleError, match="differs from the host build"):
        verify_arm64_bundle(bundle, x, wrong)


def test_bundle_rejects_library_that_is_not_aarch64(tmp_path):
    library = tmp_path / "model.so"
    library.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(11) + (0x3E).to_bytes(2, "little") + bytes(44))
    with pytest.raises(BundleError, match="not an AArch64"):
        make_arm64_bundle(library, bundle_dir=tmp_path / "b", input_name="input", input_shape=(1,))


@pytest.mark.slow
def test_bundle_runs_many_samples_in_one_qemu_process(compiled):
    host, _, bundle = compiled
    samples = np.random.default_rng(1).standard_normal((3, *INPUT_SHAPE)).astype(np.float32)
    outputs = run_arm64_bundle(bundle, samples)
    expected = np.stack([_host_output(host.library_path, sample).reshape(-1) for sample in samples])
    np.testing.assert_allclose(outputs, expected, atol=1e-4)


def _runner(bundle, tmp_path, shape, output):
    from deploy.tvm.bundle import AARCH64_SYSROOT

    np.zeros(INPUT_SHAPE, np.float32).tofile(tmp_path / "in.bin")
    command = ["qemu-aarch64", "-L", AARCH64_SYSROOT, str(bundle / "runner"), str(bundle / "model.so"),
               str(tmp_path / "in.bin"), shape, str(output)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["a,b", "-1,3,8,8", "1,0,8,8", "99999999,99999999,99999999,9", ""])
def test_bundle_runner_refuses_a_bad_shape_with_one_line(compiled, tmp_path, shape):
    done = _runner(compiled[2], tmp_path, shape, tmp_path / "out.bin")
    assert done.returncode != 0
    assert "SHAPE" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.slow
def test_bundle_runner_fails_when_it_cannot_write_its_output(compiled, tmp_path):
    done = _runner(compiled[2], tmp_path, ",".join(map(str, INPUT_SHAPE)), tmp_path / "missing-dir" / "out.bin")
    assert done.returncode == 1 and "cannot write the output file" in done.stderr
