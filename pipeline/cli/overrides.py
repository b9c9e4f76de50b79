"""``compress run`` knobs that override every training stage of the recipe: batch size, epochs, augmentation.

They change the stage configs (so they enter the stage ids, and ``--resume`` with other values
retrains); the learning-rate scale is a run option (``RunOptions.lr_scale``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import click

from pipeline.data import AUGMENT_MODES
from pipeline.errors import UserError


def training_overrides(command: Callable) -> Callable:
    options = [
        click.option("--batch-size", "override_batch_size", default=None, type=int, help="batch size of every training stage (overrides the recipe)"),
        click.option("--lr-scale", default=None, type=float, metavar="FACTOR", help="multiply every training stage's learning rate (e.g. 4 with a 4x batch size)"),
        click.option("--epochs", "override_epochs", multiple=True, metavar="[STAGE=]N",
                     help="epoch budget: N for every training stage, or STAGE=N for one (repeatable), e.g. --epochs train-sparse=10"),
        click.option("--augment", "override_augment", default=None, metavar="auto|on|off",
                     help="training augmentation of every training stage (random-resized-crop + flip; auto: on for RGB image folders)"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def apply_overrides(steps: list, kwargs: dict[str, Any]) -> list:
    """``steps`` with the overrides popped from ``kwargs`` applied to the stages that have those settings."""
    batch_size = kwargs.pop("override_batch_size", None)
    epochs = _epochs(kwargs.pop("override_epochs", ()) or (), steps)
    augment = kwargs.pop("override_augment", None)
    if batch_size is not None and batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    if augment is not None and augment not in AUGMENT_MODES:
        raise UserError(f"--augment must be one of {', '.join(AUGMENT_MODES)}, got {augment!r}")
    changed = []
    for step in steps:
        names = {f.name for f in dataclasses.fields(step.config)}
        values = {key: value for key, value in (("batch_size", batch_size), ("augment", augment)) if value is not None and key in names}
        count = epochs.get(step.use, epochs.get("*"))
        if count is not None and "epochs" in names:
            values["epochs"] = count
        changed.append(dataclasses.replace(step, config=dataclasses.replace(step.config, **values)) if values else step)
    return changed


def _epochs(items: tuple[str, ...], steps: list) -> dict[str, int]:
    """``{"*": N}`` and / or ``{stage: N}`` from ``--epochs`` values; a stage must train in this recipe."""
    trainers = [step.use for step in steps if "epochs" in {f.name for f in dataclasses.fields(step.config)}]
    budget = {}
    for item in items:
        stage, sep, raw = item.rpartition("=")
        try:
            count = int(raw)
        except ValueError:
            raise UserError(f"--epochs must be N or STAGE=N, got {item!r}") from None
        if count < 0:
            raise UserError(f"--epochs must be >= 0, got {item!r}")
        if sep and stage not in trainers:
            raise UserError(f"--epochs {item!r}: {stage!r} is not a training stage of this recipe; allowed: {', '.join(trainers)}")
        budget[stage if sep else "*"] = count
    return budget
