"""A tiny declarative validator for JSON-like data (dicts, lists, scalars).

A schema is a tree of ``Field`` records; ``check`` walks a value against it and raises
``ReportSchemaError`` naming the first offending path, the expectation and the value found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping


class ReportSchemaError(ValueError):
    """A report does not follow its schema; the message names the path and the problem."""


@dataclass(frozen=True)
class Field:
    """Expectation for one value.

    Attributes:
        kind: ``"str"``, ``"int"``, ``"number"``, ``"bool"``, ``"object"``, ``"list"``, ``"map"``
            or ``"any"`` (any JSON scalar).
        required: the key must be present in its parent object.
        nullable: ``None`` is allowed.
        fields: for ``"object"``: the known keys.
        extra: for ``"object"``: keys beyond ``fields`` are allowed (scalars only).
        items: for ``"list"``: the element expectation.
        values: for ``"map"``: the expectation of every value (keys are strings).
        choices: allowed values.
        minimum: smallest allowed number (or list length for ``"list"``).
        maximum: largest allowed number.
    """

    kind: str
    required: bool = True
    nullable: bool = False
    fields: Mapping[str, "Field"] | None = None
    extra: bool = False
    items: "Field | None" = None
    values: "Field | None" = None
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None


_SCALARS = (str, int, float, bool, type(None))


def _fail(path: str, expected: str, value: Any) -> None:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise ReportSchemaError(f"{path}: expected {expected}, got {shown}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_range(value: Any, field: Field, path: str) -> None:
    if field.minimum is not None and value < field.minimum:
        _fail(path, f"a value >= {field.minimum}", value)
    if field.maximum is not None and value > field.maximum:
        _fail(path, f"a value <= {field.maximum}", value)


def _check_scalar(value: Any, field: Field, path: str) -> None:
    if field.kind == "str" and not isinstance(value, str):
        _fail(path, "a string", value)
    if field.kind == "bool" and not isinstance(value, bool):
        _fail(path, "true or false", value)
    if field.kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
        _fail(path, "an integer", value)
    if field.kind == "number":
        if not _is_number(value) or not math.isfinite(value):
            _fail(path, "a finite number", value)
    if field.kind == "any" and not isinstance(value, _SCALARS):
        _fail(path, "a JSON scalar", value)
    if field.kind in ("int", "number"):
        _check_range(value, field, path)


def _check_object(value: Any, field: Field, path: str) -> None:
    if not isinstance(value, dict):
        _fail(path, "an object", value)
    known = field.fields or {}
    unknown = sorted(key for key in value if key not in known)
    if unknown and not field.extra:
        raise ReportSchemaError(
            f"{path}: unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(known))}"
        )
    for key in unknown:
        check(value[key], Field("any", nullable=True), path=f"{path}.{key}")
    for key, child in known.items():
        if key in value:
            check(value[key], child, path=f"{path}.{key}")
        elif child.required:
            raise ReportSchemaError(f"{path}: missing required key {key!r}")


def _check_list(value: Any, field: Field, path: str) -> None:
    if not isinstance(value, list):
        _fail(path, "a list", value)
    if field.minimum is not None and len(value) < field.minimum:
        _fail(path, f"a list of at least {int(field.minimum)} item(s)", value)
    for index, item in enumerate(value):
        check(item, field.items or Field("any"), path=f"{path}[{index}]")


def _check_map(value: Any, field: Field, path: str) -> None:
    if not isinstance(value, dict):
        _fail(path, "an object", value)
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            _fail(path, "non-empty string keys", key)
        check(item, field.values or Field("any"), path=f"{path}.{key}")


def check(value: Any, field: Field, *, path: str) -> None:
    """Validate ``value`` against ``field``.

    Args:
        value: the JSON-like value.
        field: its expectation.
        path: where the value sits, for the error message (e.g. ``"report.variants[0]"``).

    Raises:
        ReportSchemaError: at the first mismatch.
    """
    if value is None:
        if not field.nullable:
            _fail(path, f"a {field.kind} (not null)", value)
        return
    if field.kind == "object":
        _check_object(value, field, path)
    elif field.kind == "list":
        _check_list(value, field, path)
    elif field.kind == "map":
        _check_map(value, field, path)
    else:
        _check_scalar(value, field, path)
    if field.choices is not None and value not in field.choices:
        _fail(path, f"one of {', '.join(map(str, field.choices))}", value)
