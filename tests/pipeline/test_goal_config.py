"""Goals: the recipe's goal: block and the command-line goal options, validated strictly."""

from __future__ import annotations

import pytest

from pipeline.errors import UserError
from pipeline.goal.config import Goals, goals_from_run, parse_goal_block
from pipeline.recipe import parse_recipe

STAGES = "stages:\n  - use: prune\n  - use: export\n"


def test_goal_block_reads_goals_and_search_settings():
    goals = parse_goal_block({"min-speedup": 3, "max-accuracy-drop": 0.005, "search-budget": 10, "levels": [0.0, 0.9]}, where="goal")
    assert goals == Goals(min_speedup=3.0, max_accuracy_drop=0.005, search_budget=10.0, levels=(0.0, 0.9))
    assert goals.searches


def test_goal_block_unknown_key_is_one_line_naming_the_allowed_keys():
    with pytest.raises(UserError) as error:
        parse_recipe(STAGES + "goal: {min-speedupp: 3}\n", source="r.yaml")
    message = str(error.value)
    assert "unknown key 'min-speedupp'" in message and "min-speedup" in message and "max-size-kib" in message
    assert "\n" not in message


@pytest.mark.parametrize("block, fragment", [
    ({"min-speedup": -2}, "min-speedup must be a positive"),
    ({"min-speedup": "fast"}, "min-speedup"),
    ({"max-accuracy-drop": 5}, "max-accuracy-drop must be a fraction"),
    ({"search-budget": 0}, "search-budget must be a positive"),
    ({"levels": [0.9, 0.5]}, "levels must be distinct ascending"),
    ({"block": [16]}, "block must be two positive integers"),
    ("fast", "must be a mapping"),
])
def test_goal_block_bad_values_are_one_line_errors(block, fragment):
    with pytest.raises(UserError, match=fragment) as error:
        parse_goal_block(block, where="r.yaml: goal")
    assert "\n" not in str(error.value) and str(error.value).startswith("r.yaml: goal")


def test_recipe_with_a_goal_block_still_parses_its_stages():
    steps = parse_recipe(STAGES + "goal: {min-speedup: 2}\n", source="r.yaml")
    assert [s.use for s in steps] == ["prune", "export"]


def test_command_line_goals_override_the_recipe_and_are_checked(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(STAGES + "goal: {min-speedup: 2, search-budget: 5}\n")
    kwargs = {"min_speedup": 3.0, "max_size_kib": None, "search_budget": None, "data": "mnist"}
    goals = goals_from_run(kwargs, recipe=recipe, max_accuracy_drop=0.01, max_robust_drop=None)
    assert (goals.min_speedup, goals.search_budget, goals.max_accuracy_drop) == (3.0, 5.0, 0.01)
    assert kwargs == {"data": "mnist"}  # the goal options are taken out of the run's options
    with pytest.raises(UserError, match="--min-speedup must be a positive finite number"):
        goals_from_run({"min_speedup": float("nan")}, recipe=None, max_accuracy_drop=None, max_robust_drop=None)
    assert not goals_from_run({}, recipe=None, max_accuracy_drop=0.005, max_robust_drop=None).searches  # a gate alone
