"""Stage options that the end-to-end test does not exercise: adversarial training, methods of the
papers from the CLI, block pruning layouts, channel removal, int8 quantization."""

from __future__ import annotations

import pytest
import torch

from pipeline.manifest import read_manifest
from pipeline.model.bundle import build_model, load_bundle
from pipeline.recipe import parse_recipe
from pipeline.runner import Runner


def _run(tmp_path, model, options, recipe: str) -> dict:
    Runner(parse_recipe(recipe), run_dir=tmp_path / "run", options=options, log=lambda m: None).run({"model": model})
    return read_manifest(tmp_path / "run")


def _model(tmp_path, manifest, index: int = -1):
    record = [r for r in manifest["stages"] if "model" in r["outputs"]][index]
    return load_bundle(tmp_path / "run" / record["outputs"]["model"]["path"])


def test_train_sparse_adversarial_pgd_trains_and_report_shows_robust_accuracy(tmp_path, tiny_model_path, digits_options):
    manifest = _run(
        tmp_path, tiny_model_path, digits_options,
        "stages:\n  - use: train-sparse\n    with: {epochs: 1, adversarial: pgd, adv-eps: 0.1, adv-steps: 3, adv-step-size: 0.05}\n"
        "  - use: report\n    with: {runs: 3, warmup: 1, robust: [fgsm, pgd], robust-eps: 0.1, robust-steps: 3, robust-samples: 32, tvm-dense: false}\n",
    )
    assert manifest["stages"][0]["status"] == "done"
    import json

    report = json.loads((tmp_path / "run" / manifest["stages"][1]["outputs"]["report-json"]["path"]).read_text())
    robust = {v["name"]: v.get("robust_accuracy") for v in report["variants"]}
    assert set(robust["dense"]) == {"fgsm", "pgd"} and set(robust["sparse-trained"]) == {"fgsm", "pgd"}


@pytest.mark.parametrize("method", ["admm", "rvsm", "rgsm", "sgl", "xrda", "ssgd", "group-lasso", "l1-prox"])
def test_train_sparse_runs_each_method_of_the_papers(tmp_path, tiny_model_path, digits_options, method):
    manifest = _run(tmp_path, tiny_model_path, digits_options, f"stages:\n  - use: train-sparse\n    with: {{method: {method}, epochs: 1}}\n")
    metrics = manifest["stages"][0]["metrics"]
    assert metrics["method"] == method and 0.0 <= metrics["weight_sparsity"] <= 1.0
    assert metrics["nonzero_weights"] > 0 and len(metrics["history"]) == 1


def test_prune_block_pattern_records_layouts_with_the_block_shape(tmp_path, tiny_model_path, digits_options):
    manifest = _run(tmp_path, tiny_model_path, digits_options, "stages:\n  - use: prune\n    with: {pattern: block, block: [4, 1], sparsity-ratio: 0.75, epochs: 0, remove-channels: false}\n")
    bundle = _model(tmp_path, manifest)
    blocks = {tuple(layout["block"]) for layout in bundle.layouts}
    assert blocks == {(4, 1)}
    weight = build_model(bundle).state_dict()["4.weight"]
    blocks_of_rows = weight.reshape(weight.shape[0] // 4, 4, -1).abs().sum(dim=1)
    assert bool(((blocks_of_rows == 0) | (weight.reshape(weight.shape[0] // 4, 4, -1).ne(0).all(dim=1))).all())


def test_prune_channel_ratio_shrinks_the_model_and_replays_from_the_plan(tmp_path, tiny_model_path, digits_options):
    manifest = _run(tmp_path, tiny_model_path, digits_options, "stages:\n  - use: prune\n    with: {channel-ratio: 0.5, channel-multiple: 1, sparsity-ratio: 0, epochs: 0}\n")
    metrics = manifest["stages"][0]["metrics"]
    assert metrics["parameters"] < metrics["before"]["parameters"] and metrics["macs"] < metrics["before"]["macs"]
    rebuilt = build_model(_model(tmp_path, manifest))
    assert rebuilt(torch.zeros(1, 1, 8, 8)).shape == (1, 10)


def test_quantize_int8_records_per_channel_scales(tmp_path, tiny_model_path, digits_options):
    manifest = _run(tmp_path, tiny_model_path, digits_options, "stages:\n  - use: quantize\n    with: {method: int8, epochs: 0, skip-first-last: false}\n")
    bundle = _model(tmp_path, manifest)
    assert {record["scheme"] for record in bundle.quant} == {"int8"}
    assert all(len(record["scales"]) == record["shape"][0] for record in bundle.quant)


@pytest.mark.slow
def test_report_measures_latency_on_an_rpc_device(tmp_path, tiny_model_path, digits_options):
    import json
    from dataclasses import replace

    from tvm import rpc

    server = rpc.Server(host="127.0.0.1", port=9300, port_end=9400, silent=True)
    try:
        options = replace(digits_options, device=f"rpc://127.0.0.1:{server.port}")
        manifest = _run(
            tmp_path, tiny_model_path, options,
            "stages:\n  - use: export\n  - use: compile\n    with: {target: host}\n"
            "  - use: report\n    with: {runs: 5, warmup: 1, tvm-dense: false}\n",
        )
    finally:
        server.terminate()
    report = json.loads((tmp_path / "run" / manifest["stages"][2]["outputs"]["report-json"]["path"]).read_text())
    remote = [row for row in report["latency"] if row["runtime"] == "tvm-rpc"]
    assert len(remote) == 1 and remote[0]["device"] == options.device and remote[0]["median_ms"] > 0


def test_help_shows_the_type_of_every_numeric_option(capsys):
    from pipeline.cli import main

    with pytest.raises(SystemExit):
        main(["prune", "--help"])
    text = capsys.readouterr().out
    for shown in ("--sparsity-ratio RATIO", "--epochs INTEGER", "--lr FLOAT", "--block A,B,..."):
        assert shown in text, shown


@pytest.mark.parametrize("stage", ["train-sparse", "prune", "quantize"])
def test_help_shows_the_built_in_recipes_value_of_every_option_it_sets(capsys, stage):
    """``compress <stage> --help`` must not hide what ``compress run`` really does with that stage."""
    import click

    from pipeline.cli import cli
    from pipeline.cli.options import _show, built_in_recipe_values

    values = built_in_recipe_values(stage)
    assert values, "the built-in recipe sets nothing for this stage: the test would prove nothing"
    command = cli.get_command(click.Context(cli), stage)
    helps = {param.name: " ".join((param.help or "").split()) for param in command.params if isinstance(param, click.Option)}
    default_config = __import__("pipeline.stages", fromlist=["stage_class"]).stage_class(stage).Config()
    for name, value in values.items():
        if getattr(default_config, name) != value and not (isinstance(value, list) and tuple(value) == getattr(default_config, name)):
            assert f"built-in recipe: {_show(value)}" in helps[name], (name, helps[name])
