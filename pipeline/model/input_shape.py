"""A model's per-sample input shape: read from text like ``1,28,28`` and held under a size limit.

The limit is checked wherever a shape enters the tool (``--input-shape``, ``--resize``, a bundle's
``input_shape``), before anything of that size is allocated.
"""

from __future__ import annotations

import math

from pipeline.errors import UserError

MAX_INPUT_ELEMENTS = 2**26  # values per sample (256 MiB of float32): far beyond any model this tool targets


def parse_shape(text: str | None, *, what: str) -> tuple[int, ...] | None:
    """``"1,28,28"`` (or ``"1x28x28"``) as ``(1, 28, 28)``; None for no text; one ``UserError`` line otherwise."""
    if not text:
        return None
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise UserError(f"{what} must be integers like 1,28,28, got {text!r}") from None
    if not shape or any(v <= 0 for v in shape):
        raise UserError(f"{what} must be positive integers like 1,28,28, got {text!r}")
    check_input_size(shape, what=what)
    return shape


def check_input_size(shape: tuple[int, ...], *, what: str) -> None:
    """Refuse a declared input of more than ``MAX_INPUT_ELEMENTS`` values before anything is allocated."""
    if math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise UserError(f"{what} {list(shape)} holds more than {MAX_INPUT_ELEMENTS:,} values per sample (the limit)")
