"""Hyperparameter schedules as pure ``step -> value`` callables (frozen dataclasses, no hidden state)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Constant:
    """``value`` at every step."""

    value: float

    def __call__(self, step: int) -> float:
        return self.value


@dataclass(frozen=True)
class StepGrowth:
    """``initial * factor ** (step // every)``, e.g. SGL's ``beta <- 1.25 * beta`` every 40 epochs."""

    initial: float
    factor: float
    every: int

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")

    def __call__(self, step: int) -> float:
        return self.initial * self.factor ** (step // self.every)


@dataclass(frozen=True)
class CosineDecay:
    """``s_t = initial/2 * (1 + cos(pi * min(t, total) / total))``: decays ``initial -> 0`` (xRDA step)."""

    initial: float
    total: int

    def __call__(self, step: int) -> float:
        t = min(step, self.total) / max(self.total, 1)
        return 0.5 * self.initial * (1.0 + math.cos(math.pi * t))


@dataclass(frozen=True)
class CosineRamp:
    """``a_t = 1/2 * (1 - cos(pi * min(t, total) / total))``: ramps ``0 -> 1`` (xRDA averaging)."""

    total: int

    def __call__(self, step: int) -> float:
        t = min(step, self.total) / max(self.total, 1)
        return 0.5 * (1.0 - math.cos(math.pi * t))
