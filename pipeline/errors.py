"""Errors the CLI turns into one clear line and a distinct exit code."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (file, option, recipe, data). Exit code 2."""

    exit_code = 2


class StageError(UserError):
    """A stage failed on valid-looking input (e.g. a parity check). Exit code 1."""

    exit_code = 1


class AccuracyBudgetError(UserError):
    """The compressed model lost more accuracy than ``--max-accuracy-drop`` allows. Exit code 3."""

    exit_code = 3


class RunInterrupted(UserError):
    """Ctrl-C during a run; the message says how to resume. Exit code 130."""

    exit_code = 130


class PickleRefused(UserError):
    """Weights-only loading refused Python objects in a checkpoint (loadable with ``--trust-pickle``)."""
