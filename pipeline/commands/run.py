"""``compress run [MODEL]``: the whole recipe; with no model, the bundled LeNet-5 trained on MNIST."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import click

from pipeline.cli_options import build_run_options, run_options
from pipeline.commands.execute import EXAMPLE_MODEL, default_run_dir, execute, summarise
from pipeline.errors import UserError


def make_command(name: str) -> click.Command:
    @click.command(name=name)
    @click.argument("model", required=False, type=click.Path(dir_okay=True, path_type=Path))
    @click.option("--target", default="arm64", show_default=True, help="compile target (see `compress targets`)")
    @click.option("--recipe", default=None, type=click.Path(path_type=Path), help="recipe YAML (default: the built-in recipe)")
    @click.option("--until", default=None, help="stop after this stage")
    @click.option("--device", default="", help="measure latency on a device: rpc://HOST:PORT[/KEY]")
    @click.option("--max-accuracy-drop", default=None, type=float, help="exit 3 if accuracy drops by more than this fraction (0.005 = 0.5 points)")
    @run_options
    @click.pass_obj
    def command(obj, model, target, recipe, until, device, max_accuracy_drop, **kwargs):
        """Run train-sparse -> prune -> quantize -> export -> compile -> report on MODEL.

        MODEL is a checkpoint (state_dict + --arch), a compress bundle, TorchScript, a torch.export .pt2,
        or an ONNX file (which starts at the compile stage). Without MODEL the bundled LeNet-5 trained
        on MNIST is used.
        """
        from pipeline.cli import log_function
        from pipeline.recipe import load_recipe

        if max_accuracy_drop is not None and not math.isfinite(max_accuracy_drop):
            raise UserError(f"--max-accuracy-drop must be a finite fraction (0.005 = 0.5 points), got {max_accuracy_drop}")
        steps = _with_target(load_recipe(recipe), target)
        model_path = model or EXAMPLE_MODEL
        run_dir = Path(kwargs.pop("out_dir") or default_run_dir(model_path, target))
        resume, dry_run, as_json = kwargs.pop("resume"), kwargs.pop("dry_run"), kwargs.pop("as_json")
        kwargs["quiet"] = bool(obj and obj.get("quiet"))
        options = build_run_options(kwargs, target=target, device=device, max_accuracy_drop=max_accuracy_drop)
        manifest = execute(
            steps, model_path=model_path, run_dir=run_dir, options=options, kwargs=kwargs,
            resume=resume, until=until, dry_run=dry_run, log=log_function(obj),
        )
        if not dry_run:
            summarise(manifest, run_dir=run_dir, as_json=as_json, max_accuracy_drop=max_accuracy_drop)

    return command


def _with_target(steps, target: str):
    """``--target`` sets the compile stage's target (and is validated against the presets)."""
    from deploy.tvm.targets import list_targets

    if target not in list_targets():
        raise UserError(f"unknown target {target!r}; allowed: {', '.join(list_targets())}")
    return [replace(step, config=replace(step.config, target=target)) if step.use == "compile" else step for step in steps]
