"""Compile an ONNX model with TVM for a target preset: import, fused kernels, schedules, build, export.

Pipeline (CPU presets): densify sparse ONNX constants -> ``from_onnx`` -> ``FoldConstant`` -> every
``conv2d`` / ``matmul`` with a constant weight becomes one of our fused kernels (zero weight blocks
skipped, bias / residual / activation in the epilogue; :mod:`deploy.tvm.fusion`) -> every other
operator gets a schedule (:mod:`deploy.tvm.schedule_rest`) -> optional MetaSchedule tuning of what
is left (``tune_trials > 0``) -> ``tvm.compile`` -> ``export_library`` with the preset's cross
compiler. GPU presets use TVM's dlight pipeline. Writes ``model.so`` and ``compile_report.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from deploy.tvm.errors import CompileError
from deploy.tvm.fusion import fuse_layers, list_weight_layers
from deploy.tvm.layer_report import LayerReport
from deploy.tvm.onnx_input import graph_input_name, load_onnx_for_tvm
from deploy.tvm.schedule_rest import schedule_rest, unscheduled_functions
from deploy.tvm.tune import tune_unscheduled
from deploy.tvm.targets import TargetPreset, build_tvm_target, get_target, preset_vector_floats, resolve_cross_compiler

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


def compile_onnx(onnx_path, *, target: str, out_dir, input_shape, tune_trials: int = 0, tuning_db=None) -> CompileResult:
    """Compile ``onnx_path`` for preset ``target`` into ``out_dir``.

    Args:
        onnx_path: ONNX model (dense or with sparse initializers; any opset ``from_onnx`` reads).
        target: preset name, see :func:`deploy.tvm.targets.list_targets`.
        out_dir: output directory (created).
        input_shape: static shape of the single graph input, batch included.
        tune_trials: MetaSchedule trials for the operators our kernels do not cover (0: no tuning).
        tuning_db: MetaSchedule work directory; reused across runs (records are re-applied).

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
    mod, input_name = _import(onnx_path, tuple(int(v) for v in input_shape))
    tuned = tune_trials > 0 or tuning_db is not None
    tuning = (tune_trials, Path(tuning_db or out_dir / "tuning_db")) if tuned else None
    mod, layers = _lower_for(preset, mod, tvm_target, tuning)
    library, sources = _build_and_export(mod, tvm_target, out_dir / LIBRARY_NAME, cross_compiler)
    result = CompileResult(preset.name, library, out_dir / REPORT_NAME, input_name,
                           tuple(int(v) for v in input_shape), tuple(layers), tuned,
                           time.perf_counter() - start, _write_sources(sources, out_dir))
    result.report_path.write_text(json.dumps({**result.to_dict(), "preset": preset.to_dict()}, indent=1))
    return result


def _import(onnx_path, input_shape: tuple[int, ...]):
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
    return mod, input_name


def _lower_for(preset: TargetPreset, mod, tvm_target, tuning: tuple[int, Path] | None):
    """CPU presets: our fused kernels, MetaSchedule (``tuning``) or our generic schedule for every
    other operator; GPU presets: unchanged (dlight in ``tvm.compile``)."""
    from tvm import relax

    if preset.schedule != "cpu-kernels":
        return mod, list_weight_layers(mod, reason=f"schedule {preset.schedule}: our kernels are CPU-only")
    lanes = preset_vector_floats(preset)
    mod, layers = fuse_layers(mod, vector_floats=lanes)
    if tuning is not None:
        mod, _ = tune_unscheduled(relax.transform.LegalizeOps()(mod), tvm_target, trials=tuning[0], work_dir=tuning[1])
    mod = schedule_rest(mod, vector_floats=lanes)
    left = unscheduled_functions(mod)
    if left:
        raise CompileError(f"no schedule for operator(s) {', '.join(left)}; please report this model")
    return mod, layers


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
