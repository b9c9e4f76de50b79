"""The dependency rule (compress <- pipeline -> deploy; deploy uses compress.types only) and lazy imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _imports(package: str) -> list[tuple[Path, str]]:
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found += [(path, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path, node.module))
    return found


def test_compress_imports_nothing_of_ours_but_itself():
    bad = [(p, m) for p, m in _imports("compress") if m.split(".")[0] in ("pipeline", "deploy")]
    assert not bad, bad


def test_deploy_never_imports_pipeline_and_uses_only_compress_types():
    bad = [(p, m) for p, m in _imports("deploy") if m.split(".")[0] == "pipeline" or (m.startswith("compress") and m != "compress.types")]
    assert not bad, bad


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"]])
def test_cli_help_does_not_import_tvm_or_onnxruntime(argv):
    code = (
        "import sys; from pipeline.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('tvm', 'onnxruntime', 'onnx') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120).stdout
    assert "HEAVY []" in out, out
