"""``compress --plugin FILE.py|MODULE``: import the user's own code, e.g. a training method that
registers itself with ``compress.optim.register_method`` (see ``docs/adding-a-method.md``).

Code runs only because the command line names it, never because a recipe, checkpoint or run
directory does; a plugin that fails to import is one clear line, not a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from pipeline.errors import UserError


def load_plugin(spec: str) -> None:
    """Import ``spec``: a ``.py`` file (by path) or a module name on ``sys.path``."""
    try:
        if spec.endswith(".py"):
            _load_file(Path(spec))
        else:
            importlib.import_module(spec)
    except UserError:
        raise
    except Exception as error:  # the user's code: any failure is reported in one line
        raise UserError(f"plugin {spec} failed to load: {type(error).__name__}: {error}") from None


def _load_file(path: Path) -> None:
    if not path.is_file():
        raise UserError(f"plugin file {path} does not exist")
    name = f"compress_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
