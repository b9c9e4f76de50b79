"""``docs/adding-a-method.md`` is true: its one-file method, loaded with ``--plugin``, runs through
``compress train-sparse`` and does what it says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import torch

from pipeline.manifest import read_manifest
from tests.pipeline.conftest import TINY_FACTORY, save_tiny_bundle

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "adding-a-method.md"


def _method_file(tmp_path: Path) -> Path:
    """The guide's ``hard_threshold.py`` code block, written out as the guide says."""
    text = GUIDE.read_text()
    block = re.search(r"`hard_threshold.py`:\n\n```python\n(.*?)```", text, re.S)
    assert block, "the guide lost its hard_threshold.py example"
    path = tmp_path / "hard_threshold.py"
    path.write_text(block.group(1))
    return path


def _compress(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_the_guide_s_method_runs_through_train_sparse_from_one_file(tmp_path):
    plugin = _method_file(tmp_path)
    listed = _compress("--plugin", str(plugin), "methods", "-v")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"hard-threshold\s+Iterative hard thresholding", listed.stdout)
    assert "threshold = 0.02" in listed.stdout

    model = save_tiny_bundle(tmp_path / "tiny.pt", arch=TINY_FACTORY)
    out = tmp_path / "run"
    done = _compress(
        "--quiet", "--plugin", str(plugin), "train-sparse", str(model), "--arch", TINY_FACTORY,
        "--method", "hard-threshold", "--params", "threshold=0.1", "--data", "digits",
        "--train-limit", "128", "--test-limit", "64", "--epochs", "1", "--threads", "1", "--out", str(out),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = read_manifest(out)["stages"][0]
    assert record["metrics"]["method"] == "hard-threshold"
    assert record["metrics"]["weight_sparsity"] > 0.2
    state = torch.load(out / record["outputs"]["model"]["path"], map_location="cpu", weights_only=True)["state_dict"]
    weights = [tensor for name, tensor in state.items() if name.endswith("weight") and tensor.dim() >= 2]
    assert all(bool((w[w != 0].abs() > 0.1).all()) for w in weights), "a weight at or below the threshold survived"


def test_a_bad_hyperparameter_of_a_plugin_method_is_one_line(tmp_path):
    plugin = _method_file(tmp_path)
    model = save_tiny_bundle(tmp_path / "tiny.pt", arch=TINY_FACTORY)
    done = _compress(
        "--quiet", "--plugin", str(plugin), "train-sparse", str(model), "--arch", TINY_FACTORY,
        "--method", "hard-threshold", "--params", "threshold=-1", "--data", "digits", "--out", str(tmp_path / "run"),
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == ["error: train-sparse: method hard-threshold: threshold must be >= 0, got -1.0"]


def test_a_plugin_that_fails_to_import_is_one_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    done = _compress("--plugin", str(broken), "methods")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: plugin {broken} failed to load: RuntimeError: boom"]
