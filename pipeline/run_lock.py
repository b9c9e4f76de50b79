"""Guarding a run directory: refuse what is not ours, and one process at a time (a lock file).

Checked before anything is written, so a refused command leaves the directory exactly as it was.
"""

from __future__ import annotations

import errno
import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pipeline.errors import UserError
from pipeline.manifest import MANIFEST_NAME

LOCK_NAME = ".compress.lock"


def check_run_dir(run_dir: Path, *, resume: bool) -> None:
    """Refuse a finished run without ``--resume`` and any non-empty directory that is not a run."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {run_dir} is a file, not a directory")
    is_run = (run_dir / MANIFEST_NAME).is_file()
    if is_run and not resume:
        raise UserError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --out")
    if not is_run and run_dir.is_dir() and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
        raise UserError(f"--out {run_dir} is a non-empty directory that is not a compress run; choose an empty or new directory")


@contextmanager
def run_lock(run_dir: Path, *, create: bool = True) -> Iterator[None]:
    """Hold ``run_dir/.compress.lock`` (an advisory ``flock``) for the whole run or command; every
    command that writes into a run takes it. ``create=False``: the run directory must exist already.
    The lock file is opened without following a link (``O_NOFOLLOW``)."""
    run_dir = Path(run_dir)
    try:
        if create:
            run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UserError(f"{run_dir / LOCK_NAME} is a symbolic link; a run directory holds only its own files") from None
        raise UserError(f"output directory {run_dir} is not writable: {error.strerror or error}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another compress process is working in {run_dir}; wait for it to finish") from None
        yield
    finally:
        os.close(fd)
