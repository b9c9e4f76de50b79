"""Regularizer objects (penalty + prox on named weights), selection of weights, and schedules."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from compress.prox import group_soft_threshold, prox_tl1, soft_threshold
from compress.registry import Registry
from compress.regularizers import (
    REGULARIZERS,
    Constant,
    CosineDecay,
    CosineRamp,
    StepGrowth,
    create_regularizer,
    elementwise_penalty,
)
from compress.selection import ParamSelector


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 2 * 2, 5))


def test_regularizers_registry_names_every_penalty():
    assert REGULARIZERS.names() == ["group-l0", "group-lasso", "l0", "l1", "l1-l2", "scad", "tl1"]


def test_create_regularizer_raises_on_unknown_name_listing_allowed():
    with pytest.raises(KeyError, match="allowed: group-l0"):
        create_regularizer("l2", strength=1.0)


def test_registry_raises_on_duplicate_name():
    registry: Registry[int] = Registry("thing")
    registry.register("a")(int)
    with pytest.raises(ValueError, match="duplicate thing name 'a'"):
        registry.register("a")(int)


def test_l1_regularizer_penalty_is_strength_times_l1_norm():
    model = small_model()
    reg = create_regularizer("l1", strength=0.5)
    expected = 0.5 * (model[0].weight.abs().sum() + model[3].weight.abs().sum())
    assert reg.penalty(model).item() == pytest.approx(expected.item(), rel=1e-6)


def test_l1_regularizer_prox_is_soft_threshold_with_step_times_strength():
    model = small_model()
    before = model[3].weight.detach().clone()
    create_regularizer("l1", strength=2.0, layers=ParamSelector(kinds="linear")).prox_(model, step=0.05)
    assert torch.equal(model[3].weight.detach(), soft_threshold(before, 0.1))


def test_tl1_regularizer_prox_matches_prox_function():
    model = small_model()
    before = model[0].weight.detach().clone()
    create_regularizer("tl1", strength=1.0, a=0.5, layers=ParamSelector(kinds="conv")).prox_(model, step=0.05)
    assert torch.equal(model[0].weight.detach(), prox_tl1(before, 0.05, a=0.5))


def test_group_lasso_prox_zeroes_output_channels_with_small_norm():
    model = small_model()
    before = model[0].weight.detach().clone()
    tau = float(before.reshape(4, -1).norm(dim=1).median())
    create_regularizer("group-lasso", strength=tau, layers=ParamSelector(kinds="conv"), axis="output").prox_(model, step=1.0)
    assert torch.equal(model[0].weight.detach(), group_soft_threshold(before, tau, axis=0))
    assert int((model[0].weight.reshape(4, -1).norm(dim=1) == 0).sum()) >= 2


def test_group_lasso_penalty_scales_by_sqrt_group_size_when_asked():
    model = small_model()
    weight = model[3].weight
    reg = create_regularizer("group-lasso", strength=1.0, layers=ParamSelector(kinds="linear"), axis="input", scale_by_size=True)
    expected = math.sqrt(weight.shape[0]) * (weight.pow(2).sum(dim=0) + 1e-8).sqrt().sum()
    assert reg.penalty(model).item() == pytest.approx(expected.item(), rel=1e-6)


def test_group_l0_prox_keeps_groups_above_sqrt_two_mu():
    model = small_model()
    before = model[3].weight.detach().clone()
    norms = before.norm(dim=1)
    mu = float(norms.median()) ** 2 / 2
    create_regularizer("group-l0", strength=mu, layers=ParamSelector(kinds="linear")).prox_(model, step=1.0)
    kept = model[3].weight.detach().norm(dim=1) > 0
    assert torch.equal(kept, norms > math.sqrt(2 * mu))


def test_regularizer_raises_on_negative_strength():
    with pytest.raises(ValueError, match="strength must be >= 0"):
        create_regularizer("l1", strength=-1.0)


def test_elementwise_penalty_raises_on_unknown_penalty():
    with pytest.raises(ValueError, match="allowed: l1, l0, tl1, l1-l2, scad"):
        elementwise_penalty("lp", strength=0.1)


@pytest.mark.parametrize("name", ["l1", "l0", "tl1", "l1-l2", "scad"])
def test_elementwise_penalty_prox_is_its_regularizer_prox(name):
    weight = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    shape = {"tl1": {"a": 0.5}, "scad": {"a": 3.7}, "l1-l2": {"alpha": 0.5}}.get(name, {})
    direct = create_regularizer(name, strength=0.2, **shape).prox(weight, 0.1)
    assert torch.equal(elementwise_penalty(name, strength=0.2, **shape).prox(weight, 0.1), direct)


@pytest.mark.parametrize("name", sorted(set(REGULARIZERS.names()) - {"l0", "group-l0"}))
def test_regularizer_penalty_is_differentiable(name):
    model = small_model()
    create_regularizer(name, strength=0.1).penalty(model).backward()
    assert model[0].weight.grad is not None and torch.isfinite(model[0].weight.grad).all()


@settings(max_examples=30, deadline=None)
@given(step=st.integers(0, 10_000), total=st.integers(1, 5_000))
def test_cosine_schedules_stay_in_range_and_end_at_limits(step, total):
    decay, ramp = CosineDecay(2.0, total), CosineRamp(total)
    assert 0.0 <= decay(step) <= 2.0 and 0.0 <= ramp(step) <= 1.0
    assert decay(0) == pytest.approx(2.0) and ramp(0) == pytest.approx(0.0)
    assert decay(total) == pytest.approx(0.0, abs=1e-12) and ramp(total) == pytest.approx(1.0)


def test_step_growth_multiplies_every_period():
    schedule = StepGrowth(initial=2.5, factor=1.25, every=40)
    assert [schedule(e) for e in (0, 39, 40, 80)] == pytest.approx([2.5, 2.5, 3.125, 3.90625])
    assert Constant(0.3)(999) == 0.3


def test_step_growth_raises_when_period_not_positive():
    with pytest.raises(ValueError, match="every must be >= 1"):
        StepGrowth(initial=1.0, factor=2.0, every=0)
