"""The ``compress`` command line: ``compress run``, one command per stage, and inspection commands.

Commands are built lazily, when used: ``compress --help`` reads the stage list (for the stage
commands and their summaries) but imports neither torch, TVM, onnx nor onnxruntime (the stage
modules load those in their ``run``).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import warnings
from typing import Any

import click

from pipeline.errors import RunInterrupted, UserError
from pipeline.plugins import load_plugin
from pipeline.stages import STAGE_CLASSES, list_stages

COMMANDS = {  # the commands besides one per stage: module, summary
    "run": ("pipeline.cli.run", "run the whole recipe: {stages}"),
    "report": ("pipeline.cli.report", "latency / size / accuracy report of a run (or --compare two runs)"),
    "verify": ("pipeline.cli.verify", "recheck every artifact's sha256 and the numerical parity of a run"),
    "bench-device": ("pipeline.cli.bench_device", "time a run's device bundle on a device over adb / ssh and add it to the report"),
    "targets": ("pipeline.cli.listing", "list the compile targets"),
    "methods": ("pipeline.cli.listing", "list training, pruning and quantization methods"),
}
STAGE_COMMAND = "pipeline.cli.stage_command"  # ``compress <stage>`` for every stage not named above


def _stage_summaries() -> dict[str, str]:
    """Name -> summary of the stages that are commands, in run order (from the stage list itself)."""
    return {stage.name: stage.summary for stage in STAGE_CLASSES if stage.name not in COMMANDS}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, _ in self._summaries()]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module = importlib.import_module(COMMANDS[name][0])
        elif name in _stage_summaries():
            module = importlib.import_module(STAGE_COMMAND)
        else:
            return None
        return module.make_command(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl(self._summaries())

    @staticmethod
    def _summaries() -> list[tuple[str, str]]:
        """``run``, then the stages in run order, then the inspection commands."""
        (run, (_, run_summary)), *rest = COMMANDS.items()
        return [(run, run_summary.format(stages=", ".join(list_stages()))), *_stage_summaries().items(),
                *((name, summary) for name, (_, summary) in rest)]


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="compress")
@click.option("-q", "--quiet", is_flag=True, help="no progress bars or stage logs (warnings still print)")
@click.option("--plugin", "plugins", multiple=True, metavar="FILE.py|MODULE",
              help="import your own code first, e.g. a training method (docs/adding-a-method.md); repeatable")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, plugins: tuple[str, ...]) -> None:
    """compress: turn a trained PyTorch model into a small, fast artifact for arm64 CPUs and mobile GPUs."""
    ctx.obj = {"quiet": quiet}
    if plugins:
        for plugin in plugins:
            load_plugin(plugin)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one clear line and a non-zero exit for every failure, never a traceback."""
    signal.signal(signal.SIGTERM, _terminate_like_ctrl_c)
    warnings.showwarning = _one_line_warnings()
    try:
        cli.main(args=argv, prog_name="compress", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("interrupted", 130)
    except click.UsageError as error:  # click's own text is a usage block; ours is one line
        hint = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
        _fail(f"error: {_first_line(error.format_message())}{hint}", error.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except RunInterrupted as error:
        _fail(f"error: {error}", error.exit_code, immediately=True)
    except UserError as error:
        _fail(f"error: {error}", error.exit_code)
    except click.exceptions.Exit as error:
        sys.exit(error.exit_code)
    except OSError as error:  # disk full, read-only or vanished files outside any stage
        where = f" ({error.filename})" if error.filename else ""
        _fail(f"error: I/O error: {error.strerror or error}{where}", 1)
    except Exception as error:  # last resort: one line, the manifest holds the details
        if os.environ.get("COMPRESS_DEBUG"):
            raise
        _fail(f"internal error: {type(error).__name__}: {_first_line(error)} (set COMPRESS_DEBUG=1 for a traceback)", 1)
    sys.exit(0)


def _terminate_like_ctrl_c(signum, frame) -> None:  # noqa: ANN001 (signal handler signature)
    """SIGTERM (a CI timeout, ``kill``) ends the run as Ctrl-C does: manifest saved, one line on how to resume."""
    raise KeyboardInterrupt


def _one_line_warnings():
    """``warnings.showwarning`` for the CLI: a library's warning (TVM's backend autoload, a deprecated
    hyperparameter name) as one ``warning:`` line, no source excerpt, each text once per command (a
    recipe's settings are checked before the run and again by the stage that uses them)."""
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001, ARG001
        text = _first_line(message)
        if text not in shown:
            shown.add(text)
            click.echo(f"warning: {text}", err=True)

    return show


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else ""


def _fail(message: str, code: int, *, immediately: bool = False) -> None:
    click.echo(message.replace("\n", " "), err=True)
    if immediately:
        # After Ctrl-C the manifest is already saved; exiting at once keeps the exit code 130 even if
        # the interpreter's shutdown would report the interrupt as a signal death.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def log_function(ctx_obj: dict[str, Any] | None):
    """Stage log lines to stderr; with ``--quiet`` only the warnings."""
    quiet = bool(ctx_obj and ctx_obj.get("quiet"))

    def log(message: str) -> None:
        if not quiet or "warning:" in message:
            click.echo(message, err=True)

    return log
