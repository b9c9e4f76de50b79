"""``compress run [MODEL]``: the whole recipe; with no model, the bundled LeNet-5 trained on MNIST."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import click

from deploy.tvm.targets import DEFAULT_TARGET, list_targets
from pipeline.cli import log_function
from pipeline.cli.options import build_run_options, run_options
from pipeline.cli.overrides import apply_overrides, training_overrides
from pipeline.errors import AccuracyBudgetError, RunInterrupted, UserError
from pipeline.execute import EXAMPLE_MODEL, default_run_dir, execute, summarise
from pipeline.goal.command import run_goal
from pipeline.goal.config import goal_options, goals_from_run
from pipeline.manifest import read_manifest
from pipeline.model.run_input import RunInput
from pipeline.recipe import built_in_recipes, load_recipe, recipe_path
from pipeline.training import distributed


def make_command(name: str) -> click.Command:
    @click.command(name=name)
    @click.argument("model", required=False, type=click.Path(dir_okay=True, path_type=Path))
    @click.option("--target", default=DEFAULT_TARGET, show_default=True, help="compile target (see `compress targets`)")
    @click.option("--recipe", default=None, type=click.Path(path_type=Path), help=f"recipe YAML, or a built-in recipe's name: {', '.join(built_in_recipes())} (default: default)")
    @click.option("--until", default=None, help="stop after this stage")
    @click.option("--device", default="", help="measure latency on a device: rpc://HOST:PORT[/KEY]")
    @click.option("--max-accuracy-drop", default=None, type=float, metavar="RATIO", help="exit 3 if accuracy drops by more than this fraction (0.005 = 0.5 points)")
    @click.option("--max-robust-drop", default=None, type=float, metavar="RATIO", help="exit 3 if robust accuracy (the report's attacks, on what ships) drops by more than this fraction")
    @training_overrides
    @run_options
    @goal_options
    @click.pass_obj
    def command(obj, model, target, recipe, until, device, max_accuracy_drop, max_robust_drop, **kwargs):
        """Run train-sparse -> prune -> quantize -> export -> compile -> report on MODEL.

        MODEL is a checkpoint (state_dict + --arch), a compress bundle, TorchScript, a torch.export .pt2,
        or an ONNX file (which starts at the compile stage). Without MODEL the bundled LeNet-5 trained
        on MNIST is used.
        """
        as_json = kwargs.pop("as_json")
        try:
            _run(obj, model, target, recipe, until, device, (max_accuracy_drop, max_robust_drop), as_json=as_json, **kwargs)
        except AccuracyBudgetError:
            raise  # the JSON summary, with its status, is already on stdout
        except BaseException as error:
            if as_json:
                click.echo(json.dumps(failure_summary(error, kwargs.get("out_dir")), indent=2, sort_keys=True))
            raise

    return command


def _run(obj, model, target, recipe, until, device, budgets, *, as_json: bool, **kwargs) -> None:
    """The body of ``compress run`` (wrapped so that ``--json`` reports failures as JSON too)."""
    max_accuracy_drop, max_robust_drop = budgets
    for flag, value in (("--max-accuracy-drop", max_accuracy_drop), ("--max-robust-drop", max_robust_drop)):
        if value is not None and not math.isfinite(value):
            raise UserError(f"{flag} must be a finite fraction (0.005 = 0.5 points), got {value}")
    recipe = recipe_path(recipe) if recipe is not None else None
    goals = goals_from_run(kwargs, recipe=recipe, max_accuracy_drop=max_accuracy_drop, max_robust_drop=max_robust_drop)
    steps = apply_overrides(_with_target(load_recipe(recipe), target), kwargs)
    if max_robust_drop is not None:
        _check_robust_report(steps, until)
    run_input = RunInput.from_flags(model or EXAMPLE_MODEL, arch=kwargs.pop("arch"), input_shape=kwargs.pop("input_shape"))
    run_dir = Path(kwargs.pop("out_dir") or default_run_dir(run_input.model_path, target))
    resume, dry_run = kwargs.pop("resume"), kwargs.pop("dry_run")
    kwargs["quiet"] = bool(obj and obj.get("quiet"))
    options = build_run_options(kwargs, target=target, device=device, max_accuracy_drop=max_accuracy_drop)
    if goals.searches and not dry_run:  # a speed / size goal: search the per-layer allocation (pipeline.goal)
        return run_goal(steps, goals=goals, run_input=run_input, run_dir=run_dir, options=options, resume=resume, log=log_function(obj), as_json=as_json)
    manifest = execute(
        steps, run_input=run_input, run_dir=run_dir, options=options,
        resume=resume, until=until, dry_run=dry_run, log=log_function(obj) if distributed.is_main() else _silent,
    )
    if not dry_run and distributed.is_main():  # under torchrun only rank 0 reports
        summarise(manifest, run_dir=run_dir, as_json=as_json, max_accuracy_drop=max_accuracy_drop, max_robust_drop=max_robust_drop)


def failure_summary(error: BaseException, out_dir: str | None) -> dict:
    """``{"status": "error" | "interrupted", "stage": <failed stage or null>, "message", "exit_code"}``."""
    interrupted = isinstance(error, (KeyboardInterrupt, RunInterrupted, click.exceptions.Abort))
    stage = None
    if out_dir:
        try:
            records = read_manifest(Path(out_dir)).get("stages", [])
            stage = next((r["name"] for r in records if r.get("status") in ("failed", "interrupted")), None)
        except UserError:  # no run directory yet (the error came before any stage)
            stage = None
    code = getattr(error, "exit_code", 130 if interrupted else 1)
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return {"status": "interrupted" if interrupted else "error", "stage": stage, "message": message, "exit_code": code}


def _check_robust_report(steps, until: str | None) -> None:
    """``--max-robust-drop`` needs a report stage that measures robust accuracy: say so before training."""
    names = [step.use for step in steps]
    last = names.index(until) if until in names else len(names) - 1
    report = next((step for step in steps[: last + 1] if step.use == "report"), None)
    if report is None or not report.config.robust:
        raise UserError("--max-robust-drop needs robust accuracy: give the recipe a robust block (robust: {attack: pgd, eps: 0.3}) or the report step robust: [pgd]")


def _with_target(steps, target: str):
    """``--target`` sets the compile stage's target (and is validated against the presets)."""
    if target not in list_targets():
        raise UserError(f"unknown target {target!r}; allowed: {', '.join(list_targets())}")
    return [replace(step, config=replace(step.config, target=target)) if step.use == "compile" else step for step in steps]


def _silent(_: str) -> None:
    """The log of the other ranks under torchrun (rank 0 reports)."""
