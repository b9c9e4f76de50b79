"""Property tests of the non-separable and group operators: L1-L2, group soft / hard threshold, cardinality."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from compress.prox import (
    cardinality_mask,
    group_hard_threshold,
    group_norms,
    group_soft_threshold,
    l1_minus_l2_penalty,
    project_cardinality,
    prox_l1_minus_l2,
)

AXIS = torch.linspace(-3.0, 3.0, 601, dtype=torch.float64)  # spacing 1e-2
GRID_2D = torch.cartesian_prod(AXIS, AXIS)
GRID_TOL = 1e-4

coords = st.floats(min_value=-2.5, max_value=2.5, allow_nan=False)


def grid_min(penalty, y: torch.Tensor) -> float:
    return (penalty(GRID_2D) + 0.5 * (GRID_2D - y).pow(2).sum(dim=1)).min().item()


def value_at(penalty, x: torch.Tensor, y: torch.Tensor) -> float:
    return (penalty(x.unsqueeze(0)) + 0.5 * (x - y).pow(2).sum()).item()


def l1l2_rows(x: torch.Tensor, mu: float, alpha: float) -> torch.Tensor:
    return mu * (x.abs().sum(dim=1) - alpha * x.norm(dim=1))


@settings(max_examples=25, deadline=None)
@given(y0=coords, y1=coords, mu=st.floats(min_value=0.05, max_value=1.5), alpha=st.floats(min_value=0.05, max_value=1.0))
def test_prox_l1_minus_l2_minimises_objective(y0, y1, mu, alpha):
    y = torch.tensor([y0, y1], dtype=torch.float64)
    x = prox_l1_minus_l2(y, mu, alpha=alpha)
    assert value_at(lambda v: l1l2_rows(v, mu, alpha), x, y) <= grid_min(lambda v: l1l2_rows(v, mu, alpha), y) + GRID_TOL


@settings(max_examples=30, deadline=None)
@given(y=st.lists(coords, min_size=2, max_size=8), alpha=st.floats(min_value=0.05, max_value=1.0))
def test_prox_l1_minus_l2_is_soft_then_rescaled_when_max_above_mu(y, alpha):
    y = torch.tensor(y, dtype=torch.float64)
    mu = 0.5 * y.abs().max().item()
    assume(mu > 1e-3)
    z = torch.sign(y) * torch.clamp(y.abs() - mu, min=0.0)
    expected = z * (z.norm() + alpha * mu) / z.norm()
    assert torch.allclose(prox_l1_minus_l2(y, mu, alpha=alpha), expected)


@settings(max_examples=30, deadline=None)
@given(y=st.lists(coords, min_size=2, max_size=8), alpha=st.floats(min_value=0.1, max_value=1.0))
def test_prox_l1_minus_l2_is_one_sparse_when_max_between_bounds(y, alpha):
    y = torch.tensor(y, dtype=torch.float64)
    top = y.abs().max().item()
    assume(top > 1e-3)
    mu = top / (1.0 - alpha / 2.0)  # (1 - alpha) mu < top <= mu
    out = prox_l1_minus_l2(y, mu, alpha=alpha)
    index = int(y.abs().argmax())
    assert int(out.ne(0).sum()) <= 1
    assert out[index].item() == pytest.approx(torch.sign(y[index]).item() * (top + (alpha - 1.0) * mu))


@settings(max_examples=30, deadline=None)
@given(y=st.lists(coords, min_size=1, max_size=8), alpha=st.floats(min_value=0.05, max_value=0.95))
def test_prox_l1_minus_l2_is_zero_when_max_below_lower_bound(y, alpha):
    y = torch.tensor(y, dtype=torch.float64)
    mu = (y.abs().max().item() + 1e-3) / (1.0 - alpha)
    assert torch.equal(prox_l1_minus_l2(y, mu, alpha=alpha), torch.zeros_like(y))


def test_prox_l1_minus_l2_raises_when_alpha_out_of_range():
    with pytest.raises(ValueError, match="alpha must be in"):
        prox_l1_minus_l2(torch.ones(3), 0.1, alpha=1.5)


def test_l1_minus_l2_penalty_is_zero_on_one_sparse_vector():
    assert l1_minus_l2_penalty(torch.tensor([0.0, -3.0, 0.0])).item() == pytest.approx(0.0)


@settings(max_examples=25, deadline=None)
@given(y0=coords, y1=coords, tau=st.floats(min_value=0.01, max_value=2.0))
def test_group_soft_threshold_minimises_group_objective(y0, y1, tau):
    y = torch.tensor([[y0, y1]], dtype=torch.float64)  # one group along axis 0
    x = group_soft_threshold(y, tau, axis=0)[0]
    penalty = lambda v: tau * v.norm(dim=1)  # noqa: E731
    assert value_at(penalty, x, y[0]) <= grid_min(penalty, y[0]) + GRID_TOL


@settings(max_examples=25, deadline=None)
@given(y0=coords, y1=coords, mu=st.floats(min_value=0.01, max_value=2.0))
def test_group_hard_threshold_minimises_group_l0_objective(y0, y1, mu):
    y = torch.tensor([[y0, y1]], dtype=torch.float64)
    x = group_hard_threshold(y, (2 * mu) ** 0.5, axis=0)[0]
    penalty = lambda v: mu * v.ne(0).any(dim=1).to(v.dtype)  # noqa: E731
    assert value_at(penalty, x, y[0]) <= grid_min(penalty, y[0]) + GRID_TOL


@pytest.mark.parametrize("axis", [0, 1])
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), tau=st.floats(min_value=0.0, max_value=3.0))
def test_group_soft_threshold_zeroes_exactly_groups_with_norm_at_most_tau(axis, seed, tau):
    y = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    out = group_soft_threshold(y, tau, axis=axis)
    dead = (group_norms(y, axis=axis) <= tau).expand_as(y)
    assert torch.equal(out == 0, dead | (y == 0))


def test_group_norms_raises_when_axis_out_of_range():
    with pytest.raises(ValueError, match="group axis"):
        group_norms(torch.ones(3, 4), axis=2)


@settings(max_examples=30, deadline=None)
@given(ws=st.lists(coords, min_size=1, max_size=8, unique=True), ratio=st.floats(min_value=0.0, max_value=1.0))
def test_project_cardinality_is_best_k_sparse_approximation(ws, ratio):
    w = torch.tensor(ws, dtype=torch.float64)
    assume(len(set(w.abs().tolist())) == len(ws))  # no magnitude ties
    out = project_cardinality(w, sparsity_ratio=ratio)
    keep = int(round(len(ws) * (1 - ratio)))
    best = min(
        (w[list(c)].pow(2).sum().item() for c in itertools.combinations(range(len(ws)), len(ws) - keep)), default=0.0
    )
    assert int(out.ne(0).sum()) <= keep
    assert (out - w).pow(2).sum().item() == pytest.approx(best)


def test_cardinality_mask_keeps_top_norm_channels_when_channel_mode():
    w = torch.zeros(4, 3, 2)
    w[1] = 3.0
    w[3] = -2.0
    w[0, 0, 0] = 1.0
    mask = cardinality_mask(w, sparsity_ratio=0.5, mode="channel", axis=0)
    assert mask[1].all() and mask[3].all() and not mask[0].any() and not mask[2].any()


def test_cardinality_mask_ranks_by_magnitude_not_sign():
    w = torch.tensor([-5.0, 0.1, 0.2, 4.0])
    assert cardinality_mask(w, sparsity_ratio=0.5).tolist() == [True, False, False, True]


def test_cardinality_mask_raises_on_unknown_mode():
    with pytest.raises(ValueError, match="allowed: element, channel"):
        cardinality_mask(torch.ones(3), sparsity_ratio=0.5, mode="block")


def _loop_block_norms(weight: torch.Tensor, rows: int = 16) -> torch.Tensor:
    """Reference: each entry's 16x1 row-block norm, block by block (the last block may be shorter)."""
    flat = weight.reshape(weight.shape[0], -1)
    out = torch.empty_like(flat)
    for start in range(0, flat.shape[0], rows):
        for column in range(flat.shape[1]):
            out[start : start + rows, column] = flat[start : start + rows, column].norm()
    return out.reshape(weight.shape)


@pytest.mark.parametrize("shape", [(40, 3, 2, 2), (16, 5), (7, 9)])
def test_block_groups_are_16_consecutive_output_rows_at_one_input_position(shape):
    from compress.prox.group import BLOCK, smooth_group_norm_sum

    weight = torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(group_norms(weight, axis=BLOCK), _loop_block_norms(weight))
    blocks = -(-shape[0] // 16) * (weight.numel() // shape[0])
    assert smooth_group_norm_sum(weight, axis=BLOCK, eps=0.0).item() == pytest.approx(
        sum(_loop_block_norms(weight).reshape(shape[0], -1)[::16].reshape(-1).tolist()))
    assert blocks == _loop_block_norms(weight).reshape(shape[0], -1)[::16].numel()
    norms = group_norms(weight, axis=BLOCK).unique()
    cut = float(norms[len(norms) // 2 - 1 : len(norms) // 2 + 1].mean())  # between two block norms
    hard = group_hard_threshold(weight, cut, axis=BLOCK)
    soft = group_soft_threshold(weight, cut, axis=BLOCK)
    for result in (hard, soft):
        zero_blocks = (_loop_block_norms(result) == 0) == (_loop_block_norms(weight) <= cut)
        assert bool(zero_blocks.all())
    kept = _loop_block_norms(weight) > cut
    assert torch.allclose(soft[kept], (weight * (1 - cut / _loop_block_norms(weight)))[kept])
