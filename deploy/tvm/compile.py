"""Compile an ONNX model with TVM for a target preset: import, sparse rewrite, build, export.

Pipeline: densify sparse ONNX constants -> ``from_onnx`` -> ``FoldConstant`` -> our rewrite of
sparse / ternary ``matmul`` and ``conv2d`` weights (CPU presets) -> optional MetaSchedule tuning
(``tune_trials > 0``, records kept in ``tuning_db``) -> ``tvm.compile`` -> ``export_library``
with the preset's cross compiler. Writes ``model.so`` and ``compile_report.json`` in ``out_dir``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from deploy.tvm.breakeven import BreakevenTable, load_breakeven_table
from deploy.tvm.errors import CompileError
from deploy.tvm.onnx_input import graph_input_name, load_onnx_for_tvm
from deploy.tvm.onnx_input import layout_hints as read_layout_hints
from deploy.tvm.rewrite import LayerReport, RewriteOptions, rewrite_sparse_layers
from deploy.tvm.targets import TargetPreset, build_tvm_target, get_target, resolve_cross_compiler

LIBRARY_NAME = "model.so"
REPORT_NAME = "compile_report.json"
DEVICE_MODULE_KINDS = ("opencl", "vulkan", "cuda", "metal")


@dataclass(frozen=True)
class CompileResult:
    """Outcome of :func:`compile_onnx`.

    Attributes:
        target: preset name.
        library_path: exported library (``model.so``).
        report_path: ``compile_report.json`` next to it.
        input_name: ONNX graph input name (the VM's ``main`` takes it positionally).
        input_shape: static input shape compiled for.
        layers: one record per constant matmul / conv2d weight.
        tuned: whether MetaSchedule tuning records were applied.
        compile_seconds: wall time of import + build + export.
        device_sources: kind -> file holding the embedded device code (OpenCL C for GPU presets),
            read from the executable's imported modules; empty for CPU presets.
    """

    target: str
    library_path: Path
    report_path: Path
    input_name: str
    input_shape: tuple[int, ...]
    layers: tuple[LayerReport, ...]
    tuned: bool
    compile_seconds: float
    device_sources: dict[str, Path]

    def to_dict(self) -> dict:
        return {"target": self.target, "library": self.library_path.name, "input_name": self.input_name,
                "input_shape": list(self.input_shape), "tuned": self.tuned,
                "compile_seconds": round(self.compile_seconds, 3),
                "device_sources": {kind: path.name for kind, path in self.device_sources.items()},
                "layers": [layer.to_dict() for layer in self.layers]}


def compile_onnx(onnx_path, *, target: str, out_dir, input_shape, sparse_threshold: float | None = None,
                 layout_hints: list[dict] | None = None, tune_trials: int = 0, tuning_db=None,
                 breakeven_table: BreakevenTable | None = None) -> CompileResult:
    """Compile ``onnx_path`` for preset ``target`` into ``out_dir``.

    Args:
        onnx_path: ONNX model (dense or with sparse initializers; any opset ``from_onnx`` reads).
        target: preset name, see :func:`deploy.tvm.targets.list_targets`.
        out_dir: output directory (created).
        input_shape: static shape of the single graph input, batch included.
        sparse_threshold: fixed sparsity from which sparse kernels are used; ``None`` uses the
            break-even table.
        layout_hints: ``compress.layouts`` records; ``None`` reads them from the ONNX metadata.
        tune_trials: MetaSchedule trials for dense operators (0: no tuning).
        tuning_db: MetaSchedule work directory; reused across runs (records are re-applied).
        breakeven_table: table to decide sparse vs dense; ``None`` loads the shipped host table.

    Raises:
        CompileError: import, build or export failed (``TargetError`` for target problems).
    """
    start = time.perf_counter()
    preset = get_target(target)
    tvm_target = build_tvm_target(preset)
    cross_compiler = resolve_cross_compiler(preset)
    if tune_trials > 0 and not preset.runs_on_build_machine:
        raise CompileError(f"MetaSchedule tuning measures on this machine: tune with target 'host' and pass its "
                           f"tuning_db to target {preset.name!r} with tune_trials=0")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mod, input_name, hints = _import(onnx_path, tuple(int(v) for v in input_shape), layout_hints)
    mod, layers = _rewrite_for(preset, mod, breakeven_table, sparse_threshold, hints)
    tuned = tune_trials > 0 or tuning_db is not None
    if tuned:
        mod = _tune(mod, tvm_target, tune_trials, tuning_db or out_dir / "tuning_db")
    library, sources = _build_and_export(mod, tvm_target, out_dir / LIBRARY_NAME, cross_compiler)
    result = CompileResult(preset.name, library, out_dir / REPORT_NAME, input_name,
                           tuple(int(v) for v in input_shape), tuple(layers), tuned,
                           time.perf_counter() - start, _write_sources(sources, out_dir))
    result.report_path.write_text(json.dumps({**result.to_dict(), "preset": preset.to_dict()}, indent=1))
    return result


def _import(onnx_path, input_shape: tuple[int, ...], hints: list[dict] | None):
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    model = load_onnx_for_tvm(onnx_path)
    input_name = graph_input_name(model)
    try:
        mod = from_onnx(model, shape_dict={input_name: list(input_shape)})
    except Exception as error:  # noqa: BLE001 - the importer raises many unrelated types
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise CompileError(f"TVM could not import {onnx_path}: {type(error).__name__}: {first_line}") from error
    mod = relax.transform.FoldConstant()(mod)
    return mod, input_name, tuple(hints) if hints is not None else read_layout_hints(model)


def _rewrite_for(preset: TargetPreset, mod, table: BreakevenTable | None, sparse_threshold: float | None,
                 hints: tuple[dict, ...]):
    if preset.schedule != "cpu-kernels":
        reason = f"schedule {preset.schedule}: sparse / ternary kernels are CPU-only"
        return rewrite_sparse_layers(mod, options=RewriteOptions(None, None, hints, disabled_reason=reason))
    if table is None and sparse_threshold is None:
        table = load_breakeven_table()
    return rewrite_sparse_layers(mod, options=RewriteOptions(table, sparse_threshold, hints))


def _tune(mod, tvm_target, trials: int, work_dir):
    """Tune (or, with ``trials == 0``, only re-apply) MetaSchedule records kept in ``work_dir``.

    Our kernels carry ``tirx.is_scheduled`` and are not tuned. MetaSchedule needs ``num-cores``
    on a CPU target; the build machine's physical core count is used when the preset has none.
    """
    from tvm import relax

    Path(work_dir).mkdir(parents=True, exist_ok=True)
    tvm_target = _with_num_cores(tvm_target)
    pipeline = relax.get_pipeline("static_shape_tuning", target=tvm_target, total_trials=trials,
                                  max_trials_per_task=max(trials, 1), work_dir=str(work_dir))
    return pipeline(mod)


def _with_num_cores(tvm_target):
    import os

    import psutil
    import tvm

    spec = json.loads(str(tvm_target))
    if tvm_target.kind.name != "llvm" or "num-cores" in spec:
        return tvm_target
    spec["num-cores"] = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    return tvm.target.Target(spec)


def _build_and_export(mod, tvm_target, path: Path, cross_compiler: str | None) -> tuple[Path, dict[str, str]]:
    import tvm

    try:
        executable = tvm.compile(mod, target=tvm_target)
    except Exception as error:  # noqa: BLE001 - TVM raises its own error types from C++
        raise CompileError(f"TVM build failed for {tvm_target.kind.name}: {str(error).splitlines()[0]}") from error
    try:
        if cross_compiler is None:
            executable.export_library(str(path))
        else:
            executable.export_library(str(path), cc=cross_compiler)
    except Exception as error:  # noqa: BLE001
        raise CompileError(f"export_library to {path} failed: {str(error).splitlines()[0]}") from error
    return path, device_sources(executable)


def device_sources(executable) -> dict[str, str]:
    """Source text of the device modules (``opencl``, ``vulkan``, ``cuda``) imported by an executable."""
    found: dict[str, str] = {}
    pending = list(executable.mod.imports)
    while pending:
        module = pending.pop()
        pending.extend(module.imports)
        if module.kind in DEVICE_MODULE_KINDS:
            found[module.kind] = found.get(module.kind, "") + module.inspect_source()
    return found


def _write_sources(sources: dict[str, str], out_dir: Path) -> dict[str, Path]:
    written = {}
    for kind, text in sources.items():
        written[kind] = out_dir / f"device_{kind}.txt"
        written[kind].write_text(text)
    return written
