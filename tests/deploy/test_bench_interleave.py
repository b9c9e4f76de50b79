"""Tests for deploy.bench.interleave."""

from __future__ import annotations

import time

import pytest

from deploy.bench import measure_interleaved, round_order


def _recording(log: list[str], name: str, *, sleep_s: float = 0.0):
    def call() -> None:
        log.append(name)
        if sleep_s:
            time.sleep(sleep_s)

    return call


def test_round_order_rotates_start_when_round_advances():
    names = ["a", "b", "c"]

    orders = [round_order(names, round_index=r) for r in range(4)]

    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_measure_interleaved_alternates_candidates_when_measuring():
    log: list[str] = []
    candidates = {name: _recording(log, name) for name in ("a", "b")}

    measure_interleaved(candidates, warmup=1, runs=4, progress=False)

    assert log == ["a", "b"] + ["a", "b", "b", "a", "a", "b", "b", "a"]


def test_measure_interleaved_orders_medians_by_duration_when_sleeps_differ():
    log: list[str] = []
    candidates = {
        "slow": _recording(log, "slow", sleep_s=0.012),
        "fast": _recording(log, "fast", sleep_s=0.002),
        "mid": _recording(log, "mid", sleep_s=0.006),
    }

    stats = measure_interleaved(candidates, warmup=1, runs=7, progress=False)

    assert list(stats) == ["slow", "fast", "mid"]
    assert stats["fast"].median_ms < stats["mid"].median_ms < stats["slow"].median_ms
    assert stats["fast"].median_ms >= 2.0
    assert all(s.runs == 7 and s.min_ms <= s.median_ms <= s.p90_ms for s in stats.values())


def test_measure_interleaved_counts_warmup_calls_apart_when_warmup_given():
    log: list[str] = []

    stats = measure_interleaved({"a": _recording(log, "a")}, warmup=3, runs=5, progress=False)

    assert len(log) == 8
    assert stats["a"].runs == 5


def test_measure_interleaved_writes_progress_to_stderr_when_progress_on_at_a_terminal(capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    measure_interleaved({"a": lambda: None}, warmup=0, runs=3, progress=True)
    captured = capsys.readouterr()
    assert "bench" in captured.err
    assert captured.out == ""


def test_measure_interleaved_draws_no_bar_into_a_log(capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    measure_interleaved({"a": lambda: None}, warmup=0, runs=3, progress=True)
    assert "\r" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"candidates": {}}, ValueError),
        ({"candidates": {"a": 3}}, TypeError),
        ({"candidates": {"a": lambda: None}, "runs": 0}, ValueError),
        ({"candidates": {"a": lambda: None}, "warmup": -1}, ValueError),
    ],
)
def test_measure_interleaved_raises_when_arguments_invalid(kwargs, error):
    candidates = kwargs.pop("candidates")

    with pytest.raises(error):
        measure_interleaved(candidates, progress=False, **kwargs)
