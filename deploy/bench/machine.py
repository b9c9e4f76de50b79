"""Describe the machine a benchmark ran on, so numbers are never read without their context."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any


def cpu_model(*, cpuinfo_path: Path = Path("/proc/cpuinfo")) -> str:
    """CPU model name from ``/proc/cpuinfo``, falling back to ``platform.processor()``.

    Args:
        cpuinfo_path: file to read (a parameter so tests can pass a fixture).

    Returns:
        The model name, e.g. ``"Intel(R) Xeon(R) ..."``; ``"unknown"`` when nothing says.
    """
    keys = ("model name", "Hardware", "Processor", "cpu model", "uarch")
    try:
        lines = cpuinfo_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for key in keys:
        for line in lines:
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def machine_info(
    *, torch_threads: int | None = None, onnxruntime_threads: int | None = None
) -> dict[str, Any]:
    """Facts about this machine for a report's ``run.machine``.

    Args:
        torch_threads: intra-op threads torch was measured with (as passed to the runtime).
        onnxruntime_threads: intra-op threads onnxruntime was measured with.

    Returns:
        ``{"cpu_model", "logical_cores", "arch", "os", "python", "torch_threads",
        "onnxruntime_threads"}`` (thread counts may be ``None`` when not measured).
    """
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count() or 0,
        "arch": platform.machine() or "unknown",
        "os": f"{platform.system()} {platform.release()}".strip(),
        "python": sys.version.split()[0],
        "torch_threads": torch_threads,
        "onnxruntime_threads": onnxruntime_threads,
    }
