"""Error type of the runtime sessions."""

from __future__ import annotations


class SessionError(RuntimeError):
    """A session could not be created or run (unknown kind, bad artifact, device, or feeds)."""
