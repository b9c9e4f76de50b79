"""Click options shared by ``compress run`` and the one-stage commands, and options built from stage configs."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Callable

import click
import yaml

from pipeline.errors import UserError
from pipeline.model.input_shape import parse_shape
from pipeline.recipe import DEFAULT_RECIPE
from pipeline.stage import RunOptions
from pipeline.training.devices import resolve_train_device



def run_options(command: Callable) -> Callable:
    """Options every command that runs stages accepts (data, seed, target, preprocessing, ...)."""
    options = [
        click.option("--data", default="mnist", show_default=True, help="mnist | digits | DIR of IDX files | FILE.npz | image folder (one sub-folder per class) | ROOT with train/ and val/ image folders"),
        click.option("--seed", default=0, show_default=True, type=int, help="random seed"),
        click.option("--arch", default=None, help="architecture of a state_dict: a registered name or package.module:factory"),
        click.option("--input-shape", default=None, help="per-sample input shape C,H,W (default: from the checkpoint)"),
        click.option("--trust-pickle", is_flag=True, help="allow loading a pickled nn.Module (DANGEROUS: runs code from the file)"),
        click.option("--train-limit", default=0, type=int, help="use only the first N training samples (0: all)"),
        click.option("--test-limit", default=0, type=int, help="use only the first N test samples (0: all)"),
        click.option("--scale", default=None, type=float, help="multiply raw pixels by this (default: to [0, 1])"),
        click.option("--mean", default=None, help="per-channel mean subtracted after scaling, e.g. 0.1307"),
        click.option("--std", default=None, help="per-channel std divided after the mean, e.g. 0.3081"),
        click.option("--resize", default=None, help="resize inputs to H,W (default: the model's input size)"),
        click.option("--threads", default=0, type=int, help="torch / runtime threads (0: library default)"),
        click.option("--workers", default=None, type=int, help="DataLoader worker processes decoding batches (default: 2 for image folders, at most one per CPU; 0 for arrays)"),
        click.option("--train-device", default="auto", show_default=True, help="where training runs: auto (CUDA when available) | cpu | cuda"),
        click.option("--amp", is_flag=True, help="mixed precision training (float16 on CUDA, bfloat16 on the CPU)"),
        click.option("--checkpoint-every", default=0, type=int, metavar="STEPS", help="also checkpoint training every N steps, so a killed epoch resumes at the step (0: epoch ends only)"),
        click.option("--epoch-steps", default=0, type=int, metavar="STEPS", help="train at most N batches per epoch (0: whole epochs; for smoke tests and benchmarks)"),
        click.option("--out", "out_dir", default=None, help="run directory (default: runs/<model>-<target>-<time>)"),
        click.option("--resume", is_flag=True, help="continue the run in --out, skipping finished stages"),
        click.option("--dry-run", is_flag=True, help="print the plan, write nothing"),
        click.option("--json", "as_json", is_flag=True, help="print a JSON summary on stdout"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def parse_floats(text: str | None, *, what: str) -> tuple[float, ...]:
    if not text:
        return ()
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(f"{what} must be numbers separated by commas, got {text!r}") from None


def _check_preprocess(preprocess: dict[str, Any]) -> None:
    """Refuse values that would turn every input into NaN / Inf (or all zeros) before any training."""
    scale = preprocess.get("scale")
    if scale is not None and (not math.isfinite(scale) or scale == 0):
        raise UserError(f"--scale must be a finite non-zero number, got {scale}")
    if any(not math.isfinite(v) for v in preprocess.get("mean", [])):
        raise UserError(f"--mean must be finite numbers, got {preprocess['mean']}")
    if any(not math.isfinite(v) or v <= 0 for v in preprocess.get("std", [])):
        raise UserError(f"--std must be finite positive numbers, got {preprocess['std']}")


def build_run_options(kwargs: dict[str, Any], *, target: str, device: str = "", max_accuracy_drop: float | None = None) -> RunOptions:
    preprocess: dict[str, Any] = {}
    if kwargs.get("scale") is not None:
        preprocess["scale"] = kwargs["scale"]
    for key in ("mean", "std"):
        values = parse_floats(kwargs.get(key), what=f"--{key}")
        if values:
            preprocess[key] = list(values)
    resize = parse_shape(kwargs.get("resize"), what="--resize")
    if resize:
        preprocess["resize"] = list(resize)
    # Without --scale the data source's own unit scale applies (1/255 for integer pixels, 1 for float
    # data), whatever the source: ``load_dataset`` fills it in and records it.
    _check_preprocess(preprocess)
    _check_training_options(kwargs)
    return RunOptions(
        data=kwargs["data"],
        seed=kwargs["seed"],
        target=target,
        train_limit=kwargs["train_limit"],
        test_limit=kwargs["test_limit"],
        trust_pickle=kwargs["trust_pickle"],
        threads=kwargs["threads"],
        progress=not kwargs.get("quiet", False),
        device=device,
        preprocess=preprocess,
        max_accuracy_drop=max_accuracy_drop,
        workers=kwargs.get("workers"),
        train_device=kwargs.get("train_device") or "auto",
        amp=bool(kwargs.get("amp")),
        checkpoint_every=kwargs.get("checkpoint_every") or 0,
        epoch_steps=kwargs.get("epoch_steps") or 0,
        lr_scale=1.0 if kwargs.get("lr_scale") is None else kwargs["lr_scale"],
    )


def _check_training_options(kwargs: dict[str, Any]) -> None:
    """One line for a training knob out of range (the device is resolved now: ``cuda`` without a GPU fails before any stage)."""
    for flag in ("workers", "checkpoint_every", "epoch_steps"):
        value = kwargs.get(flag)
        if value is not None and value < 0:
            raise UserError(f"--{flag.replace('_', '-')} must be >= 0, got {value}")
    scale = kwargs.get("lr_scale")
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise UserError(f"--lr-scale must be a positive finite number, got {scale}")
    resolve_train_device(kwargs.get("train_device") or "auto")


def config_options(config_type: type, *, stage: str | None = None) -> Callable[[Callable], Callable]:
    """Click options generated from a stage's config dataclass (defaults are shown, never duplicated;
    where ``compress run``'s built-in recipe sets another value for ``stage``, the help shows it too);
    options of a shared group (the adversarial ones) come after the stage's own."""
    fields = sorted(dataclasses.fields(config_type), key=lambda f: "group" in f.metadata)
    in_recipe = built_in_recipe_values(stage) if stage else {}

    def decorate(command: Callable) -> Callable:
        for field in reversed(fields):
            command = _field_option(field, config_type, in_recipe.get(field.name))(command)
        return command

    return decorate


def built_in_recipe_values(stage: str) -> dict[str, Any]:
    """The settings the built-in recipe gives ``stage`` (read as plain YAML: no stage code runs)."""
    document = yaml.safe_load(DEFAULT_RECIPE.read_text(encoding="utf-8"))
    step = next((s for s in document["stages"] if s["use"] == stage), None)
    return {str(key).replace("-", "_"): value for key, value in ((step or {}).get("with") or {}).items()}


def _field_option(field: dataclasses.Field, config_type: type, recipe_value: Any = None) -> Callable:
    flag = "--" + field.name.replace("_", "-")
    default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    help_text = field.metadata.get("help", "")
    hint = typing.get_type_hints(config_type)[field.name]
    recipe = "" if recipe_value is None or recipe_value == default else f"; compress run's built-in recipe: {_show(recipe_value)}"
    if hint is bool or hint == (bool | None):
        return click.option(f"{flag}/--no-{flag[2:]}", field.name, default=None, help=f"{help_text} [default: {default}{recipe}]")
    if typing.get_origin(hint) is dict:
        return click.option(flag, field.name, multiple=True, metavar="KEY=VALUE", help=f"{help_text}{' [' + recipe[2:] + ']' if recipe else ''}")
    choices = field.metadata.get("choices")
    shown = "" if callable(choices) or choices is None else f" ({' | '.join(map(str, choices))})"
    return click.option(flag, field.name, default=None, metavar=_metavar(hint, field.name),
                        help=f"{help_text}{shown} [default: {_show(default)}{recipe}]")


def _metavar(hint: Any, name: str) -> str:
    """What ``--help`` shows for a value (the config code still parses it, so errors stay one line)."""
    options = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) in (typing.Union, types.UnionType) else [hint]
    base = options[0] if options else hint
    if typing.get_origin(base) in (tuple, list):
        return "A,B,..."
    if base is float:
        return "RATIO" if name.endswith("ratio") or name.endswith("_drop") else "FLOAT"
    return {int: "INTEGER", str: "TEXT"}.get(base, "VALUE")


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{key}={item}" for key, item in value.items())
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def config_values(config_type: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The config entries the user set on the command line (``None`` / empty means unset)."""
    values = {}
    for field in dataclasses.fields(config_type):
        value = kwargs.pop(field.name, None)
        if value is None or value == ():
            continue
        values[field.name] = _key_values(value) if isinstance(value, tuple) and typing.get_origin(typing.get_type_hints(config_type)[field.name]) is dict else value
    return values


def _key_values(items: tuple[str, ...]) -> dict[str, Any]:
    result = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"expected KEY=VALUE, got {item!r}")
        try:
            result[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise UserError(f"cannot parse the value of {item!r}") from None
    return result


__all__ = ["run_options", "config_options", "config_values", "build_run_options"]
