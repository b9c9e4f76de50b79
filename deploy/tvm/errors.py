"""Error types of the TVM deploy back-end.

Every failure the compile stage can hit (unknown target, missing cross compiler, a TVM build that
lacks a code generator, a bundle that does not match the host build) is raised as one of these, with
one line that names the offending value and what is allowed.
"""

from __future__ import annotations


class CompileError(RuntimeError):
    """The model could not be imported, rewritten, built or exported for the requested target."""


class TargetError(CompileError):
    """The requested target preset is unknown or cannot be built on this machine."""


class BundleError(CompileError):
    """The arm64 device bundle could not be assembled or does not reproduce the host build."""
