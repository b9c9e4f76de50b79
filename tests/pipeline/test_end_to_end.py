"""One fast end-to-end `compress run` (tiny CNN, scikit-learn digits, arm64 target) and the commands
that read a finished run: --json, verify, report, report --compare, --max-accuracy-drop, --dry-run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.manifest import read_manifest

FAST = ["--data", "digits", "--train-limit", "400", "--test-limit", "120"]


def _cli(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--quiet", *argv])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from tests.pipeline.conftest import save_tiny_bundle

    root = tmp_path_factory.mktemp("e2e")
    model = save_tiny_bundle(root / "tiny.pt")
    out = root / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["--quiet", "run", str(model), "--target", "arm64", "--out", str(out), "--json", *FAST])
    assert exit_info.value.code == 0
    return model, out


@pytest.mark.slow
def test_run_writes_every_artifact_of_the_chain(finished_run):
    _, out = finished_run
    manifest = read_manifest(out)
    assert [r["name"] for r in manifest["stages"]] == ["train-sparse", "prune", "quantize", "export", "compile", "report"]
    assert all(r["status"] == "done" for r in manifest["stages"])
    compile_record = manifest["stages"][4]
    library = out / compile_record["outputs"]["compiled"]["path"]
    assert library.read_bytes()[:4] == b"\x7fELF" and library.read_bytes()[18] == 0xB7  # EM_AARCH64
    assert compile_record["metrics"]["qemu_check"]["status"] == "passed"
    assert compile_record["metrics"]["host_vs_onnxruntime_max_abs_error"] <= 1e-4
    report = json.loads((out / manifest["stages"][5]["outputs"]["report-json"]["path"]).read_text())
    runtimes = {(row["variant"], row["runtime"]) for row in report["latency"]}
    assert {("dense", "onnxruntime"), ("compiled", "onnxruntime"), ("compiled", "tvm-host")} <= runtimes
    assert all(row["runs"] >= 50 for row in report["latency"])
    device = manifest["stages"][5]["metrics"]["arm64_qemu"]  # every test image through the arm64 bundle
    assert device["images"] == report["run"]["data"]["samples"] and device["top1_agreement"] == 1.0 and device["max_abs_error"] <= 1e-3
    assert device["accuracy_arm64_qemu"] == device["accuracy_onnxruntime"]
    for name in ("report.md", "report.html"):
        assert (out / "06-report" / name).stat().st_size > 0


@pytest.mark.slow
def test_run_onnx_runs_in_onnxruntime_with_the_recorded_accuracy(finished_run):
    import onnxruntime as ort

    _, out = finished_run
    manifest = read_manifest(out)
    export = manifest["stages"][3]
    session = ort.InferenceSession(str(out / export["outputs"]["onnx"]["path"]), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: np.zeros((2, 1, 8, 8), dtype=np.float32)})[0]
    assert logits.shape == (2, 10)
    assert export["metrics"]["onnx_test_accuracy"] == pytest.approx(manifest["stages"][2]["metrics"]["test_accuracy"], abs=0.01)


@pytest.mark.slow
def test_verify_passes_then_fails_after_tampering(finished_run, capsys, tmp_path):
    _, out = finished_run
    code, stdout, _ = _cli(["verify", str(out)], capsys)
    assert code == 0 and "FAIL" not in stdout
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    onnx = copy / "04-export" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    code, stdout, err = _cli(["verify", str(copy)], capsys)
    assert code != 0 and "sha256 differs" in stdout and err.startswith("error: verify:")


@pytest.mark.slow
def test_verify_checks_every_file_of_the_arm64_bundle(finished_run, capsys, tmp_path):
    _, out = finished_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    library = next(copy.glob("05-compile/bundle/model.so"))
    data = bytearray(library.read_bytes())
    data[len(data) // 2] ^= 0xFF
    library.write_bytes(bytes(data))
    code, stdout, err = _cli(["verify", str(copy)], capsys)
    assert code != 0 and "bundle/model.so: sha256 differs from the bundle manifest" in stdout


@pytest.mark.slow
def test_report_rerenders_and_compares_two_runs(finished_run, capsys, tmp_path):
    _, out = finished_run
    code, stdout, _ = _cli(["report", str(out)], capsys)
    assert code == 0 and "report.html" in stdout
    code, stdout, _ = _cli(["report", str(out), "--compare", str(out), "--out", str(tmp_path)], capsys)
    assert code == 0 and (tmp_path / "compare.md").exists() and (tmp_path / "compare.html").exists()


@pytest.mark.slow
def test_resume_of_finished_run_prints_json_and_enforces_accuracy_budget(finished_run, capsys):
    model, out = finished_run
    code, stdout, err = _cli(["run", str(model), "--target", "arm64", "--out", str(out), "--resume", "--json", *FAST], capsys)
    summary = json.loads(stdout)
    assert code == 0 and summary["status"] == "ok" and len(summary["stages"]) == 6
    code, stdout, err = _cli(
        ["run", str(model), "--target", "arm64", "--out", str(out), "--resume", "--json", "--max-accuracy-drop", "-1", *FAST], capsys
    )
    assert code == 3 and json.loads(stdout)["status"] == "accuracy-budget-exceeded" and "accuracy dropped" in err


def test_dry_run_prints_plan_and_writes_nothing(tmp_path, capsys, tiny_model_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(tiny_model_path), "--target", "host", "--out", str(tmp_path / "dry"), "--dry-run", *FAST])
    assert exit_info.value.code == 0
    err = capsys.readouterr().err
    assert err.count("[dry-run]") == 6
    assert not (tmp_path / "dry").exists()
