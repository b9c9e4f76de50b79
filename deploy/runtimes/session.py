"""The session interface shared by every runtime back-end."""

from __future__ import annotations

import abc
import time

import numpy as np

from deploy.runtimes.errors import SessionError


class Session(abc.ABC):
    """A loaded model that maps named float inputs to a list of outputs.

    Attributes:
        kind: back-end name (``"torch"``, ``"onnxruntime"``, ``"tvm"``).
        device: device string the session runs on.
    """

    kind: str = ""

    def __init__(self, *, device: str) -> None:
        self.device = device

    @abc.abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run the model once; ``feeds`` maps input names to arrays."""

    def run_one(self, x: np.ndarray) -> np.ndarray:
        """First output of a single-input model for input ``x``."""
        names = getattr(self, "input_names", None) or ["input"]
        return self.run({names[0]: x})[0]

    def time(self, feeds: dict[str, np.ndarray], *, repeat: int = 10, warmup: int = 2) -> list[float]:
        """Seconds of each of ``repeat`` runs after ``warmup`` untimed runs (wall clock, this process)."""
        for _ in range(warmup):
            self.run(feeds)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            self.run(feeds)
            times.append(time.perf_counter() - start)
        return times


def ordered_inputs(feeds: dict[str, np.ndarray], names: list[str] | None) -> list[np.ndarray]:
    """Feeds in the model's input order (``names``), or in dict order when names are unknown.

    Raises:
        SessionError: a named input is missing from ``feeds``.
    """
    if not names:
        return [np.ascontiguousarray(value) for value in feeds.values()]
    missing = [name for name in names if name not in feeds]
    if missing:
        raise SessionError(f"missing inputs {missing}; the model takes {names}")
    return [np.ascontiguousarray(feeds[name]) for name in names]
