"""Benchmark harness: interleaved A/B timing, latency statistics, speed-ups, machine facts."""

from deploy.bench.interleave import measure_interleaved, round_order
from deploy.bench.machine import cpu_model, machine_info
from deploy.bench.speedup import speedup_vs_baseline
from deploy.bench.stats import LatencyStats, percentile

__all__ = [
    "LatencyStats",
    "cpu_model",
    "machine_info",
    "measure_interleaved",
    "percentile",
    "round_order",
    "speedup_vs_baseline",
]
