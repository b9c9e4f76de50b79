"""Recipes: YAML lists of stages (``stages: [{use: prune, with: {...}}]``), validated strictly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import config_from_dict, config_to_dict
from pipeline.errors import UserError
from pipeline.strict_yaml import load_strict
from pipeline.stage import list_stages, stage_class

RECIPE_KEYS = ("stages", "name", "description")
STEP_KEYS = ("use", "with")
DEFAULT_RECIPE = Path(__file__).parent / "recipes" / "default.yaml"


@dataclass(frozen=True)
class Step:
    use: str
    config: Any

    def to_dict(self) -> dict[str, Any]:
        return {"use": self.use, "with": config_to_dict(self.config)}


def load_recipe(path: Path | None) -> list[Step]:
    """Read and validate a recipe file (the bundled default when ``path`` is None)."""
    path = Path(path) if path is not None else DEFAULT_RECIPE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read recipe {path}: {error}") from None
    return parse_recipe(text, source=str(path))


def parse_recipe(text: str, *, source: str = "recipe") -> list[Step]:
    try:
        document = load_strict(text)
    except yaml.YAMLError as error:
        raise UserError(f"{source}: invalid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(document, dict):
        raise UserError(f"{source}: a recipe must be a mapping with a 'stages' list")
    unknown = sorted(str(k) for k in document if k not in RECIPE_KEYS)
    if unknown:
        raise UserError(f"{source}: unknown key {unknown[0]!r}; allowed: {', '.join(RECIPE_KEYS)}")
    stages = document.get("stages")
    if not isinstance(stages, list) or not stages:
        raise UserError(f"{source}: 'stages' must be a non-empty list")
    return [parse_step(item, where=f"{source}: stages[{index}]") for index, item in enumerate(stages)]


def parse_step(item: Any, *, where: str) -> Step:
    if not isinstance(item, dict):
        raise UserError(f"{where} must be a mapping with 'use' and optional 'with'")
    unknown = sorted(str(k) for k in item if k not in STEP_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(STEP_KEYS)}")
    name = item.get("use")
    if not isinstance(name, str) or name not in list_stages():
        raise UserError(f"{where}: unknown stage {name!r}; allowed: {', '.join(list_stages())}")
    options = item.get("with") or {}
    if not isinstance(options, dict):
        raise UserError(f"{where}.with must be a mapping, got {type(options).__name__}")
    return Step(name, config_from_dict(stage_class(name).Config, options, where=f"{where} ({name})"))


def recipe_to_dict(steps: list[Step]) -> dict[str, Any]:
    return {"stages": [step.to_dict() for step in steps]}
