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


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports by name (at any depth of the file, lazy imports
    included; the implicit import of a parent package is not an edge)."""
    modules = {_module_name(path): path for path in (REPO / package).rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module for alias in node.names]
            graph[name] |= {target for target in targets if target in modules and target != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                found.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_import_cycle_inside_compress():
    """No module of ``compress`` imports, even lazily, a module that imports it back."""
    assert _cycles(_import_graph("compress")) == []


def test_the_import_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_the_algorithm_wing_has_one_base_per_package_and_no_catalogs():
    assert not (REPO / "compress" / "optim" / "catalog.py").exists()
    assert not (REPO / "compress" / "quant" / "catalog.py").exists()
    assert not (REPO / "compress" / "hyperparameters.py").exists()
    from compress.optim import METHODS, TrainingMethod
    from compress.quant import QUANT_METHODS, QuantMethod

    for name in METHODS.names():
        assert METHODS.get(name).__bases__ == (TrainingMethod,), name
    for name in QUANT_METHODS.names():
        assert QUANT_METHODS.get(name).__bases__ == (QuantMethod,), name
