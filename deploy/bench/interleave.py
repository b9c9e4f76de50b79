"""Interleaved A/B latency measurement: drift of the machine hits every candidate alike."""

from __future__ import annotations

import sys
import time
from typing import Callable, Mapping

from deploy.bench.stats import LatencyStats

Candidate = Callable[[], object]


def round_order(names: list[str], *, round_index: int) -> list[str]:
    """Order of the candidates in one repetition: round-robin with a rotating start.

    Round ``r`` starts at candidate ``r mod n``, so each candidate runs first (and last)
    equally often and no one always follows the same neighbour's cache footprint.

    Args:
        names: candidate names in their base order.
        round_index: zero-based repetition number.

    Returns:
        The names rotated by ``round_index``.
    """
    if not names:
        return []
    shift = round_index % len(names)
    return names[shift:] + names[:shift]


def _check_arguments(candidates: Mapping[str, Candidate], *, warmup: int, runs: int) -> None:
    if not candidates:
        raise ValueError("measure_interleaved needs at least one candidate, got none")
    not_callable = [name for name, fn in candidates.items() if not callable(fn)]
    if not_callable:
        raise TypeError(f"candidates must be callables taking no argument; not callable: {not_callable}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")


def _progress_bar(*, total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total, desc="bench", unit="call", file=sys.stderr, leave=False,
        disable=not (enabled and sys.stderr.isatty()),  # a log file gets no carriage-return redraws
    )


def measure_interleaved(
    candidates: Mapping[str, Candidate],
    *,
    warmup: int = 10,
    runs: int = 50,
    progress: bool = True,
) -> dict[str, LatencyStats]:
    """Time several callables against each other, interleaved call by call.

    Each candidate is first called ``warmup`` times (interleaved, untimed), then ``runs``
    repetitions follow; in each repetition every candidate is called once, in the order of
    ``round_order``. Every call is timed with ``time.perf_counter_ns``. A tqdm bar on stderr
    shows calls done, rate and ETA.

    Args:
        candidates: name -> zero-argument callable doing one inference (inputs bound already).
        warmup: untimed calls per candidate before measuring.
        runs: timed calls per candidate.
        progress: show the progress bar.

    Returns:
        Name -> latency statistics, in the order of ``candidates``.

    Raises:
        ValueError: on no candidate, ``warmup < 0`` or ``runs < 1``.
        TypeError: when a candidate is not callable.
    """
    _check_arguments(candidates, warmup=warmup, runs=runs)
    names = list(candidates)
    samples: dict[str, list[float]] = {name: [] for name in names}
    with _progress_bar(total=(warmup + runs) * len(names), enabled=progress) as bar:
        for round_index in range(warmup):
            for name in round_order(names, round_index=round_index):
                candidates[name]()
                bar.update(1)
        for round_index in range(runs):
            for name in round_order(names, round_index=round_index):
                start = time.perf_counter_ns()
                candidates[name]()
                samples[name].append((time.perf_counter_ns() - start) / 1e6)
                bar.update(1)
    return {name: LatencyStats.from_samples(samples[name]) for name in names}
