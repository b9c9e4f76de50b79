"""Tests for deploy.bench.stats and deploy.bench.speedup."""

from __future__ import annotations

import math

import pytest

from deploy.bench import LatencyStats, percentile, speedup_vs_baseline


def test_percentile_matches_linear_interpolation_when_between_samples():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]

    assert percentile(values, 50.0) == pytest.approx(5.5)
    assert percentile(values, 90.0) == pytest.approx(9.1)
    assert percentile([4.0], 90.0) == 4.0


def test_latency_stats_summarise_samples_when_unsorted():
    stats = LatencyStats.from_samples([3.0, 1.0, 2.0, 10.0])

    assert stats.median_ms == pytest.approx(2.5)
    assert stats.min_ms == 1.0 and stats.max_ms == 10.0
    assert stats.mean_ms == pytest.approx(4.0)
    assert stats.p90_ms == pytest.approx(7.9)
    assert stats.samples_ms == (3.0, 1.0, 2.0, 10.0)
    assert "samples_ms" not in stats.to_dict()
    assert stats.to_dict(with_samples=True)["samples_ms"] == [3.0, 1.0, 2.0, 10.0]


@pytest.mark.parametrize("samples", [[], [1.0, -1.0], [math.nan]])
def test_latency_stats_raise_when_samples_invalid(samples):
    with pytest.raises(ValueError):
        LatencyStats.from_samples(samples)


def test_speedup_vs_baseline_is_baseline_over_candidate_when_medians_differ():
    stats = {
        "dense": LatencyStats.from_samples([4.0]),
        "sparse": LatencyStats.from_samples([2.0]),
        "slow": LatencyStats.from_samples([8.0]),
    }

    ratios = speedup_vs_baseline(stats, baseline="dense")

    assert ratios == {"dense": 1.0, "sparse": 2.0, "slow": 0.5}


def test_speedup_vs_baseline_raises_when_baseline_unknown():
    with pytest.raises(KeyError, match="nope"):
        speedup_vs_baseline({"a": LatencyStats.from_samples([1.0])}, baseline="nope")
