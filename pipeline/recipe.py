"""Recipes: YAML lists of stages (``stages: [{use: prune, with: {...}}]``), validated strictly.

A run-level ``robust`` block (``robust: {attack: pgd, eps: 0.3, steps: 10, step-size: ..., weight: 1}``)
sets the adversarial options of every stage that trains, unless a stage sets its own, and makes the
report measure PGD robust accuracy at that ``eps`` unless the report step says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import config_from_dict, config_to_dict
from pipeline.errors import UserError
from pipeline.goal.config import parse_goal_block
from pipeline.stages import list_stages, stage_class
from pipeline.strict_yaml import load_strict
from pipeline.training.adversarial import AdversarialOptions, check_options

RECIPE_KEYS = ("stages", "name", "description", "robust", "goal")
ROBUST_KEYS = {"attack": "adversarial", "eps": "adv_eps", "steps": "adv_steps", "step-size": "adv_step_size", "weight": "adv_weight"}
STEP_KEYS = ("use", "with")
BUILT_IN_RECIPES = Path(__file__).parent / "recipes"
DEFAULT_RECIPE = BUILT_IN_RECIPES / "default.yaml"


@dataclass(frozen=True)
class Step:
    use: str
    config: Any

    def to_dict(self) -> dict[str, Any]:
        return {"use": self.use, "with": config_to_dict(self.config)}


def built_in_recipes() -> list[str]:
    """Names of the recipes shipped with compress (``--recipe int8`` reads ``recipes/int8.yaml``)."""
    return sorted(path.stem for path in BUILT_IN_RECIPES.glob("*.yaml"))


def recipe_path(path: Path | str | None) -> Path:
    """The file a ``--recipe`` value names: a path, or the name of a built-in recipe when no such file exists."""
    if path is None:
        return DEFAULT_RECIPE
    path = Path(path)
    if not path.exists() and str(path) in built_in_recipes():
        return BUILT_IN_RECIPES / f"{path}.yaml"
    if not path.exists() and not path.suffix:
        raise UserError(f"no recipe file {path} and no built-in recipe of that name (built-in: {', '.join(built_in_recipes())})")
    return path


def load_recipe(path: Path | str | None) -> list[Step]:
    """Read and validate a recipe file or built-in recipe (the default when ``path`` is None)."""
    path = recipe_path(path)
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
    robust = _robust_options(document.get("robust"), where=f"{source}: robust")
    parse_goal_block(document.get("goal"), where=f"{source}: goal")  # the goal search reads it (pipeline.goal)
    return [parse_step(item, where=f"{source}: stages[{index}]", robust=robust) for index, item in enumerate(stages)]


def _robust_options(block: Any, *, where: str) -> dict[str, Any]:
    """The run-level ``robust`` block as the stages' adversarial option names (checked here)."""
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise UserError(f"{where} must be a mapping with keys {', '.join(ROBUST_KEYS)}")
    unknown = sorted(str(k) for k in block if str(k).replace("_", "-") not in ROBUST_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(ROBUST_KEYS)}")
    if "attack" not in block:
        raise UserError(f"{where}: 'attack' is required (fgsm, ifgsm or pgd)")
    values = {ROBUST_KEYS[str(k).replace("_", "-")]: v for k, v in block.items()}
    options = config_from_dict(AdversarialOptions, values, where=where)
    try:
        check_options(options)
    except UserError as error:
        raise UserError(f"{where}: {error}") from None
    return values


def _inherit_robust(name: str, options: dict[str, Any], robust: dict[str, Any]) -> dict[str, Any]:
    """``options`` of stage ``name`` with the run-level robust settings it does not set itself."""
    if not robust:
        return options
    given = {str(key).replace("-", "_") for key in options}
    if issubclass(stage_class(name).Config, AdversarialOptions):
        return {**{k: v for k, v in robust.items() if k not in given}, **options}
    if name == "report" and "robust" not in given and robust["adversarial"] != "none":
        inherited = {"robust": ["pgd"], "robust_eps": robust.get("adv_eps", 0.3)}
        return {**{k: v for k, v in inherited.items() if k not in given}, **options}
    return options


def parse_step(item: Any, *, where: str, robust: dict[str, Any] | None = None) -> Step:
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
    options = _inherit_robust(name, options, robust or {})
    return Step(name, config_from_dict(stage_class(name).Config, options, where=f"{where} ({name})"))


def recipe_to_dict(steps: list[Step]) -> dict[str, Any]:
    return {"stages": [step.to_dict() for step in steps]}
