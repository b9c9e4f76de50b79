"""Greedy per-layer allocation over given curves (a synthetic latency table)."""

import itertools

import pytest

from compress.search import LayerCurve, greedy_allocation
from compress.search.allocation import predict

LEVELS = (0.0, 0.5, 0.8, 0.9, 0.95)


def _curves():
    # "conv" is expensive and sensitive, "fc" is expensive and robust, "head" is cheap and sensitive
    return [
        LayerCurve("conv", LEVELS, (0.0, 0.001, 0.01, 0.04, 0.10), (40e-6, 25e-6, 14e-6, 10e-6, 8e-6), (2000, 1000, 400, 200, 100)),
        LayerCurve("fc", LEVELS, (0.0, 0.0, 0.001, 0.002, 0.006), (50e-6, 30e-6, 15e-6, 9e-6, 6e-6), (8000, 4000, 1600, 800, 400)),
        LayerCurve("head", LEVELS, (0.0, 0.02, 0.08, 0.2, 0.4), (2e-6, 1.8e-6, 1.5e-6, 1.4e-6, 1.3e-6), (100, 50, 20, 10, 5)),
    ]


def _best_by_enumeration(curves, *, max_latency_s, fixed_latency_s):
    best = None
    for combo in itertools.product(*(range(len(c.sparsity)) for c in curves)):
        levels = {c.fqn: k for c, k in zip(curves, combo)}
        latency, _, loss = predict(curves, levels, fixed_latency_s=fixed_latency_s)
        if latency <= max_latency_s and (best is None or loss < best):
            best = loss
    return best


def test_greedy_allocation_meets_a_synthetic_latency_table():
    curves = _curves()
    goal = (10e-6 + 92e-6) / 3  # a 3x speed-up over the dense network (10 us outside the layers)
    allocation = greedy_allocation(curves, max_latency_s=goal, fixed_latency_s=10e-6)
    assert allocation.meets
    assert allocation.latency_s <= goal
    assert allocation.sparsity["head"] == 0.0  # cheap and sensitive: left alone
    assert allocation.sparsity["fc"] >= allocation.sparsity["conv"]  # the robust layer takes the cut
    optimum = _best_by_enumeration(curves, max_latency_s=goal, fixed_latency_s=10e-6)
    assert allocation.loss <= optimum + 0.005  # close to the exhaustive optimum


def test_greedy_allocation_meets_size_and_latency_together():
    curves = _curves()
    allocation = greedy_allocation(curves, max_latency_s=60e-6, max_size_bytes=1500, fixed_latency_s=10e-6)
    assert allocation.meets and allocation.size_bytes <= 1500 and allocation.latency_s <= 60e-6


def test_greedy_allocation_reports_an_impossible_goal_with_the_fastest_allocation():
    curves = _curves()
    allocation = greedy_allocation(curves, max_latency_s=5e-6, fixed_latency_s=10e-6)
    assert not allocation.meets
    assert allocation.levels == {"conv": 4, "fc": 4, "head": 4}  # everything at its fastest level


def test_greedy_allocation_without_goals_keeps_every_layer_dense():
    allocation = greedy_allocation(_curves())
    assert allocation.meets and set(allocation.sparsity.values()) == {0.0} and allocation.loss == 0.0


def test_layer_curve_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="equal"):
        LayerCurve("x", (0.0, 0.5), (0.0,), (1.0, 0.5), (1, 1))
