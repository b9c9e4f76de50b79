"""Tests for deploy.report.rows: benchmark results turned into valid report rows."""

from __future__ import annotations

import pytest

from deploy.bench import LatencyStats, machine_info
from deploy.report import latency_rows, validate_report
from deploy.report.sample import sample_report


def _stats() -> dict[str, LatencyStats]:
    return {
        "dense": LatencyStats.from_samples([4.0, 4.2, 3.9]),
        "pruned": LatencyStats.from_samples([2.0, 2.1, 1.9]),
    }


def test_latency_rows_carry_ratios_vs_baseline_when_baseline_given():
    rows = latency_rows(_stats(), runtime="onnxruntime", threads=1, baseline="dense")

    assert [r["variant"] for r in rows] == ["dense", "pruned"]
    assert rows[0]["ratio_vs_baseline"] == 1.0
    assert rows[1]["ratio_vs_baseline"] == pytest.approx(2.0)
    assert rows[1]["median_ms"] == 2.0 and rows[1]["runs"] == 3 and rows[1]["threads"] == 1


def test_latency_rows_and_machine_info_validate_when_put_in_a_report():
    report = sample_report()
    report["latency"] = latency_rows(_stats(), runtime="torch", threads=None, baseline=None)
    report["variants"] = [v for v in report["variants"] if v["name"] in ("dense", "pruned")]
    report["kernels"] = []
    report["run"]["machine"] = machine_info(torch_threads=2, onnxruntime_threads=None)

    validate_report(report)

    assert all(r["ratio_vs_baseline"] is None for r in report["latency"])


def test_latency_rows_raise_when_runtime_unknown():
    with pytest.raises(ValueError, match="unknown runtime 'tflite'"):
        latency_rows(_stats(), runtime="tflite", threads=1)
