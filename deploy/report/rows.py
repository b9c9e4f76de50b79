"""Build report rows from benchmark results, so the pipeline never hand-writes schema keys."""

from __future__ import annotations

from typing import Any, Mapping

from deploy.bench.speedup import speedup_vs_baseline
from deploy.bench.stats import LatencyStats
from deploy.report.schema import RUNTIMES


def latency_rows(
    stats: Mapping[str, LatencyStats],
    *,
    runtime: str,
    threads: int | None,
    baseline: str | None = None,
) -> list[dict[str, Any]]:
    """Latency rows (report schema, SCHEMA.md) for candidates measured on one runtime.

    Args:
        stats: variant name -> latency, e.g. from ``deploy.bench.measure_interleaved``.
        runtime: one of ``torch``, ``onnxruntime``, ``tvm-host``, ``tvm-rpc``.
        threads: intra-op threads used (``None``: library default).
        baseline: variant whose median the ratios divide; ``None`` leaves ratios null.

    Returns:
        One row per variant, in the order of ``stats``.

    Raises:
        ValueError: on an unknown ``runtime``.
        KeyError: when ``baseline`` is not in ``stats``.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; allowed: {', '.join(RUNTIMES)}")
    ratios = speedup_vs_baseline(stats, baseline=baseline) if baseline is not None else {}
    return [
        {
            "variant": name,
            "runtime": runtime,
            "median_ms": stat.median_ms,
            "p90_ms": stat.p90_ms,
            "mean_ms": stat.mean_ms,
            "min_ms": stat.min_ms,
            "runs": stat.runs,
            "threads": threads,
            "ratio_vs_baseline": ratios.get(name),
        }
        for name, stat in stats.items()
    ]
