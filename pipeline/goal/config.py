"""Goals of ``compress run``: ``--min-speedup``, ``--max-size-kib``, ``--max-accuracy-drop``,
``--max-robust-drop``, ``--search-budget``, or a recipe's ``goal:`` block (validated strictly).

A goal search runs when a speed or size goal is given; accuracy goals alone only gate the result
(exit 3), as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

import click

from pipeline.config import config_from_dict
from pipeline.errors import UserError
from pipeline.strict_yaml import load_strict

DEFAULT_LEVELS = (0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98)


@dataclass(frozen=True)
class Goals:
    """What the user asks of the shipped artifact, and the search's own settings."""

    min_speedup: float | None = field(default=None, metadata={"help": "compiled artifact vs dense onnxruntime (report's median, its thread count)"})
    max_size_kib: float | None = field(default=None, metadata={"help": "size of the shipped ONNX, KiB"})
    max_accuracy_drop: float | None = field(default=None, metadata={"help": "accuracy drop vs the dense input, fraction (0.005 = 0.5 points)"})
    max_robust_drop: float | None = field(default=None, metadata={"help": "robust accuracy drop (the report's attacks), fraction"})
    search_budget: float = field(default=15.0, metadata={"help": "minutes the search may take"})
    levels: tuple[float, ...] = field(default=DEFAULT_LEVELS, metadata={"help": "candidate per-layer sparsity ratios"})
    block: tuple[int, ...] = field(default=(16, 1), metadata={"help": "block rows,cols of the pruning pattern (the kernels skip zero 16x1 blocks)"})
    calibration_samples: int = field(default=1000, metadata={"help": "training samples (the last ones) for the sensitivity sweep; never the test set"})
    short_term_steps: int = field(default=20, metadata={"help": "masked SGD steps after each sensitivity point (NetAdapt's short-term fine-tune; 0: one-shot)"})
    epochs: int = field(default=1, metadata={"help": "masked fine-tuning epochs of a candidate (raised by one when accuracy misses)"})
    margin: float = field(default=1.25, metadata={"help": "the first candidate aims this much beyond the speed / size goals (isolated kernel times miss what the whole network pays); later ones, on the measured calibration, 1.03"})

    @property
    def searches(self) -> bool:
        """A speed or size goal: the allocation is searched (accuracy goals alone only gate)."""
        return self.min_speedup is not None or self.max_size_kib is not None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}


GOAL_KEYS = tuple(f.name.replace("_", "-") for f in fields(Goals))


def check_goals(goals: Goals, *, where: str = "goal") -> Goals:
    """One line for a value out of range, naming the key."""
    positive = {"min_speedup": goals.min_speedup, "max_size_kib": goals.max_size_kib, "search_budget": goals.search_budget, "margin": goals.margin}
    for name, value in positive.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UserError(f"{where}: {name.replace('_', '-')} must be a positive finite number, got {value}")
    for name in ("max_accuracy_drop", "max_robust_drop"):
        value = getattr(goals, name)
        if value is not None and not (math.isfinite(value) and 0 <= value < 1):
            raise UserError(f"{where}: {name.replace('_', '-')} must be a fraction in [0, 1) (0.005 = 0.5 points), got {value}")
    if not goals.levels or any(not 0 <= s < 1 for s in goals.levels) or list(goals.levels) != sorted(set(goals.levels)):
        raise UserError(f"{where}: levels must be distinct ascending ratios in [0, 1), got {list(goals.levels)}")
    if len(goals.block) != 2 or min(goals.block) < 1:
        raise UserError(f"{where}: block must be two positive integers rows,cols, got {list(goals.block)}")
    if goals.calibration_samples < 1 or goals.epochs < 0 or goals.short_term_steps < 0:
        raise UserError(f"{where}: calibration-samples must be >= 1, epochs and short-term-steps >= 0, got {goals.calibration_samples}, {goals.epochs}, {goals.short_term_steps}")
    return goals


def parse_goal_block(block: Any, *, where: str) -> Goals:
    """A recipe's ``goal:`` mapping as :class:`Goals` (unknown keys and bad values: one line)."""
    if block is None:
        return Goals()
    if not isinstance(block, dict):
        raise UserError(f"{where} must be a mapping with keys {', '.join(GOAL_KEYS)}")
    return check_goals(config_from_dict(Goals, block, where=where), where=where)


def recipe_goals(recipe: Path | None) -> Goals:
    """The ``goal:`` block of the recipe file (the built-in recipe has none)."""
    if recipe is None:
        return Goals()
    try:
        document = load_strict(Path(recipe).read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - the recipe loader reports unreadable / invalid recipes itself
        return Goals()
    return parse_goal_block(document.get("goal") if isinstance(document, dict) else None, where=f"{recipe}: goal")


def goals_from_run(kwargs: dict[str, Any], *, recipe: Path | None, max_accuracy_drop: float | None, max_robust_drop: float | None) -> Goals:
    """The run's goals: the recipe's ``goal:`` block, overridden by the command line (pops the goal options)."""
    goals = recipe_goals(recipe)
    given = {"min_speedup": kwargs.pop("min_speedup", None), "max_size_kib": kwargs.pop("max_size_kib", None),
             "search_budget": kwargs.pop("search_budget", None), "max_accuracy_drop": max_accuracy_drop, "max_robust_drop": max_robust_drop}
    goals = replace(goals, **{k: v for k, v in given.items() if v is not None})
    flags = {"min_speedup": "--min-speedup", "max_size_kib": "--max-size-kib", "search_budget": "--search-budget"}
    for name, flag in flags.items():
        if given[name] is not None and not (math.isfinite(given[name]) and given[name] > 0):
            raise UserError(f"{flag} must be a positive finite number, got {given[name]}")
    # without a speed / size goal there is no search: the accuracy budgets are compress run's own gates,
    # checked (finite) by compress run as before
    return check_goals(goals) if goals.searches else goals


def goal_options(command: Callable) -> Callable:
    """The goal options of ``compress run`` (``--max-accuracy-drop`` / ``--max-robust-drop`` are its gates already)."""
    options = [
        click.option("--min-speedup", default=None, type=float, metavar="X", help="goal: the compiled artifact at least X times faster than the dense model on onnxruntime (the report's measurement); searches the per-layer sparsity"),
        click.option("--max-size-kib", default=None, type=float, metavar="KIB", help="goal: the shipped ONNX at most this many KiB; searches the per-layer sparsity"),
        click.option("--search-budget", default=None, type=float, metavar="MINUTES", help="minutes the goal search may take [default: 15]"),
    ]
    for option in reversed(options):
        command = option(command)
    return command
