"""Runs are never lost or overwritten, and ``verify`` checks what it claims."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil

import pytest

from pipeline.atomic import sha256_file
from pipeline.cli import main
from pipeline.manifest import read_manifest
from pipeline.model.bundle import ModelBundle, save_bundle
from tests.pipeline.conftest import save_tiny_bundle

FAST = ["--data", "digits", "--train-limit", "64", "--test-limit", "32", "--target", "host"]
PWNED = "/tmp/compress-verify-bundle-ran"


def _cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--quiet", *args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err.strip()


def _tree(directory) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory):
    """A run up to export (torch -> ONNX parity is checkable), and the model it started from."""
    root = tmp_path_factory.mktemp("integrity")
    model = save_tiny_bundle(root / "tiny.pt")
    out = root / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["--quiet", "run", str(model), "--out", str(out), "--until", "export", *FAST])
    assert exit_info.value.code == 0
    return model, out


def _copy(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    return copy


def _edit_manifest(run, edit) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    edit(manifest)
    (run / "manifest.json").write_text(json.dumps(manifest))


def test_verify_never_builds_an_architecture_named_by_a_run_file(exported_run, tmp_path, capsys):
    copy = _copy(exported_run[1], tmp_path)
    quantized = copy / "03-quantize" / "model.pt"
    save_bundle(quantized, ModelBundle(arch="subprocess:call", arch_kwargs={"args": ["touch", PWNED]}, input_shape=(1, 8, 8), state_dict={}))

    def point_at_the_new_bundle(manifest):
        for record in manifest["stages"]:
            for artifact in [*record["inputs"].values(), *record["outputs"].values()]:
                if artifact["path"] == "03-quantize/model.pt":
                    artifact["sha256"], artifact["bytes"] = sha256_file(quantized), quantized.stat().st_size

    _edit_manifest(copy, point_at_the_new_bundle)
    code, _, err = _cli(["verify", str(copy)], capsys)
    assert code != 0 and "'subprocess:call', which is not registered" in err and len(err.splitlines()) == 1
    assert not os.path.exists(PWNED)


@pytest.mark.parametrize("path", ["/etc/passwd", "../other-run/model.pt"])
def test_verify_refuses_a_manifest_path_outside_the_run(exported_run, tmp_path, capsys, path):
    copy = _copy(exported_run[1], tmp_path)

    def escape(manifest):
        manifest["stages"][0]["outputs"]["model"]["path"] = path

    _edit_manifest(copy, escape)
    code, _, err = _cli(["verify", str(copy)], capsys)
    assert code == 2 and "points outside the run directory" in err


def test_verify_fails_on_a_stage_record_without_outputs(exported_run, tmp_path, capsys):
    copy = _copy(exported_run[1], tmp_path)
    _edit_manifest(copy, lambda manifest: manifest["stages"][1].pop("outputs"))
    code, _, err = _cli(["verify", str(copy)], capsys)
    assert code == 2 and "stage record 1 lacks outputs" in err


def test_run_into_a_finished_run_without_resume_touches_nothing(exported_run, tmp_path, capsys):
    model, run = exported_run
    other = save_tiny_bundle(tmp_path / "other.pt")
    before = _tree(run)
    code, _, err = _cli(["run", str(other), "--out", str(run), "--until", "export", *FAST], capsys)
    assert code == 2 and "already holds a run" in err
    assert _tree(run) == before


def test_resume_with_a_different_model_is_refused(exported_run, tmp_path, capsys):
    _, run = exported_run
    copy = _copy(run, tmp_path)
    other = tmp_path / "other.pt"
    save_bundle(other, ModelBundle(arch="tests-tiny-cnn", input_shape=(1, 8, 8), state_dict={k: v + 1 for k, v in torch_state().items()}))
    before = _tree(copy)
    code, _, err = _cli(["run", str(other), "--out", str(copy), "--until", "export", "--resume", *FAST], capsys)
    assert code == 2 and "the input model differs" in err
    assert _tree(copy) == before


def torch_state():
    import torch

    from tests.pipeline.tiny import tiny_cnn

    torch.manual_seed(1)
    return tiny_cnn().state_dict()


def test_a_non_empty_directory_that_is_not_a_run_is_refused_untouched(tmp_path, capsys):
    model = save_tiny_bundle(tmp_path / "tiny.pt")
    mine = tmp_path / "mine"
    (mine / "05-compile" / "bundle").mkdir(parents=True)
    (mine / "05-compile" / "bundle" / "notes.txt").write_text("my files")
    before = _tree(mine)
    code, _, err = _cli(["run", str(model), "--out", str(mine), *FAST], capsys)
    assert code == 2 and "not a compress run" in err
    assert _tree(mine) == before and sorted(p.name for p in mine.iterdir()) == ["05-compile"]


def test_a_second_process_on_a_locked_run_directory_exits_with_one_line(tmp_path, capsys):
    model = save_tiny_bundle(tmp_path / "tiny.pt")
    run = tmp_path / "run"
    run.mkdir()
    with open(run / ".compress.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        code, _, err = _cli(["run", str(model), "--out", str(run), "--until", "train-sparse", *FAST], capsys)
    assert code == 2 and "another compress process is working in" in err and len(err.splitlines()) == 1
    assert not (run / "manifest.json").exists()


def test_an_onnx_input_is_copied_into_the_run_so_verify_stays_inside(exported_run, tmp_path, capsys):
    onnx = exported_run[1] / "04-export" / "model.onnx"
    out = tmp_path / "from-onnx"
    code, _, err = _cli(["run", str(onnx), "--out", str(out), "--target", "host"], capsys)
    assert code == 0, err
    manifest = read_manifest(out)
    assert manifest["inputs"]["onnx"]["path"] == "00-input/model.onnx"
    assert (out / "00-input" / "model.onnx").read_bytes() == onnx.read_bytes()


def test_a_full_disk_during_the_report_names_the_stage_even_when_the_manifest_cannot_be_written(tmp_path, capsys, monkeypatch):
    import errno

    import pipeline.atomic

    model = save_tiny_bundle(tmp_path / "tiny.pt")
    run = tmp_path / "run"
    code, _, _ = _cli(["run", str(model), "--out", str(run), "--until", "compile", *FAST], capsys)
    assert code == 0
    real_replace = pipeline.atomic.os.replace
    full = {"on": False}

    def disk_full_from_the_report_on(source, destination):
        full["on"] = full["on"] or str(destination).endswith("06-report/report.json")
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(source, destination)

    monkeypatch.setattr(pipeline.atomic.os, "replace", disk_full_from_the_report_on)
    code, _, err = _cli(["run", str(model), "--out", str(run), "--resume", *FAST], capsys)
    assert code != 0 and err.startswith("error: report: I/O error: No space left on device") and len(err.splitlines()) == 1
    assert [r["status"] for r in read_manifest(run)["stages"]][:5] == ["done"] * 5
    assert not [p for p in (run / "06-report").rglob("*") if p.is_file()], "the failed report left partial files"


def test_an_onnx_input_with_external_weights_is_copied_with_them(tmp_path, capsys):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    source = tmp_path / "model"
    source.mkdir()
    weight = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(source / "model.onnx"),
              save_as_external_data=True, location="weights.bin", size_threshold=0)
    out = tmp_path / "run"
    code, _, err = _cli(["compile", str(source / "model.onnx"), "--target", "host", "--out", str(out)], capsys)
    assert code == 0, err
    assert (out / "00-input" / "weights.bin").read_bytes() == (source / "weights.bin").read_bytes()


def test_json_reports_a_failure_as_a_json_object_on_stdout(tmp_path, capsys):
    import json

    model = save_tiny_bundle(tmp_path / "tiny.pt")
    with pytest.raises(SystemExit) as done:
        main(["--quiet", "run", str(model), "--json", "--recipe", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "run")])
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert done.value.code == 2 and summary["status"] == "error" and summary["stage"] is None
    assert "cannot read recipe" in summary["message"] and summary["exit_code"] == 2
    assert len(captured.err.strip().splitlines()) == 1

    bad = tmp_path / "bad.npz"
    import numpy as np

    np.savez(bad, x=np.zeros((20, 1, 8, 8), np.float32), y=np.arange(20) % 10 + 40)  # labels beyond the outputs
    with pytest.raises(SystemExit) as done:
        main(["--quiet", "run", str(model), "--json", "--data", str(bad), "--out", str(tmp_path / "run2")])
    summary = json.loads(capsys.readouterr().out)
    assert done.value.code == 2 and summary["stage"] == "train-sparse" and "outputs" in summary["message"]


def test_progress_bars_draw_only_on_a_terminal(monkeypatch):
    import sys

    from pipeline.training.progress import progress_bar

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert progress_bar(total=3, desc="x", enabled=True).disable
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar = progress_bar(total=3, desc="x", enabled=True)
    assert not bar.disable
    bar.close()


def test_a_logged_run_prints_one_line_per_epoch_and_no_carriage_returns(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from tests.pipeline.conftest import TINY_FACTORY

    repo = Path(__file__).resolve().parents[2]
    model = save_tiny_bundle(tmp_path / "tiny.pt", arch=TINY_FACTORY)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "train-sparse", str(model), "--arch", TINY_FACTORY, "--epochs", "2",
         "--data", "digits", "--train-limit", "128", "--test-limit", "32", "--out", str(tmp_path / "run")],
        cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "\r" not in done.stderr
    assert [line for line in done.stderr.splitlines() if " epoch " in line and "test accuracy" in line] == [
        line for line in done.stderr.splitlines() if line.startswith("train epoch")
    ]
    assert sum(line.startswith("train epoch") for line in done.stderr.splitlines()) == 2


def test_default_preprocessing_is_recorded_in_the_bundle_and_the_onnx(tmp_path, capsys):
    """A user's model run with default preprocessing records what a device must do."""
    import onnx

    from deploy.onnx import read_preprocess
    from pipeline.model.bundle import load_bundle

    model = save_tiny_bundle(tmp_path / "tiny.pt")
    run = tmp_path / "run"
    code, _, err = _cli(["run", str(model), "--out", str(run), "--until", "export", *FAST], capsys)
    assert code == 0, err
    stages = {r["name"]: r for r in read_manifest(run)["stages"]}
    recorded = load_bundle(run / stages["quantize"]["outputs"]["model"]["path"]).preprocess
    assert recorded["scale"] == pytest.approx(1 / 16) and recorded["layout"] == "NCHW" and recorded["channels"] == 1
    assert len(recorded["input_range"]) == 2
    metadata = read_preprocess(onnx.load(str(run / stages["export"]["outputs"]["onnx"]["path"])))
    assert metadata["scale"] == pytest.approx(1 / 16) and metadata["dtype"] == "float32"
