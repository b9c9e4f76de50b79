"""Summary statistics of repeated latency measurements."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of already sorted values (numpy's default method).

    Args:
        sorted_values: values in ascending order; at least one.
        q: percentile in ``[0, 100]``.

    Returns:
        The interpolated percentile.

    Raises:
        ValueError: when ``sorted_values`` is empty or ``q`` is outside ``[0, 100]``.
    """
    if not sorted_values:
        raise ValueError("percentile of an empty sequence is undefined")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    position = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one candidate over ``runs`` timed calls, in milliseconds.

    Attributes:
        median_ms: median call time.
        p90_ms: 90th percentile call time.
        mean_ms: arithmetic mean call time.
        min_ms: fastest call.
        max_ms: slowest call.
        runs: number of timed calls (warm-up calls excluded).
        samples_ms: every timed call, in the order it was taken.
    """

    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    runs: int
    samples_ms: tuple[float, ...]

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> "LatencyStats":
        """Summarise raw per-call times.

        Args:
            samples_ms: per-call times in milliseconds; at least one.

        Returns:
            The summary.

        Raises:
            ValueError: when ``samples_ms`` is empty or holds a negative or non-finite time.
        """
        if not samples_ms:
            raise ValueError("cannot summarise zero latency samples")
        bad = [s for s in samples_ms if not math.isfinite(s) or s < 0]
        if bad:
            raise ValueError(f"latency samples must be finite and >= 0, got {bad[0]!r}")
        ordered = sorted(float(s) for s in samples_ms)
        return cls(
            median_ms=percentile(ordered, 50.0),
            p90_ms=percentile(ordered, 90.0),
            mean_ms=sum(ordered) / len(ordered),
            min_ms=ordered[0],
            max_ms=ordered[-1],
            runs=len(ordered),
            samples_ms=tuple(float(s) for s in samples_ms),
        )

    def to_dict(self, *, with_samples: bool = False) -> dict[str, Any]:
        """JSON-ready summary; raw samples only when ``with_samples`` is true."""
        data: dict[str, Any] = {
            "median_ms": self.median_ms,
            "p90_ms": self.p90_ms,
            "mean_ms": self.mean_ms,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
            "runs": self.runs,
        }
        if with_samples:
            data["samples_ms"] = list(self.samples_ms)
        return data
