"""The one stage list (``pipeline.stages.STAGE_CLASSES``) gives the order, the registry and the CLI."""

from __future__ import annotations

from click.testing import CliRunner

from pipeline.cli import COMMANDS, cli
from pipeline.recipe import load_recipe
from pipeline.stages import STAGE_CLASSES, STAGES, list_stages, stage_class


def test_stage_order_and_registry_come_from_the_stage_list():
    assert list_stages() == [stage.name for stage in STAGE_CLASSES]
    assert STAGES.names() == sorted(list_stages())
    assert all(stage_class(stage.name) is stage for stage in STAGE_CLASSES)


def test_built_in_recipe_runs_the_stages_in_list_order():
    assert [step.use for step in load_recipe(None)] == list_stages()


def test_cli_help_shows_each_stage_command_with_its_class_summary():
    help_text = " ".join(CliRunner().invoke(cli, ["--help"], terminal_width=1000).output.split())

    for stage in STAGE_CLASSES:
        if stage.name not in COMMANDS:
            assert f"{stage.name} {stage.summary}" in help_text
    assert "run the whole recipe: " + ", ".join(list_stages()) in help_text


def test_cli_stage_command_help_is_the_stage_summary():
    stage = stage_class("prune")

    help_text = " ".join(CliRunner().invoke(cli, ["prune", "--help"], terminal_width=1000).output.split())

    assert stage.summary in help_text
