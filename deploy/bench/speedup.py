"""Ratios of latencies against a named baseline, to print next to absolute times."""

from __future__ import annotations

from typing import Mapping

from deploy.bench.stats import LatencyStats


def speedup_vs_baseline(stats: Mapping[str, LatencyStats], *, baseline: str) -> dict[str, float]:
    """Speed-up of every candidate over ``baseline``, on medians.

    ``ratio = baseline.median_ms / candidate.median_ms``: 2.0 means twice as fast as the
    baseline, 0.5 twice as slow, and the baseline itself is 1.0.

    Args:
        stats: latency per candidate name, e.g. from ``measure_interleaved``.
        baseline: name of the candidate the others are compared with.

    Returns:
        Candidate name -> speed-up ratio.

    Raises:
        KeyError: when ``baseline`` is not one of the candidates.
        ValueError: when a median is zero (the ratio would be undefined).
    """
    if baseline not in stats:
        raise KeyError(f"baseline {baseline!r} is not a candidate; have {sorted(stats)}")
    reference = stats[baseline].median_ms
    ratios: dict[str, float] = {}
    for name, stat in stats.items():
        if stat.median_ms <= 0 or reference <= 0:
            raise ValueError(f"median latency of {name!r} or baseline is zero; ratio undefined")
        ratios[name] = reference / stat.median_ms
    return ratios
