"""Compile an ONNX model with TVM for a target preset: import, fused kernels, schedules, build, export.

Pipeline (CPU presets): densify sparse ONNX constants -> fix the input shape and fold every constant
subgraph on onnxruntime (:mod:`deploy.onnx.fold`) -> ``from_onnx`` -> ``FoldConstant`` -> every
``conv2d`` / ``matmul`` with a constant weight becomes one of our fused kernels (zero weight blocks
skipped, bias / residual / activation in the epilogue; :mod:`deploy.tvm.fusion`) -> every other
operator gets a schedule (:mod:`deploy.tvm.schedule_rest`) -> optional MetaSchedule tuning of what
is left (``tune_trials > 0``) -> ``tvm.compile`` -> ``export_library`` with the preset's cross
compiler. GPU presets use TVM's dlight pipeline. Writes ``model.so`` and ``compile_report.json``.
Every failure is a one-line :class:`CompileError`; one that belongs to an ONNX node names it
(:mod:`deploy.tvm.onnx_import`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from deploy.tvm.errors import CompileError
from deploy.tvm.fusion import fuse_layers, list_weight_layers
from deploy.tvm.layer_report import LayerReport
from deploy.tvm.onnx_import import dynamic_shape_message, error_reason, import_onnx, locate_failing_node, node_message
from deploy.tvm.onnx_input import graph_input_name, load_onnx_for_tvm, static_onnx_for_tvm
from deploy.tvm.quantized_fusion import fuse_quantized_layers, merge_layer_reports
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
    input_shape = tuple(int(v) for v in input_shape)
    model, input_name = _static_model(onnx_path, input_shape)
    mod = _import_static(model, input_name=input_name, input_shape=input_shape)
    tuned = tune_trials > 0 or tuning_db is not None
    tuning = (tune_trials, Path(tuning_db or out_dir / "tuning_db")) if tuned else None
    try:
        mod, layers = _lower_for(preset, mod, tvm_target, tuning)
        executable = _build(mod, tvm_target)
    except CompileError:
        raise
    except Exception as error:  # noqa: BLE001 - TVM raises its own error types from C++ and Python
        steps = lambda module: _build(_lower_for(preset, module, tvm_target, None)[0], tvm_target)  # noqa: E731
        raise CompileError(_describe_lowering_failure(model, error, steps, input_name=input_name, input_shape=input_shape)) from error
    library, sources = _export(executable, out_dir / LIBRARY_NAME, cross_compiler)
    result = CompileResult(preset.name, library, out_dir / REPORT_NAME, input_name, input_shape, tuple(layers), tuned,
                           time.perf_counter() - start, _write_sources(sources, out_dir))
    result.report_path.write_text(json.dumps({**result.to_dict(), "preset": preset.to_dict()}, indent=1))
    return result


def _static_model(onnx_path, input_shape: tuple[int, ...]):
    """The ONNX model as TVM will import it (dense weights, static input, constants folded) and its input name."""
    model = load_onnx_for_tvm(onnx_path)
    input_name = graph_input_name(model)
    return static_onnx_for_tvm(model, input_shape=input_shape), input_name


def _import(onnx_path, input_shape: tuple[int, ...]):
    """The imported Relax module (constants folded) and the input name."""
    model, input_name = _static_model(onnx_path, input_shape)
    return _import_static(model, input_name=input_name, input_shape=input_shape), input_name


def _import_static(model, *, input_name: str, input_shape: tuple[int, ...]):
    """``from_onnx`` + ``FoldConstant``; refuses a model with a data-dependent shape, naming its node."""
    from tvm import relax

    mod = import_onnx(model, input_name=input_name, input_shape=input_shape)
    if relax.analysis.defined_symbolic_vars(mod["main"]):
        raise CompileError(dynamic_shape_message(model, input_name=input_name, input_shape=input_shape)
                           or "the model has data-dependent shapes; only static shapes are compiled")
    return mod


def _describe_lowering_failure(model, error: BaseException, steps, *, input_name: str, input_shape) -> str:
    """One line for a failure after import: the first ONNX node whose prefix graph fails the same
    ``steps`` (lowering and build; found by bisection), else the reason alone."""

    def fails(prefix) -> bool:
        try:
            steps(import_onnx(prefix, input_name=input_name, input_shape=input_shape))
        except Exception:  # noqa: BLE001 - any failure reproduces it
            return True
        return False

    reason = error_reason(error)
    node = locate_failing_node(model, fails)
    return node_message(model, node, reason) if node is not None else f"TVM could not lower the model: {reason}"


def _lower_for(preset: TargetPreset, mod, tvm_target, tuning: tuple[int, Path] | None):
    """CPU presets: our fused kernels, MetaSchedule (``tuning``) or our generic schedule for every
    other operator; GPU presets: unchanged (dlight in ``tvm.compile``)."""
    from tvm import relax

    if preset.schedule != "cpu-kernels":
        return mod, list_weight_layers(mod, reason=f"schedule {preset.schedule}: our kernels are CPU-only")
    lanes = preset_vector_floats(preset)
    mod, quantized = fuse_quantized_layers(mod, vector_floats=lanes)  # ternary / binary weights stay codes
    mod, layers = fuse_layers(mod, vector_floats=lanes)
    layers = merge_layer_reports(quantized, layers)
    if tuning is not None:
        mod, _ = tune_unscheduled(relax.transform.LegalizeOps()(mod), tvm_target, trials=tuning[0], work_dir=tuning[1])
    mod = schedule_rest(mod, vector_floats=lanes)
    left = unscheduled_functions(mod)
    if left:
        raise CompileError(f"no schedule for operator(s) {', '.join(left)}; please report this model")
    return mod, layers


def _build(mod, tvm_target):
    import tvm

    return tvm.compile(mod, target=tvm_target)


def _export(executable, path: Path, cross_compiler: str | None) -> tuple[Path, dict[str, str]]:
    try:
        if cross_compiler is None:
            executable.export_library(str(path))
        else:
            # stripped (no debug info) and 16 KiB segment alignment (4 and 16 KiB page kernels, Android 15's
            # requirement) instead of 64 KiB padding: the default LeNet-5's arm64 library 201 -> 84 KiB
            executable.export_library(str(path), cc=cross_compiler, options=["-s", "-Wl,-z,max-page-size=16384"])
    except Exception as error:  # noqa: BLE001
        raise CompileError(f"export_library to {path} failed: {error_reason(error)}") from error
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
