"""Config fields the training stages share, and allowed values read on first use.

``compress --help`` imports every stage class (their names and summaries), so a stage's config must
not load torch at class definition: values kept in a torch-bearing module (``compress.prune``'s
patterns, ``pipeline.data``'s augmentation modes) enter ``metadata["choices"]`` as ``LazyChoices``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any


class LazyChoices(Sequence):
    """A fixed tuple of allowed values that ``load()`` returns, called when first read: ``compress
    <stage> --help`` and the config checks list and test it as they do a tuple."""

    def __init__(self, load: Callable[[], Sequence[Any]]) -> None:
        self._load = load

    @functools.cached_property
    def values(self) -> tuple[Any, ...]:
        return tuple(self._load())

    def __getitem__(self, index):  # noqa: ANN001, ANN204 (Sequence's signature)
        return self.values[index]

    def __len__(self) -> int:
        return len(self.values)


def _augment_modes() -> tuple[str, ...]:
    from pipeline.data import AUGMENT_MODES

    return AUGMENT_MODES


def augment_field() -> Any:
    """The ``augment`` setting of a training stage's config (the training transform; evaluation never augments)."""
    return dataclasses.field(default="auto", metadata={"choices": LazyChoices(_augment_modes), "help": "training augmentation, random-resized-crop + horizontal flip (auto: on for RGB image folders, off for other data)"})
