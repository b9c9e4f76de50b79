"""``compress <stage> INPUT``: one stage as a one-stage recipe through the same runner."""

from __future__ import annotations

from pathlib import Path

import click

from deploy.tvm.targets import reference_target
from pipeline.cli import log_function
from pipeline.cli.options import (
    build_run_options,
    config_options,
    config_values,
    run_options,
)
from pipeline.config import config_from_dict
from pipeline.execute import default_run_dir, execute, summarise
from pipeline.model.run_input import RunInput
from pipeline.recipe import Step
from pipeline.stages import stage_class
from pipeline.training import distributed


def make_command(name: str) -> click.Command:
    stage = stage_class(name)

    @click.command(name=name, help=f"{stage.summary}\n\nINPUT is a model file (an ONNX file for compile).")
    @click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
    @config_options(stage.Config, stage=name)
    @run_options
    @click.pass_obj
    def command(obj, input_path, **kwargs):
        values = config_values(stage.Config, kwargs)
        config = config_from_dict(stage.Config, values, where=f"compress {name}")
        target = getattr(config, "target", reference_target().name)
        run_input = RunInput.from_flags(input_path, arch=kwargs.pop("arch"), input_shape=kwargs.pop("input_shape"))
        run_dir = Path(kwargs.pop("out_dir") or default_run_dir(input_path, name))
        resume, dry_run, as_json = kwargs.pop("resume"), kwargs.pop("dry_run"), kwargs.pop("as_json")
        kwargs["quiet"] = bool(obj and obj.get("quiet"))
        options = build_run_options(kwargs, target=target)
        manifest = execute(
            [Step(name, config)], run_input=run_input, run_dir=run_dir, options=options,
            resume=resume, until=None, dry_run=dry_run, log=log_function(obj) if distributed.is_main() else _silent,
        )
        if not dry_run and distributed.is_main():  # under torchrun only rank 0 reports
            summarise(manifest, run_dir=run_dir, as_json=as_json, max_accuracy_drop=None)

    return command


def _silent(_: str) -> None:
    """The log of the other ranks under torchrun (rank 0 reports)."""
