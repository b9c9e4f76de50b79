"""A robust model stays robust through every stage: one run-level robust block trains
every stage adversarially, the report attacks what ships (ONNX and TVM build), the robust gate
exits 3, ``compress report --robust`` adds robust accuracy to a finished run, and RGSM with
adversarial training inside its splitting iterations is physically shrunk by prune."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from compress.models import create_model
from pipeline.cli import main
from pipeline.errors import UserError
from pipeline.manifest import read_manifest
from pipeline.recipe import parse_recipe
from pipeline.runner import Runner
from tests.pipeline.conftest import TINY_FACTORY

ROBUST_RECIPE = """
robust: {attack: pgd, eps: 0.1, steps: 2}
stages:
  - use: train-sparse
    with: {method: l1-prox, epochs: 1}
  - use: prune
    with: {sparsity-ratio: 0.5, epochs: 1}
  - use: quantize
    with: {method: ternary, epochs: 1, adversarial: fgsm}
  - use: export
  - use: compile
  - use: report
    with: {runs: 2, warmup: 1, robust-samples: 40, robust-steps: 3, tvm-dense: false, device-images: 0}
"""


def test_a_run_level_robust_block_reaches_every_training_stage_and_the_report():
    steps = {step.use: step.config for step in parse_recipe(ROBUST_RECIPE)}
    for name in ("train-sparse", "prune"):
        assert (steps[name].adversarial, steps[name].adv_eps, steps[name].adv_steps) == ("pgd", 0.1, 2)
    assert steps["quantize"].adversarial == "fgsm" and steps["quantize"].adv_eps == 0.1, "a stage's own setting wins, the rest is inherited"
    assert steps["report"].robust == ("pgd",) and steps["report"].robust_eps == 0.1
    plain = {step.use: step.config for step in parse_recipe(ROBUST_RECIPE.split("stages:")[0].replace("robust: {attack: pgd, eps: 0.1, steps: 2}", "") + "stages:" + ROBUST_RECIPE.split("stages:")[1])}
    assert plain["prune"].adversarial == "none" and plain["report"].robust == ()


@pytest.mark.parametrize(
    "block,message",
    [("{eps: 0.1}", "'attack' is required"), ("{attack: pgd, radius: 1}", "unknown key 'radius'"),
     ("{attack: cw}", "cw"), ("{attack: pgd, eps: -1}", "adv-eps"), ("[pgd]", "must be a mapping")],
)
def test_a_bad_robust_block_is_one_clear_error(block, message):
    with pytest.raises(UserError, match=message):
        parse_recipe(f"robust: {block}\nstages:\n  - use: prune\n")


def _tiny_state_dict(tmp_path):
    torch.manual_seed(0)
    from tests.pipeline.tiny import tiny_cnn

    path = tmp_path / "tiny.pt"
    torch.save(tiny_cnn().state_dict(), path)
    return path


def _run_cli(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(["--quiet", *args])
    captured = capsys.readouterr()
    return done.value.code, captured.out + captured.err


COMMON = ["--arch", TINY_FACTORY, "--input-shape", "1,8,8", "--data", "digits", "--train-limit", "128", "--test-limit", "64", "--threads", "1", "--target", "host"]


def test_robust_run_reports_clean_and_robust_accuracy_of_every_variant_and_of_what_ships(tmp_path, capsys):
    recipe = tmp_path / "robust.yaml"
    recipe.write_text(ROBUST_RECIPE)
    run = tmp_path / "run"
    code, output = _run_cli(capsys, "run", str(_tiny_state_dict(tmp_path)), "--recipe", str(recipe), "--out", str(run), "--json", *COMMON)
    assert code == 0, output
    manifest = read_manifest(run)
    report_record = manifest["stages"][-1]
    report = json.loads((run / report_record["outputs"]["report-json"]["path"]).read_text())
    variants = {v["name"]: v for v in report["variants"]}
    assert list(variants) == ["dense", "sparse-trained", "pruned", "quantized", "compiled"]
    for variant in variants.values():
        assert set(variant["robust_accuracy"]) == {"pgd"} and variant["accuracy"] is not None
    compiled, quantized = variants["compiled"], variants["quantized"]
    # the compiled variant's examples are crafted on the quantized torch model with the same seed:
    # the exported ONNX and the TVM build classify them as that model does (up to float ties)
    assert abs(compiled["robust_accuracy"]["pgd"] - quantized["robust_accuracy"]["pgd"]) <= 2 / 40
    assert abs(compiled["robust_accuracy_tvm"]["pgd"] - compiled["robust_accuracy"]["pgd"]) <= 2 / 40
    assert any(note.startswith("Robust accuracy: PGD at eps 0.1") for note in report["notes"])
    summary = json.loads(output[output.index("{"):output.rindex("}") + 1])
    assert summary["robust_accuracy_final"] == compiled["robust_accuracy"]
    assert summary["robust_drop"] == pytest.approx(variants["dense"]["robust_accuracy"]["pgd"] - compiled["robust_accuracy"]["pgd"])
    assert "robust" in (run / report_record["outputs"]["report-md"]["path"]).read_text().lower()


def test_the_robust_gate_exits_3_and_needs_a_robust_report(tmp_path, capsys):
    model = str(_tiny_state_dict(tmp_path))
    code, output = _run_cli(capsys, "run", model, "--max-robust-drop", "0.01", "--out", str(tmp_path / "r1"), *COMMON)
    assert code == 2 and "--max-robust-drop needs robust accuracy" in output
    assert not (tmp_path / "r1").exists(), "refused before anything was written"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "robust: {attack: fgsm, eps: 0.1}\nstages:\n  - use: prune\n    with: {sparsity-ratio: 0.9, epochs: 0}\n"
        "  - use: report\n    with: {runs: 2, warmup: 1, robust-samples: 32, tvm-dense: false, device-images: 0}\n"
    )
    # a budget below any possible drop (-1 point... of -100 %) must fail; a budget of 100 % must pass
    code, output = _run_cli(capsys, "run", model, "--recipe", str(recipe), "--max-robust-drop", "-1", "--json", "--out", str(tmp_path / "r2"), *COMMON)
    assert code == 3 and '"status": "robust-budget-exceeded"' in output
    code, output = _run_cli(capsys, "run", model, "--recipe", str(recipe), "--max-robust-drop", "1", "--out", str(tmp_path / "r3"), *COMMON)
    assert code == 0, output


def test_compress_report_adds_robust_accuracy_to_a_finished_run(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "stages:\n  - use: prune\n    with: {sparsity-ratio: 0.5, epochs: 0}\n  - use: export\n  - use: compile\n"
        "  - use: report\n    with: {runs: 2, warmup: 1, tvm-dense: false, device-images: 0}\n"
    )
    run = tmp_path / "run"
    code, output = _run_cli(capsys, "run", str(_tiny_state_dict(tmp_path)), "--recipe", str(recipe), "--out", str(run), *COMMON)
    assert code == 0, output
    record = read_manifest(run)["stages"][-1]
    before = json.loads((run / record["outputs"]["report-json"]["path"]).read_text())
    assert all("robust_accuracy" not in v for v in before["variants"])
    code, output = _run_cli(capsys, "report", str(run), "--robust", "fgsm", "--robust-eps", "0.05", "--robust-samples", "32", "--arch", TINY_FACTORY)
    assert code == 0, output
    record = read_manifest(run)["stages"][-1]
    after = json.loads((run / record["outputs"]["report-json"]["path"]).read_text())
    assert [set(v["robust_accuracy"]) for v in after["variants"]] == [{"fgsm"}] * len(after["variants"])
    assert "robust_accuracy_tvm" in after["variants"][-1] and "robust_drop" in record["metrics"]
    code, output = _run_cli(capsys, "verify", str(run), "--arch", TINY_FACTORY)
    assert code == 0, f"the manifest's hashes must match the rewritten report: {output}"


def _trained_tiny(tmp_path):
    """The tiny CNN trained naturally for a few epochs on digits (about 90% accurate)."""
    from pipeline.data import load_dataset
    from tests.pipeline.tiny import tiny_cnn

    torch.manual_seed(0)
    model = tiny_cnn()
    data = load_dataset("digits", train_limit=512)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(15):
        for start in range(0, 512, 64):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(data.train_x[start:start + 64]), data.train_y[start:start + 64]).backward()
            optimizer.step()
    path = tmp_path / "trained.pt"
    torch.save(model.state_dict(), path)
    return path


def test_natural_fine_tuning_of_a_robust_model_is_warned_and_adversarial_fine_tuning_is_not(tmp_path, capsys):
    model = str(_trained_tiny(tmp_path))
    # at a radius this small every accurate model is robust: the check must fire on natural fine-tuning
    args = ["prune", model, "--sparsity-ratio", "0.5", "--epochs", "1", "--adv-eps", "0.002", *COMMON[:-2]]
    code, output = _run_cli(capsys, *args, "--out", str(tmp_path / "natural"))
    assert code == 0, output
    notes = read_manifest(tmp_path / "natural")["stages"][0]["metrics"]["notes"]
    assert any("input model is adversarially robust" in note and "one line" not in note for note in notes)
    assert "warning: prune: the input model is adversarially robust" in output
    code, output = _run_cli(capsys, *args, "--adversarial", "pgd", "--out", str(tmp_path / "adversarial"))
    assert code == 0, output
    assert not any("robust" in note for note in read_manifest(tmp_path / "adversarial")["stages"][0]["metrics"]["notes"])
    # at the default radius 0.3 a naturally trained digits model is not robust: no false alarm
    code, output = _run_cli(capsys, "quantize", model, "--epochs", "1", "--out", str(tmp_path / "default-eps"), *COMMON[:-2])
    assert code == 0 and "adversarially robust" not in output


def test_adversarial_fine_tuning_changes_what_prune_and_quantize_train(tmp_path, digits_options, tiny_model_path):
    weights = {}
    for attack in ("none", "pgd"):
        for stage, options in (("prune", "sparsity-ratio: 0.5, epochs: 1"), ("quantize", "method: ternary, epochs: 1")):
            run = tmp_path / f"{stage}-{attack}"
            recipe = f"stages:\n  - use: {stage}\n    with: {{{options}, adversarial: {attack}, adv-eps: 0.1, adv-steps: 2}}\n"
            Runner(parse_recipe(recipe), run_dir=run, options=digits_options, log=lambda m: None).run({"model": tiny_model_path})
            record = read_manifest(run)["stages"][0]
            weights[stage, attack] = torch.load(run / record["outputs"]["model"]["path"], weights_only=True)["state_dict"]
    for stage in ("prune", "quantize"):
        natural, adversarial = weights[stage, "none"], weights[stage, "pgd"]
        assert any(not torch.equal(natural[k], adversarial[k]) for k in natural), f"{stage} ignored its adversarial options"


@pytest.mark.parametrize("arch,kwargs,shape", [("resnet20", {}, (3, 16, 16)), ("enresnet-mnist", {"num_ensembles": 1}, (1, 28, 28))])
def test_adversarial_rgsm_channel_pruning_is_physically_shrunk_by_prune(tmp_path, capsys, arch, kwargs, shape):
    """RGSM with PGD examples inside its splitting iterations (the robustness paper's setting) on a
    ResNet and the EnResNet-style model (per-layer cut at each layer's median group norm, so that two
    steps from a random start zero channels); prune then removes the channels it zeroed."""
    torch.manual_seed(0)
    model_path = tmp_path / "model.pt"
    net = create_model(arch, **kwargs)
    from pipeline.model.bundle import ModelBundle, save_bundle

    save_bundle(model_path, ModelBundle(arch=arch, arch_kwargs=kwargs, input_shape=shape, state_dict=net.state_dict()))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x=rng.integers(0, 256, (48, *shape), dtype=np.uint8), y=np.arange(48) % 10)
    common = ["--data", str(tmp_path / "data.npz"), "--train-limit", "32", "--test-limit", "16", "--threads", "1"]
    sparse = tmp_path / "sparse"
    code, output = _run_cli(capsys, "train-sparse", str(model_path), "--method", "rgsm", "--epochs", "1", "--batch-size", "16", "--params", "relative_threshold=1.0",
                            "--adversarial", "pgd", "--adv-eps", "0.1", "--adv-steps", "2", "--out", str(sparse), *common)
    assert code == 0, output
    reported = read_manifest(sparse)["stages"][0]["metrics"]["removable_channel_sparsity"]
    assert reported > 0, "RGSM zeroed no removable channel: the test would prove nothing"
    trained = sparse / read_manifest(sparse)["stages"][0]["outputs"]["model"]["path"]
    pruned = tmp_path / "pruned"
    code, output = _run_cli(capsys, "prune", str(trained), "--sparsity-ratio", "0", "--epochs", "0", "--out", str(pruned), *common)
    assert code == 0, output
    metrics = read_manifest(pruned)["stages"][0]["metrics"]
    assert metrics["removed_channel_sparsity"] == pytest.approx(reported) and metrics["parameters"] < metrics["before"]["parameters"]
    assert metrics["channel_removal_max_abs_difference"] <= 1e-5


def test_adversarial_training_works_on_standardised_inputs(tmp_path, capsys):
    """With --mean/--std the inputs leave [0, 1]; the attack undoes the standardisation to clip in pixels
    (the attack used to refuse such inputs, so adversarial training needed unstandardised data)."""
    code, output = _run_cli(capsys, "train-sparse", str(_tiny_state_dict(tmp_path)), "--epochs", "1", "--adversarial", "pgd",
                            "--adv-eps", "0.1", "--adv-steps", "2", "--mean", "0.3", "--std", "0.2", "--out", str(tmp_path / "run"), *COMMON[:-2])
    assert code == 0, output
    assert read_manifest(tmp_path / "run")["stages"][0]["status"] == "done"
