"""One fast end-to-end `compress run` (tiny CNN, scikit-learn digits, arm64 target) and the commands
that read a finished run: --json, verify, report, report --compare, --max-accuracy-drop, --dry-run."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.manifest import read_manifest
from tests.pipeline.conftest import run_cli

FAST = ["--data", "digits", "--train-limit", "400", "--test-limit", "120"]


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
    assert compile_record["metrics"]["bundle_check"]["status"] == "passed"
    assert compile_record["metrics"]["host_vs_onnxruntime_max_abs_error"] <= 1e-4
    report = json.loads((out / manifest["stages"][5]["outputs"]["report-json"]["path"]).read_text())
    runtimes = {(row["variant"], row["runtime"]) for row in report["latency"]}
    assert {("dense", "onnxruntime"), ("compiled", "onnxruntime"), ("compiled", "tvm-host")} <= runtimes
    assert all(row["runs"] >= 50 for row in report["latency"])
    device = manifest["stages"][5]["metrics"]["bundle_test_images"]  # every test image through the device bundle
    assert device["images"] == report["run"]["data"]["samples"] and device["top1_agreement"] == 1.0 and device["max_abs_error"] <= 1e-3
    assert device["accuracy_bundle"] == device["accuracy_onnxruntime"] and device["emulator"] == "qemu-aarch64"
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
    code, stdout, _ = run_cli(["verify", str(out)], capsys)
    assert code == 0 and "FAIL" not in stdout
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    onnx = copy / "04-export" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    code, stdout, err = run_cli(["verify", str(copy)], capsys)
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
    code, stdout, err = run_cli(["verify", str(copy)], capsys)
    assert code != 0 and "bundle/model.so: sha256 differs from the bundle manifest" in stdout


@pytest.mark.slow
def test_report_rerenders_and_compares_two_runs(finished_run, capsys, tmp_path):
    _, out = finished_run
    code, stdout, _ = run_cli(["report", str(out)], capsys)
    assert code == 0 and "report.html" in stdout
    code, stdout, _ = run_cli(["report", str(out), "--compare", str(out), "--out", str(tmp_path)], capsys)
    assert code == 0 and (tmp_path / "compare.md").exists() and (tmp_path / "compare.html").exists()


@pytest.mark.slow
def test_resume_of_finished_run_prints_json_and_enforces_accuracy_budget(finished_run, capsys):
    model, out = finished_run
    code, stdout, err = run_cli(["run", str(model), "--target", "arm64", "--out", str(out), "--resume", "--json", *FAST], capsys)
    summary = json.loads(stdout)
    assert code == 0 and summary["status"] == "ok" and len(summary["stages"]) == 6
    code, stdout, err = run_cli(
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


@pytest.mark.parametrize(
    "args,message",
    [
        (["--data", "fashion"], "unknown data 'fashion'"),
        (["--std", "0.3,0.2"], "--std has 2 values"),
        (["--recipe", "{recipe}"], "prune: sparsity-ratio must be in [0, 1), got 90"),
        (["--recipe", "{report_recipe}"], "report: report needs runs >= 1"),
    ],
)
def test_dry_run_validates_the_data_and_every_stage_before_anything_runs(tmp_path, capsys, tiny_model_path, args, message):
    """--dry-run checks what a run would (data source and channels, every stage's settings) without
    training; a real run refuses the same settings before its first stage trains."""
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("stages:\n  - use: train-sparse\n  - use: prune\n    with: {sparsity-ratio: 90}\n")
    report_recipe = tmp_path / "bad-report.yaml"
    report_recipe.write_text("stages:\n  - use: prune\n  - use: report\n    with: {runs: 0}\n")
    args = [a.format(recipe=recipe, report_recipe=report_recipe) for a in args]
    base = [a for a in FAST if a != "digits" and a != "--data"] if "--data" in args else FAST
    for extra in (["--dry-run"], []):
        with pytest.raises(SystemExit) as exit_info:
            main(["run", str(tiny_model_path), "--target", "host", "--out", str(tmp_path / "out"), *base, *args, *extra])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "out" / "01-train-sparse").exists() and not (tmp_path / "out" / "01-prune").exists()


def _fake_adb(directory, device_root):
    """An ``adb`` stand-in: ``push`` copies into ``device_root``, ``shell`` runs the command there
    with aarch64 executables under qemu (what a phone would run natively)."""
    script = directory / "adb"
    script.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "adb $*" >> {directory}/adb.log\n'
        'shift 2  # -s SERIAL\n'
        'case "$1" in\n'
        f'  push) mkdir -p {device_root}$3 && cp -r "$2" {device_root}$3 ;;\n'
        f'  shell) command=$(printf "%s" "$2" | sed -e "s#/data/local/tmp#{device_root}/data/local/tmp#g" '
        '-e "s#./runner#qemu-aarch64 -L /usr/aarch64-linux-gnu ./runner#") && bash -c "$command" ;;\n'
        "esac\n"
    )
    script.chmod(0o755)


@pytest.mark.slow
def test_bench_device_times_the_bundle_over_adb_and_adds_it_to_the_report(finished_run, capsys, tmp_path, monkeypatch):
    """The phone path without Python on the device: adb push the bundle, run its native runner's
    latency mode, fold the JSON into the report (adb is a stand-in running the runner under qemu)."""
    _, out = finished_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    bin_dir, device = tmp_path / "bin", tmp_path / "device"
    bin_dir.mkdir()
    _fake_adb(bin_dir, device)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    code, stdout, err = run_cli(["bench-device", str(copy), "--adb", "emulator-5554", "--runs", "5", "--warmup", "1"], capsys)
    assert code == 0, err
    stats = json.loads(stdout.strip().splitlines()[-1])
    assert stats["device"] == "adb:emulator-5554" and stats["runs"] == 5 and 0 < stats["min_ms"] <= stats["median_ms"] <= stats["p90_ms"]
    log = (bin_dir / "adb.log").read_text()
    assert "-s emulator-5554 push" in log and "./runner --latency ./model.so" in log
    assert (device / "data/local/tmp/compress-bundle/model.so").is_file()
    report = json.loads((copy / read_manifest(copy)["stages"][-1]["outputs"]["report-json"]["path"]).read_text())
    rows = [r for r in report["latency"] if r["runtime"] == "tvm-device"]
    assert len(rows) == 1 and rows[0]["device"] == "adb:emulator-5554" and rows[0]["median_ms"] == stats["median_ms"]
    assert run_cli(["verify", str(copy)], capsys)[0] == 0, "the manifest records the rewritten report"


@pytest.mark.slow
def test_bench_device_under_qemu_is_marked_as_not_device_latency(finished_run, capsys, tmp_path):
    _, out = finished_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    code, stdout, err = run_cli(["bench-device", str(copy), "--qemu", "--runs", "3", "--warmup", "1"], capsys)
    assert code == 0, err
    report = json.loads((copy / read_manifest(copy)["stages"][-1]["outputs"]["report-json"]["path"]).read_text())
    assert any("NOT device latency" in note for note in report["notes"])
    assert "emulated" in next(r for r in report["latency"] if r["runtime"] == "tvm-device")["device"]
    code, _, err = run_cli(["bench-device", str(copy), "--adb", "x", "--qemu"], capsys)
    assert code == 2 and "exactly one of" in err
