"""``compress targets`` and ``compress methods``: what exists, read from the registries."""

from __future__ import annotations

import inspect
import json

import click

from compress.optim import METHODS, list_methods
from compress.prune import PATTERNS
from compress.quant import QUANT_METHODS, list_quant_methods
from deploy.tvm.targets import get_target, list_targets


def make_command(name: str) -> click.Command:
    return {"targets": _targets_command, "methods": _methods_command}[name]()


def _targets_command() -> click.Command:
    @click.command(name="targets")
    @click.option("--json", "as_json", is_flag=True, help="print the presets as JSON")
    def command(as_json: bool) -> None:
        """List the compile target presets."""
        presets = [get_target(name) for name in list_targets()]
        if as_json:
            click.echo(json.dumps([p.to_dict() for p in presets], indent=2))
            return
        for preset in presets:
            click.echo(f"{preset.name:<15} {preset.description}")

    return command


def _methods_command() -> click.Command:
    @click.command(name="methods")
    @click.option("--verbose", "-v", is_flag=True, help="show each method's hyperparameters and defaults")
    def command(verbose: bool) -> None:
        """List training, pruning and quantization methods."""
        _section("train-sparse --method", list_methods(), METHODS, verbose)
        click.echo("\nprune --pattern\n  " + "  ".join(PATTERNS) + "   (plus --channel-ratio for channel removal)")
        _section("\nquantize --method", list_quant_methods(), QUANT_METHODS, verbose)

    return command


def _section(title: str, names: list[str], registry, verbose: bool) -> None:
    import dataclasses

    click.echo(title)
    for name in names:
        method = registry.get(name)
        doc = inspect.getdoc(method)
        click.echo(f"  {name:<14} {doc.splitlines()[0] if doc else ''}")
        if verbose:
            for item in dataclasses.fields(method.Hyperparameters):
                default = item.default if item.default is not dataclasses.MISSING else item.default_factory()
                click.echo(f"      {item.name.replace('_', '-')} = {default!r}")
