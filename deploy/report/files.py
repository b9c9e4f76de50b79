"""Atomic file writes and loading a report from disk (validated)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from deploy.report.schema import validate_report
from deploy.report.upgrade import upgrade_report


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    Args:
        path: destination; its folder is created when missing.
        data: content.

    Returns:
        ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write UTF-8 ``text`` atomically (see ``atomic_write_bytes``)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def report_json(report: dict[str, Any]) -> str:
    """Canonical JSON text of a report: indented, key order kept, no NaN."""
    return json.dumps(report, indent=2, allow_nan=False) + "\n"


def load_report(path: Path | str) -> dict[str, Any]:
    """Read a ``report.json`` (or the folder holding one), upgrade an older schema and validate it.

    Args:
        path: the JSON file, or a report folder containing ``report.json``.

    Returns:
        The report dict, in the current schema.

    Raises:
        FileNotFoundError: when there is no such file.
        ValueError: when the file is not JSON.
        ReportSchemaError: when it follows neither the current schema nor an older one read here.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    if not path.is_file():
        raise FileNotFoundError(f"no report at {path}")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    report = upgrade_report(report)
    validate_report(report)
    return report
