"""compress run with goals, end to end on the tiny CNN: an impossible goal exits 3 with the best
candidate shipped and the shortfall stated; --resume reuses the sensitivity sweep and the candidates."""

from __future__ import annotations

import json

import pytest

from pipeline.manifest import read_manifest
from tests.pipeline.conftest import run_cli

FAST = ["--data", "digits", "--train-limit", "300", "--test-limit", "100", "--target", "host"]
RECIPE = """
goal: {levels: [0.0, 0.5, 0.9], calibration-samples: 100, epochs: 1}
stages:
  - use: prune
  - use: quantize
    with: {method: ternary, epochs: 0}
  - use: export
  - use: compile
  - use: report
    with: {runs: 5, warmup: 1, tvm-dense: false, device-images: 0}
"""


@pytest.fixture(scope="module")
def goal_run(tmp_path_factory):
    from tests.pipeline.conftest import save_tiny_bundle

    root = tmp_path_factory.mktemp("goal")
    recipe = root / "goal.yaml"
    recipe.write_text(RECIPE)
    return save_tiny_bundle(root / "tiny.pt"), recipe, root / "run", root / "cache"


@pytest.mark.slow
def test_impossible_goal_exits_3_with_the_best_candidate_shipped_and_the_shortfall_stated(goal_run, capsys, monkeypatch):
    model, recipe, out, cache = goal_run
    monkeypatch.setenv("COMPRESS_CACHE_DIR", str(cache))  # latency tables of this test only
    code, out_text, err = run_cli(["run", str(model), "--recipe", str(recipe), "--out", str(out), "--min-speedup", "50", "--search-budget", "0.05", "--json", *FAST], capsys)
    assert code == 3
    assert "goal not met" in err and "short by" in err and "candidate-00" in err
    assert json.loads(out_text)["status"] == "goal-not-met"
    search = json.loads((out / "goal" / "search.json").read_text())
    assert search["status"] == "not-met" and search["shipped"] == 0
    assert search["calibration"]["split"] == "train" and search["calibration"]["samples"] == 100
    manifest = read_manifest(out)  # the shipped candidate is the run directory's own run
    assert [r["name"] for r in manifest["stages"]] == ["prune", "quantize", "export", "compile", "report"]
    assert (out / manifest["stages"][-1]["outputs"]["report-json"]["path"]).exists()
    candidate = search["candidates"][0]
    assert candidate["goals"][0]["goal"] == "min_speedup" and not candidate["goals"][0]["met"]
    assert max(candidate["allocation"].values()) == 0.9  # an unreachable goal: every layer at its fastest level
    for name in ("goal.md", "goal.html", "pareto.png"):
        assert (out / "goal" / name).stat().st_size > 0
    assert "NOT met" in (out / "goal" / "goal.md").read_text()


@pytest.mark.slow
def test_resume_reuses_the_sensitivity_sweep_and_the_finished_candidates(goal_run, capsys, monkeypatch):
    model, recipe, out, cache = goal_run
    monkeypatch.setenv("COMPRESS_CACHE_DIR", str(cache))  # latency tables of this test only
    sensitivity = out / "goal" / "sensitivity.json"
    before = sensitivity.stat().st_mtime_ns
    candidates = json.loads((out / "goal" / "search.json").read_text())["candidates"]
    code, _, err = run_cli(["run", str(model), "--recipe", str(recipe), "--out", str(out), "--min-speedup", "50", "--search-budget", "0.05", "--resume", *FAST], capsys)
    assert code == 3, err
    assert sensitivity.stat().st_mtime_ns == before  # read, not measured again
    assert json.loads((out / "goal" / "search.json").read_text())["candidates"] == candidates


SPARSE_RECIPE = RECIPE.replace("stages:\n", "stages:\n  - use: train-sparse\n    with: {method: xrda, epochs: 1, params: {mode: block}}\n")


@pytest.mark.slow
def test_a_recipe_with_train_sparse_trains_once_and_every_candidate_starts_from_it(tmp_path, capsys, monkeypatch):
    from tests.pipeline.conftest import save_tiny_bundle

    monkeypatch.setenv("COMPRESS_CACHE_DIR", str(tmp_path / "cache"))
    recipe = tmp_path / "sparse.yaml"
    recipe.write_text(SPARSE_RECIPE)
    model, out = save_tiny_bundle(tmp_path / "tiny.pt"), tmp_path / "run"
    code, _, err = run_cli(["run", str(model), "--recipe", str(recipe), "--out", str(out), "--min-speedup", "50", "--search-budget", "0.05", *FAST], capsys)
    assert code == 3, err
    sparse = read_manifest(out / "goal" / "sparse")["stages"][0]
    candidate = read_manifest(out / "goal" / "candidate-00")
    assert [s["name"] for s in candidate["stages"]][:2] == ["train-sparse", "prune"]
    assert candidate["stages"][0] == sparse  # the one sparse-trained stage, reused (same id, same start time), not trained again
    assert candidate["stages"][1]["inputs"]["model"]["sha256"] == sparse["outputs"]["model"]["sha256"]  # pruned from it
    assert candidate["inputs"]["model"]["sha256"] == read_manifest(out / "goal" / "input")["inputs"]["model"]["sha256"]  # drop vs the dense input
