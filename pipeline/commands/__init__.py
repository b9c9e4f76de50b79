"""Implementations of the ``compress`` sub-commands (imported lazily by ``pipeline.cli``)."""
