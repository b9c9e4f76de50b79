"""Paths inside a run directory: confined to the run, no symbolic link on the way, the right kind.

Every read and write of a run's files goes through :func:`run_path` (or :func:`check_tree` for a
folder a stage is about to write into), so a link planted in a run (``05-compile`` pointing at a
user's folder, ``report.json`` pointing at ``/etc/passwd``) is refused instead of followed.
``os.lstat`` on each component is the check; ``Path.resolve`` would follow the links it should refuse.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pipeline.errors import UserError

KINDS = ("file", "dir")


def run_path(run_dir: Path, relative: str | Path, *, kind: str = "file", must_exist: bool = True) -> Path:
    """``run_dir / relative``, checked: inside the run (no ``..``, no absolute path elsewhere), no
    component a symbolic link, and a regular file (``kind="file"``) or a real directory (``"dir"``).

    Raises:
        UserError: one line naming the offending path.
    """
    root = Path(os.path.abspath(run_dir))
    path = Path(os.path.abspath(root / relative))
    if not path.is_relative_to(root) or path == root and kind == "file":
        raise UserError(f"{relative!s} points outside the run directory {root}")
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            if must_exist:
                raise UserError(f"{current} is missing from the run directory") from None
            return path
        except OSError as error:
            raise UserError(f"{current} is unreadable: {error.strerror or error}") from None
        if stat.S_ISLNK(mode):
            raise UserError(f"{current} is a symbolic link; a run directory holds only its own files and folders")
        last = current == path
        if not last and not stat.S_ISDIR(mode):
            raise UserError(f"{current} is not a directory")
        if last and kind == "file" and not stat.S_ISREG(mode):
            raise UserError(f"{current} is not a regular file")
        if last and kind == "dir" and not stat.S_ISDIR(mode):
            raise UserError(f"{current} is not a directory")
    return path


def check_tree(run_dir: Path, relative: str | Path) -> Path:
    """The folder ``run_dir / relative`` (created if missing) after checking it and everything under
    it: real directories and regular files only, so writing there cannot leave the run."""
    folder = run_path(run_dir, relative, kind="dir", must_exist=False)
    for parent, folders, files in os.walk(folder, followlinks=False):
        for name in folders + files:
            mode = os.lstat(Path(parent) / name).st_mode
            if stat.S_ISLNK(mode):
                raise UserError(f"{Path(parent) / name} is a symbolic link; a run directory holds only its own files and folders")
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise UserError(f"{Path(parent) / name} is not a regular file or directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {folder}: {error.strerror or error}") from None
    return run_path(run_dir, relative, kind="dir")
