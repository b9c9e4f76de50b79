"""``compress run`` training knobs: --batch-size, --epochs [STAGE=]N, --augment, --lr-scale."""

from __future__ import annotations

import pytest

from compress.optim.method import TrainingMethod
from pipeline.cli.options import build_run_options
from pipeline.cli.overrides import apply_overrides
from pipeline.errors import UserError
from pipeline.recipe import load_recipe
from pipeline.stages.common import make_method


def test_overrides_set_every_training_stage_and_one_stage_epoch_budget():
    steps = apply_overrides(load_recipe(None), {"override_batch_size": 16, "override_epochs": ("1", "train-sparse=3"), "override_augment": "off"})
    configs = {step.use: step.config for step in steps}
    assert (configs["train-sparse"].epochs, configs["prune"].epochs, configs["quantize"].epochs) == (3, 1, 1)
    assert {configs[name].batch_size for name in ("train-sparse", "prune", "quantize")} == {16}
    assert {configs[name].augment for name in ("train-sparse", "prune", "quantize")} == {"off"}


@pytest.mark.parametrize("values,message", [
    ({"override_epochs": ("export=2",)}, "'export' is not a training stage of this recipe; allowed: train-sparse, prune, quantize"),
    ({"override_epochs": ("two",)}, "--epochs must be N or STAGE=N"),
    ({"override_augment": "always"}, "--augment must be one of auto, on, off"),
    ({"override_batch_size": 0}, "--batch-size must be >= 1"),
])
def test_overrides_refuse_bad_values_with_one_line(values, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_overrides(load_recipe(None), values)


def test_lr_scale_multiplies_the_given_or_default_learning_rate():
    assert make_method(TrainingMethod, {"lr": 0.05}, what="t", lr_scale=2.0).hp.lr == pytest.approx(0.1)
    assert make_method(TrainingMethod, {}, what="t", lr_scale=0.5).hp.lr == pytest.approx(TrainingMethod.Hyperparameters().lr * 0.5)


@pytest.mark.parametrize("flag,value,message", [("workers", -1, "--workers must be >= 0"), ("lr_scale", 0.0, "--lr-scale must be a positive"),
                                                ("train_device", "tpu", "--train-device must be one of auto, cpu, cuda")])
def test_run_options_refuse_bad_training_knobs(flag, value, message):
    kwargs = dict(data="digits", seed=0, train_limit=0, test_limit=0, trust_pickle=False, threads=0, **{flag: value})
    with pytest.raises(UserError, match=message):
        build_run_options(kwargs, target="host")
