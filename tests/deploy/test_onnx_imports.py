"""deploy/onnx imports nothing of ours but compress.types, and onnxruntime only inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import deploy.onnx

ONNX_DIR = Path(deploy.onnx.__file__).parent


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at module level) for every import in a file."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, id(node) in top_level))
    return found


def test_onnx_imports_only_compress_types_from_compress():
    files = sorted(ONNX_DIR.rglob("*.py"))
    assert len(files) > 10
    bad = [(f.name, m) for f in files for m, _ in _imports(f)
           if (m.startswith("compress") and m != "compress.types") or m.startswith("pipeline")]
    assert bad == []


def test_onnx_imports_onnxruntime_lazily():
    eager = [f.name for f in ONNX_DIR.rglob("*.py") for m, top in _imports(f) if m.startswith("onnxruntime") and top]
    assert eager == []
