"""The dependency rule (compress <- pipeline -> deploy; deploy uses compress.types only) and lazy imports."""

from __future__ import annotations

import ast
import functools
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


def test_cli_help_does_not_import_torch():
    """``compress --help`` reads every stage class's name and summary: the stage modules defer torch to ``run``."""
    code = (
        "import sys; from pipeline.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120).stdout
    assert "TORCH False" in out and "train-sparse" in out, out


PACKAGES = ("compress", "pipeline", "deploy")
HEAVY = ("torch", "onnx", "onnxruntime", "tvm")  # the only libraries a function may import for itself


def _module_name(path: Path, root: Path = REPO) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(packages: tuple[str, ...], root: Path = REPO) -> dict[str, Path]:
    return {_module_name(path, root): path for package in packages for path in (root / package).rglob("*.py")}


@functools.cache
def _syntax(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imported_names(path: Path, modules: dict[str, Path]) -> list[tuple[str, bool]]:
    """(imported module, inside a function?) for every import statement of ``path``; ``from a import b``
    names ``a.b`` when that is a module of ours, else ``a``."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.extend((f"{child.module}.{alias.name}" if f"{child.module}.{alias.name}" in modules else child.module, in_function)
                             for alias in child.names)
            visit(child, inside)

    visit(_syntax(path), False)
    return found


def _import_graph(*packages: str) -> dict[str, set[str]]:
    """Module -> the modules of ``packages`` it imports by name (at any depth of the file, lazy imports
    included; the implicit import of a parent package is not an edge)."""
    modules = _modules(packages)
    return {name: {target for target, _ in _imported_names(path, modules) if target in modules and target != name}
            for name, path in modules.items()}


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


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_inside_a_package(package):
    """No module imports, even lazily, a module that imports it back."""
    assert _cycles(_import_graph(package)) == []


def test_no_import_cycle_across_the_packages():
    assert _cycles(_import_graph(*PACKAGES)) == []


def test_the_import_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def _heavy_libraries_loaded_by(name: str, modules: dict[str, Path], cache: dict[str, frozenset[str]]) -> frozenset[str]:
    """The heavy libraries that ``import name`` loads: its module-level imports, followed through
    our own modules (parent packages included)."""
    if name in cache:
        return cache[name]
    loaded, seen, todo = set(), set(), [name]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:end]) for end in range(1, len(parts)) if ".".join(parts[:end]) in modules]
        for target, in_function in _imported_names(modules[module], modules):
            if in_function:
                continue
            if target.split(".")[0] in HEAVY:
                loaded.add(target.split(".")[0])
            elif target in modules:
                todo.append(target)
    cache[name] = frozenset(loaded)
    return cache[name]


def _needless_lazy_imports(packages: tuple[str, ...], *, house: tuple[str, ...] = PACKAGES, root: Path = REPO) -> list[str]:
    """Imports of our own modules inside functions that defer no heavy library: the imported module
    loads none of torch / onnx / onnxruntime / TVM that the importing module does not load already."""
    modules, cache = _modules(house, root), {}
    bad = []
    for name in sorted(_modules(packages, root)):
        for target, in_function in _imported_names(modules[name], modules):
            if in_function and target in modules and not (_heavy_libraries_loaded_by(target, modules, cache) - _heavy_libraries_loaded_by(name, modules, cache)):
                bad.append(f"{modules[name].relative_to(root)}: {target}")
    return bad


@pytest.mark.parametrize("package", PACKAGES)
def test_functions_import_our_modules_only_to_defer_a_heavy_library(package):
    """Function-level imports are for torch, onnx, onnxruntime and TVM only (directly or through a
    module of ours that loads one of them), never a way around an import circle."""
    assert _needless_lazy_imports((package,)) == []


def test_the_lazy_import_check_finds_a_needless_one(tmp_path):
    package = tmp_path / "house"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "light.py").write_text("import json\n")
    (package / "heavy.py").write_text("import torch\n")
    (package / "user.py").write_text("def f():\n    import house.light\n    import house.heavy\n")
    assert _needless_lazy_imports(("house",), house=("house",), root=tmp_path) == ["house/user.py: house.light"]


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


def _string_constants(path: Path) -> set[str]:
    """The string literals of a file (docstrings included; they are whole sentences, never a bare name)."""
    return {node.value for node in ast.walk(_syntax(path)) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_no_stage_or_command_names_a_target():
    """What a target does (bundled or not, built as the reference, the default) is data of its preset
    in ``deploy.tvm.targets``; the pipeline never spells a preset's name."""
    from deploy.tvm.targets import list_targets

    names = set(list_targets())
    bad = [f"{path.relative_to(REPO)}: {value!r}" for path in sorted((REPO / "pipeline").rglob("*.py"))
           for value in sorted(_string_constants(path) & names)]
    assert bad == []
