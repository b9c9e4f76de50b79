"""Read a ``torch.export`` ``.pt2`` archive without running code from it.

``torch.export.load`` (torch 2.13: ``torch/export/pt2_archive/_package.py``,
``torch/_export/serde/serialize.py``) runs code that an archive carries in several ways:

* weights and constants marked ``use_pickle``, legacy ``data/weights/<model>.pt`` files and, when
  weights-only loading fails, the sample inputs go through ``torch.load(weights_only=False)``;
* custom and opaque objects among the constants are unpickled;
* symbolic shape expressions are parsed with ``sympy.sympify``, which evaluates Python;
* a node's target may be any attribute path under ``torch`` (``torch.os.system``), and the
  archive's guard strings are compiled into the module's ``forward``.

So this reader decides from the archive's own records what it holds, refuses every entry that
needs an unpickle (unless ``--trust-pickle``), an expression that is not arithmetic, and a target
that is not an ATen operator, then builds the program with torch's own deserializer from the raw
tensor payloads (never the sample inputs, never the guards). Written here because torch has no
safe mode for ``.pt2`` files.
"""

from __future__ import annotations

import ast
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any, Iterator

from pipeline.errors import PickleRefused, UserError

MODEL_NAME = "model"
SAFE_OPERATORS = frozenset({
    "_operator.getitem", "_operator.add", "_operator.sub", "_operator.mul", "_operator.truediv",
    "_operator.floordiv", "_operator.mod", "_operator.neg", "_operator.pow", "_operator.eq",
    "_operator.ne", "_operator.lt", "_operator.le", "_operator.gt", "_operator.ge",
    "torch.sym_float", "torch.sym_int", "torch.sym_max", "torch.sym_min", "torch.sym_not",
})
EXPRESSION_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Call, ast.Name,
                    ast.Constant, ast.keyword, ast.Load, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)
EXPRESSION_FUNCTIONS = frozenset({
    "Max", "Min", "Mod", "Abs", "floor", "ceiling", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not",
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
    "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv", "TruncToFloat",
    "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity", "IsNonOverlappingAndDenseIndicator",
    "Symbol", "Integer", "Float", "Rational",
})
SYMBOL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def is_program_archive(path: Path) -> bool:
    """True when ``path`` is a zip whose ``archive_format`` record says ``pt2`` (whatever its suffix)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/archive_format") and archive.read(name).strip() == b"pt2" for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        return False


def load_program(path: Path, *, trust_pickle: bool) -> Any:
    """The ``torch.export.ExportedProgram`` of ``path``; code in the archive is refused (see the module docstring)."""
    import torch

    data = Path(path).read_bytes()  # read once: what is checked is what is built
    if trust_pickle:
        return torch.export.load(io.BytesIO(data))
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer, _bytes_to_dataclass
    from torch.export.pt2_archive._package import PT2ArchiveReader, _load_constants, _load_state_dict

    try:
        reader = PT2ArchiveReader(io.BytesIO(data))
        names = set(reader.get_file_names())
    except (RuntimeError, AssertionError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not a readable torch.export archive ({_first_line(error)})") from None
    program_bytes = _check_records(reader, names, path=path)
    serialized = _bytes_to_dataclass(schema.ExportedProgram, program_bytes)
    serialized.guards_code = []  # compiled into forward by torch; our modules never use input guards
    state_dict = _load_state_dict(reader, MODEL_NAME)
    constants = _load_constants(reader, MODEL_NAME)
    return ExportedProgramDeserializer().deserialize(serialized, state_dict, constants, None)


def _check_records(reader: Any, names: set[str], *, path: Path) -> bytes:
    """The program's JSON after every record that would run code was refused."""
    from torch.export.pt2_archive import constants as pt2

    if reader.read_string(pt2.ARCHIVE_VERSION_PATH) != pt2.ARCHIVE_VERSION_VALUE:
        raise UserError(f"{path}: torch.export archive version {reader.read_string(pt2.ARCHIVE_VERSION_PATH)!r} is not "
                        f"the one torch {__import__('torch').__version__} reads ({pt2.ARCHIVE_VERSION_VALUE})")
    program_file = pt2.MODELS_FILENAME_FORMAT.format(MODEL_NAME)
    if program_file not in names:
        raise UserError(f"{path}: the torch.export archive holds no program named {MODEL_NAME!r}")
    legacy = [name for name in (f"{pt2.WEIGHTS_DIR}{MODEL_NAME}.pt", f"{pt2.CONSTANTS_DIR}{MODEL_NAME}.pt") if name in names]
    if legacy:
        _refuse_pickle(path, f"legacy pickled record {legacy[0]}")
    for config_file, directory in ((pt2.WEIGHTS_CONFIG_FILENAME_FORMAT, "weights"), (pt2.CONSTANTS_CONFIG_FILENAME_FORMAT, "constants")):
        name = config_file.format(MODEL_NAME)
        if name not in names:
            raise UserError(f"{path}: the torch.export archive has no {name}")
        for fqn, meta in _json(reader, name, path=path).get("config", {}).items():
            if not isinstance(meta, dict) or meta.get("use_pickle") or (
                    directory == "constants" and not str(meta.get("path_name", "")).startswith(pt2.TENSOR_CONSTANT_FILENAME_PREFIX)):
                _refuse_pickle(path, f"pickled {directory} entry {fqn!r}")
    program_bytes = reader.read_bytes(program_file)
    document = _json(reader, program_file, path=path, data=program_bytes)
    for target in _values_of(document, "target"):
        if not _safe_target(target):
            raise UserError(f"{path}: the program calls {str(target)[:80]!r}, not an ATen operator; refused (it could run any code)")
    for expression in _values_of(document, "expr_str"):
        if not _arithmetic(expression):
            raise UserError(f"{path}: the program holds a shape expression {str(expression)[:80]!r} that is not arithmetic; refused")
    return program_bytes


def _refuse_pickle(path: Path, what: str) -> None:
    raise PickleRefused(f"{path}: the torch.export archive holds a {what}, which loading would unpickle (run code); "
                        "pass --trust-pickle only if you trust the file")


def _json(reader: Any, name: str, *, path: Path, data: bytes | None = None) -> dict[str, Any]:
    try:
        value = json.loads(reader.read_bytes(name) if data is None else data)
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: {name} is not valid JSON ({_first_line(error)})") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: {name} is not a JSON object")
    return value


def _values_of(document: Any, key: str) -> Iterator[Any]:
    """Every value stored under ``key`` anywhere in a JSON document (iteratively: no recursion limit)."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if key in value:
                yield value[key]
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _safe_target(target: Any) -> bool:
    return isinstance(target, str) and (target in SAFE_OPERATORS or (
        target.startswith("torch.ops.aten.") and target.count(".") == 4 and "__" not in target))


def _arithmetic(expression: Any) -> bool:
    """True for integer / float / boolean arithmetic on symbols and the shape functions sympy knows."""
    if not isinstance(expression, str) or len(expression) > 10_000:
        return False
    try:
        tree = ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return False
    for node in ast.walk(tree):
        if not isinstance(node, EXPRESSION_NODES):
            return False
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            return False
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, bool)) and not (
                isinstance(node.value, str) and SYMBOL_NAME.fullmatch(node.value)):  # Symbol('s0', positive=True)
            return False
        if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name) or node.func.id not in EXPRESSION_FUNCTIONS
                                           or not all(isinstance(k.value, ast.Constant) and isinstance(k.value.value, bool) for k in node.keywords)):
            return False
    return True


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:160] if text else type(error).__name__
