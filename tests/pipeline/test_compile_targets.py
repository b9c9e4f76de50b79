"""`compress compile --target T` for every preset: CPU presets give libraries of the right machine,
mobile GPU presets embed OpenCL kernels, vulkan and android (without an NDK) fail with one line."""

from __future__ import annotations

import pytest

from pipeline.cli import main
from pipeline.manifest import read_manifest


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    from tests.pipeline.conftest import save_tiny_bundle

    root = tmp_path_factory.mktemp("targets")
    model = save_tiny_bundle(root / "tiny.pt")
    with pytest.raises(SystemExit) as exit_info:
        main(["--quiet", "export", str(model), "--data", "digits", "--test-limit", "32", "--out", str(root / "export")])
    assert exit_info.value.code == 0
    return root / "export" / "01-export" / "model.onnx"


def _compile(onnx_model, target, out, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--quiet", "compile", str(onnx_model), "--target", target, "--out", str(out)])
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("target,machine", [("host", 0x3E), ("arm64", 0xB7), ("rasp4b", 0x28), ("opencl-mali", 0xB7), ("opencl-adreno", 0xB7)])
def test_compile_builds_a_library_for_the_target_machine(onnx_model, tmp_path, capsys, target, machine):
    code, err = _compile(onnx_model, target, tmp_path / "run", capsys)
    assert code == 0, err
    record = read_manifest(tmp_path / "run")["stages"][0]
    library = (tmp_path / "run" / record["outputs"]["compiled"]["path"]).read_bytes()
    assert library[:4] == b"\x7fELF" and int.from_bytes(library[18:20], "little") == machine
    if target.startswith("opencl"):
        assert b"__kernel" in library  # the OpenCL C source is embedded in the library


@pytest.mark.parametrize("target,message", [("vulkan", "lacks"), ("android-arm64", "ANDROID_NDK_HOME")])
def test_compile_fails_in_one_line_when_the_toolchain_is_missing(onnx_model, tmp_path, capsys, monkeypatch, target, message):
    monkeypatch.delenv("ANDROID_NDK_HOME", raising=False)
    code, err = _compile(onnx_model, target, tmp_path / "run", capsys)
    assert code != 0 and len(err.strip().splitlines()) == 1 and message in err
