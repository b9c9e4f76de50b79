"""A mistyped option or value is one ``error:`` line with exit code 2, not click's usage block."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("argv,fragment", [
    (["run", "--no-such-option"], "No such option '--no-such-option'"),
    (["bench-device", "runs/x", "--runs", "1e20"], "'1e20' is not a valid integer"),
    (["verify"], "Missing argument"),
])
def test_cli_usage_error_is_one_line(argv, fragment):
    code = f"from pipeline.cli import main; main({argv!r})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert "--help" in lines[0]
