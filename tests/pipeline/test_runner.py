import json

import pytest

from pipeline.errors import UserError
from pipeline.manifest import read_manifest
from pipeline.recipe import parse_recipe
from pipeline.runner import Runner

RECIPE = """
stages:
  - use: train-sparse
    with: {epochs: 1, lr: 0.05}
  - use: prune
    with: {sparsity-ratio: 0.5, epochs: 1}
  - use: quantize
    with: {epochs: 0}
"""


def _run(tmp_path, model, options, *, resume=False, until=None, recipe=RECIPE, log=None):
    runner = Runner(parse_recipe(recipe), run_dir=tmp_path / "run", options=options, log=log or (lambda m: None))
    return runner.run({"model": model}, resume=resume, until=until)


def test_runner_writes_manifest_with_one_record_per_stage(tmp_path, tiny_model_path, digits_options):
    manifest = _run(tmp_path, tiny_model_path, digits_options)
    on_disk = read_manifest(tmp_path / "run")
    assert [r["name"] for r in on_disk["stages"]] == ["train-sparse", "prune", "quantize"]
    assert all(r["status"] == "done" for r in on_disk["stages"])
    record = on_disk["stages"][1]
    assert record["inputs"]["model"]["sha256"] == on_disk["stages"][0]["outputs"]["model"]["sha256"]
    assert len(record["outputs"]["model"]["sha256"]) == 64 and record["metrics"]["weight_sparsity"] > 0.4
    assert on_disk["versions"]["torch"] and manifest["recipe_sha256"] == on_disk["recipe_sha256"]


def test_runner_resume_skips_finished_stages(tmp_path, tiny_model_path, digits_options):
    _run(tmp_path, tiny_model_path, digits_options)
    messages = []
    _run(tmp_path, tiny_model_path, digits_options, resume=True, log=messages.append)
    assert sum("skipped" in m for m in messages) == 3


def test_runner_until_stops_after_the_named_stage(tmp_path, tiny_model_path, digits_options):
    _run(tmp_path, tiny_model_path, digits_options, until="prune")
    assert [r["name"] for r in read_manifest(tmp_path / "run")["stages"]] == ["train-sparse", "prune"]


def test_runner_refuses_existing_run_without_resume(tmp_path, tiny_model_path, digits_options):
    _run(tmp_path, tiny_model_path, digits_options, until="train-sparse")
    with pytest.raises(UserError, match="--resume"):
        _run(tmp_path, tiny_model_path, digits_options, until="train-sparse")


def test_runner_refuses_resume_with_a_different_recipe(tmp_path, tiny_model_path, digits_options):
    _run(tmp_path, tiny_model_path, digits_options, until="train-sparse")
    with pytest.raises(UserError, match="different recipe"):
        _run(tmp_path, tiny_model_path, digits_options, resume=True, recipe=RECIPE.replace("0.5", "0.6"))


def test_runner_records_failed_stage_and_reraises(tmp_path, tiny_model_path, digits_options):
    recipe = "stages:\n  - use: prune\n    with: {sparsity-ratio: 0.5, exclude: [no_such_layer]}\n"  # fails on the model
    with pytest.raises(UserError, match="no_such_layer"):
        _run(tmp_path, tiny_model_path, digits_options, recipe=recipe)
    record = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"][0]
    assert record["status"] == "failed" and "no_such_layer" in record["error"]


def test_runner_refuses_a_bad_stage_setting_before_any_stage_runs(tmp_path, tiny_model_path, digits_options):
    recipe = "stages:\n  - use: train-sparse\n  - use: prune\n    with: {sparsity-ratio: 0.5, pattern: block, block: [0, 1]}\n"
    with pytest.raises(UserError, match="prune: block must be two positive integers"):
        _run(tmp_path, tiny_model_path, digits_options, recipe=recipe)
    assert not (tmp_path / "run" / "manifest.json").exists(), "train-sparse must not have run"


def test_runner_rejects_stage_whose_input_is_missing(tmp_path, tiny_model_path, digits_options):
    with pytest.raises(UserError, match="needs a onnx input"):
        _run(tmp_path, tiny_model_path, digits_options, recipe="stages:\n  - use: compile\n")
