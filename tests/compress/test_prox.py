"""Property tests of the element-wise proximal operators against brute-force grid minimisation."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compress.prox import (
    hard_threshold,
    l0_threshold,
    prox_l0,
    prox_scad,
    prox_tl1,
    scad_penalty,
    soft_threshold,
    tl1_penalty,
    tl1_threshold,
)

GRID = torch.linspace(-6.0, 6.0, 60001, dtype=torch.float64)  # spacing 2e-4
GRID_TOL = 1e-6  # objective gap allowed by the grid spacing (quadratic term: (1e-4)^2 scale, plus slack)

values = st.floats(min_value=-4.0, max_value=4.0, allow_nan=False)
mus = st.floats(min_value=0.01, max_value=2.0, allow_nan=False)
shape_a = st.floats(min_value=0.1, max_value=5.0, allow_nan=False)


def objective(penalty_values: torch.Tensor, x: torch.Tensor, y: float) -> torch.Tensor:
    return penalty_values + 0.5 * (x - y) ** 2


def assert_grid_minimiser(prox_value: float, y: float, penalty) -> None:
    x = torch.tensor([prox_value], dtype=torch.float64)
    ours = objective(penalty(x), x, y).item()
    best = objective(penalty(GRID), GRID, y).min().item()
    assert ours <= best + GRID_TOL, f"prox({y}) = {prox_value} has objective {ours} > grid minimum {best}"


@settings(max_examples=40, deadline=None)
@given(y=values, mu=mus)
def test_soft_threshold_minimises_l1_objective(y, mu):
    out = soft_threshold(torch.tensor([y], dtype=torch.float64), mu).item()
    assert_grid_minimiser(out, y, lambda x: mu * x.abs())


@settings(max_examples=40, deadline=None)
@given(y=values, mu=mus)
def test_prox_l0_minimises_l0_objective(y, mu):
    out = prox_l0(torch.tensor([y], dtype=torch.float64), mu).item()
    assert_grid_minimiser(out, y, lambda x: mu * x.ne(0).to(x.dtype))


@settings(max_examples=40, deadline=None)
@given(y=values, mu=mus, a=shape_a)
def test_prox_tl1_minimises_tl1_objective(y, mu, a):
    out = prox_tl1(torch.tensor([y], dtype=torch.float64), mu, a=a).item()
    assert_grid_minimiser(out, y, lambda x: mu * tl1_penalty(x, a=a))


@settings(max_examples=40, deadline=None)
@given(y=values, mu=st.floats(min_value=0.01, max_value=1.0), a=st.floats(min_value=2.1, max_value=6.0))
def test_prox_scad_minimises_scad_objective(y, mu, a):
    out = prox_scad(torch.tensor([y], dtype=torch.float64), mu, a=a).item()
    assert_grid_minimiser(out, y, lambda x: scad_penalty(x, mu, a=a))


PROXES = {
    "soft": lambda y, mu: soft_threshold(y, mu),
    "hard": lambda y, mu: prox_l0(y, mu),
    "tl1": lambda y, mu: prox_tl1(y, mu, a=1.0),
    "scad": lambda y, mu: prox_scad(y, mu, a=3.7),
}


@pytest.mark.parametrize("name", sorted(PROXES))
@settings(max_examples=30, deadline=None)
@given(ys=st.lists(values, min_size=2, max_size=20), mu=mus)
def test_prox_is_odd_and_monotone(name, ys, mu):
    y = torch.tensor(sorted(ys), dtype=torch.float64)
    out = PROXES[name](y, mu)
    assert torch.allclose(PROXES[name](-y, mu), -out, atol=1e-12)
    assert bool((out[1:] - out[:-1] >= -1e-9).all()), f"{name} is not monotone: {out.tolist()}"


@settings(max_examples=40, deadline=None)
@given(y=values, mu=mus, a=shape_a)
def test_prox_tl1_zeroes_exactly_below_threshold(y, mu, a):
    out = prox_tl1(torch.tensor([y], dtype=torch.float64), mu, a=a).item()
    assert (out == 0.0) == (abs(y) <= tl1_threshold(mu, a=a))


@settings(max_examples=40, deadline=None)
@given(ys=st.lists(values, min_size=1, max_size=30), gamma=st.floats(min_value=0.0, max_value=3.0))
def test_hard_threshold_zeroes_exactly_at_or_below_gamma(ys, gamma):
    y = torch.tensor(ys, dtype=torch.float64)
    out = hard_threshold(y, gamma)
    assert torch.equal(out == 0, (y.abs() <= gamma) | (y == 0))
    assert torch.equal(out[y.abs() > gamma], y[y.abs() > gamma])


@settings(max_examples=40, deadline=None)
@given(ys=st.lists(values, min_size=1, max_size=30), mu=mus)
def test_soft_threshold_zeroes_exactly_at_or_below_mu(ys, mu):
    y = torch.tensor(ys, dtype=torch.float64)
    assert torch.equal(soft_threshold(y, mu) == 0, y.abs() <= mu)


def test_l0_threshold_is_sqrt_two_mu():
    assert l0_threshold(0.02) == pytest.approx(math.sqrt(0.04))


def test_prox_tl1_raises_when_a_not_positive():
    with pytest.raises(ValueError, match="a must be > 0"):
        prox_tl1(torch.zeros(3), 0.1, a=0.0)


def test_prox_scad_raises_when_a_at_most_two():
    with pytest.raises(ValueError, match="a must be > 2"):
        prox_scad(torch.zeros(3), 0.1, a=2.0)


def test_tl1_threshold_matches_both_branches():
    assert tl1_threshold(0.1, a=1.0) == pytest.approx(0.2)  # mu <= a^2 / (2(a+1)) = 0.25
    assert tl1_threshold(1.0, a=1.0) == pytest.approx(math.sqrt(4.0) - 0.5)
