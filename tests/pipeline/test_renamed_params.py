"""A recipe written with an earlier hyperparameter name still runs, with one warning line; today's name
gives the same run without it (the names' table is ``compress.optim.renamed``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from compress.models import create_model
from pipeline.manifest import read_manifest

REPO = Path(__file__).resolve().parents[2]
RECIPE = "stages:\n  - use: train-sparse\n    with: {{method: admm, epochs: 1, batch-size: 16, params: {{{params}}}}}\n"
FAST = ["--data", "digits", "--train-limit", "48", "--test-limit", "16", "--threads", "1"]


def _run(tmp_path: Path, label: str, params: str) -> tuple[subprocess.CompletedProcess, Path]:
    model = tmp_path / "lenet5.pt"
    if not model.exists():
        torch.manual_seed(0)
        torch.save(create_model("lenet5").state_dict(), model)
    recipe = tmp_path / f"{label}.yaml"
    recipe.write_text(RECIPE.format(params=params))
    out = tmp_path / label
    command = [sys.executable, "-m", "pipeline", "run", str(model), "--arch", "lenet5", "--recipe", str(recipe), "--out", str(out), *FAST]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300), out


def test_recipe_with_earlier_names_runs_and_warns_once_per_name_and_todays_names_do_not(tmp_path):
    old, old_run = _run(tmp_path, "old", "sparsity: 0.8, channel-axis: output, admm-epochs: 1")
    new, new_run = _run(tmp_path, "new", "sparsity_ratio: 0.8, group-axis: output, admm-epochs: 1")
    assert old.returncode == 0, old.stderr
    assert new.returncode == 0, new.stderr
    warned = [line for line in old.stderr.splitlines() if "deprecated" in line]
    assert warned == [
        "warning: method admm: 'sparsity' is deprecated, use 'sparsity_ratio'",
        "warning: method admm: 'channel-axis' is deprecated, use 'group-axis'",
    ]
    assert "deprecated" not in new.stderr
    old_metrics, new_metrics = (read_manifest(run)["stages"][0]["metrics"] for run in (old_run, new_run))
    assert old_metrics["weight_sparsity"] == new_metrics["weight_sparsity"] > 0.5
