"""Strict dataclass configs: the only place stage defaults live, validated from recipes and CLI flags."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from pipeline.errors import UserError


def choices_of(field: dataclasses.Field) -> tuple[Any, ...] | None:
    """A field's allowed values; ``metadata["choices"]`` may be a tuple or a registry's lister."""
    choices = field.metadata.get("choices")
    return tuple(choices()) if callable(choices) else choices


def config_from_dict(config_type: type, data: dict[str, Any] | None, *, where: str) -> Any:
    """Build ``config_type`` from ``data``; unknown keys and wrong types raise ``UserError``."""
    data = dict(data or {})
    fields = {f.name.replace("_", "-"): f for f in dataclasses.fields(config_type)}
    hints = typing.get_type_hints(config_type)
    values = {}
    for key, value in data.items():
        field = fields.get(key) or fields.get(str(key).replace("_", "-"))
        if field is None:
            raise UserError(f"{where}: unknown key {key!r}; allowed: {', '.join(sorted(fields))}")
        values[field.name] = coerce(value, field, hint=hints[field.name], where=f"{where}.{key}")
    try:
        return config_type(**values)
    except ValueError as error:  # a dataclass's own check (``__post_init__``), e.g. a method's hyperparameters
        raise UserError(f"{where}: {error}") from None


def config_to_dict(config: Any) -> dict[str, Any]:
    return {f.name.replace("_", "-"): _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


MAX_INT = 2**31 - 1
COUNT_BOUNDS = {"epochs": 10_000, "steps": 1_000_000, "adv_steps": 10_000, "tune_trials": 1_000_000, "robust_steps": 10_000}


def coerce(value: Any, field: dataclasses.Field, *, hint: Any, where: str) -> Any:
    """Check ``value`` against the field's type ``hint``, choices and bound, converting str/int where
    lossless. Integers are bounded (``metadata["max"]``, else :data:`COUNT_BOUNDS` by field name,
    else :data:`MAX_INT`): a recipe's ``epochs: 1e21`` is refused, not trained until killed."""
    converted = _coerce_type(value, hint, where=where)
    _check_bound(converted, field, where=where)
    allowed = choices_of(field)
    if allowed is not None and converted not in allowed:
        raise UserError(f"{where}: {value!r} is not allowed; allowed: {', '.join(map(str, allowed))}")
    return converted


def _check_bound(value: Any, field: dataclasses.Field, *, where: str) -> None:
    values = value if isinstance(value, tuple) else (value,)
    bound = field.metadata.get("max", COUNT_BOUNDS.get(field.name, MAX_INT))
    for item in values:
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) > bound:
            raise UserError(f"{where}: {item} is beyond the bound of {bound:,}")


def _coerce_type(value: Any, hint: Any, *, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if type(None) in options and (value is None or (isinstance(value, str) and value.lower() in ("none", "null"))):
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce_type(value, option, where=where)
            except UserError as error:
                errors.append(str(error))
        raise UserError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [part for part in value.replace("x", ",").split(",") if part.strip()]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {value!r}")
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        item = args[0] if args else Any
        return tuple(_coerce_type(v, item, where=where) for v in value)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    return _coerce_scalar(value, hint, where=where)


def _coerce_scalar(value: Any, hint: Any, *, where: str) -> Any:
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise UserError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise UserError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise UserError(f"{where}: expected an integer, got {value!r}") from None
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise UserError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise UserError(f"{where}: expected a number, got {value!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise UserError(f"{where}: expected a finite number, got {value!r}")
        return number
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise UserError(f"{where}: expected a string, got {value!r}")
        return str(value)
    raise UserError(f"{where}: unsupported config type {hint}")
