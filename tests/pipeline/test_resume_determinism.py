"""Interrupted runs resume to the same result; two runs with one seed give identical artifacts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.atomic import sha256_file
from pipeline.manifest import read_manifest
from tests.pipeline.conftest import TINY_FACTORY

REPO = Path(__file__).resolve().parents[2]
RECIPE = """
stages:
  - use: train-sparse
    with: {epochs: 3, lr: 0.05, batch-size: 16}
  - use: prune
    with: {sparsity-ratio: 0.6, epochs: 2, batch-size: 16}
  - use: quantize
    with: {epochs: 2, batch-size: 16}
  - use: export
  - use: compile
    with: {target: host}
"""
VOLATILE = {"seconds", "started", "finished", "created", "updated", "compile_seconds", "images_per_second"}


def _command(model: Path, out: Path, recipe: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "pipeline", "--quiet", "run", str(model), "--target", "host", "--recipe", str(recipe),
        "--data", "digits", "--train-limit", "600", "--test-limit", "64", "--threads", "1", "--out", str(out), "--arch", TINY_FACTORY, *extra,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _run(model, out, recipe, *extra) -> None:
    completed = subprocess.run(_command(model, out, recipe, *extra), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-2000:]


def _final_onnx(out: Path) -> Path:
    manifest = read_manifest(out)
    record = next(r for r in manifest["stages"] if r["name"] == "export")
    return out / record["outputs"]["onnx"]["path"]


def _kill_when(model, out, recipe, *extra: str, stage: str, checkpoint: str | None) -> None:
    process = subprocess.Popen(_command(model, out, recipe, *extra), cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if _stage_running(out, stage) and (checkpoint is None or any(out.glob(f"*-{stage}/{checkpoint}"))):
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                return
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
    pytest.fail(f"the run ended before stage {stage} could be interrupted")


def _stage_running(out: Path, stage: str) -> bool:
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return any(r["name"] == stage and r["status"] == "running" for r in manifest["stages"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from tests.pipeline.conftest import save_tiny_bundle

    root = tmp_path_factory.mktemp("reference")
    model = save_tiny_bundle(root / "tiny.pt", arch=TINY_FACTORY)
    recipe = root / "recipe.yaml"
    recipe.write_text(RECIPE)
    _run(model, root / "run", recipe)
    return model, recipe, root / "run"


@pytest.mark.slow
@pytest.mark.parametrize(
    "stage,checkpoint",
    [("train-sparse", "train-epoch-checkpoint.pt"), ("prune", None), ("quantize", None), ("export", None), ("compile", None)],
)
def test_killed_run_resumes_to_the_uninterrupted_onnx(tmp_path, reference, stage, checkpoint):
    model, recipe, reference_run = reference
    out = tmp_path / "run"
    until = () if stage == "compile" else ("--until", "export")
    _kill_when(model, out, recipe, *until, stage=stage, checkpoint=checkpoint)
    _run(model, out, recipe, "--resume", *until)
    manifest = read_manifest(out)
    assert [r["status"] for r in manifest["stages"]] == ["done"] * (5 if stage == "compile" else 4)
    for record in manifest["stages"]:
        for artifact in record["outputs"].values():
            assert sha256_file(out / artifact["path"]) == artifact["sha256"]
    assert sha256_file(_final_onnx(out)) == sha256_file(_final_onnx(reference_run))


def _stable(value):
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


@pytest.mark.slow
def test_two_runs_with_one_seed_give_identical_onnx_and_manifest(tmp_path, reference):
    model, recipe, reference_run = reference
    _run(model, tmp_path / "again", recipe)
    assert sha256_file(_final_onnx(tmp_path / "again")) == sha256_file(_final_onnx(reference_run))
    assert _stable(read_manifest(tmp_path / "again")) == _stable(read_manifest(reference_run))


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_with_one_line_saying_how_to_resume(tmp_path, reference, signal_number):
    model, recipe, _ = reference
    out = tmp_path / "run"
    process = subprocess.Popen(_command(model, out, recipe), cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=_default_sigint)  # a test run started in the background inherits SIGINT ignored
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None and not _stage_running(out, "train-sparse"):
        time.sleep(0.05)
    process.send_signal(signal_number)
    _, err = process.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert process.returncode == 130, err
    assert len(lines) == 1 and "resume with: compress" in lines[0] and "--resume" in lines[0], err
    assert read_manifest(out)["stages"][0]["status"] == "interrupted"
