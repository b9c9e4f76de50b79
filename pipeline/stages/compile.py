"""compile: TVM build for a target preset with our fused kernels (zero weight blocks skipped).

Always builds for the reference preset too (``deploy.tvm.targets.reference_target``, this machine):
that library is checked against onnxruntime and is what the report times. A preset with a bundle
(``TargetPreset.bundle``) gets its library bundled with its runtime and a runner, then checked under
the bundle's emulator against the reference build. No target is named here: the preset says.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deploy.runtimes import load_session
from deploy.tvm.bundle import add_bundle_file
from deploy.tvm.errors import BundleError, CompileError
from deploy.tvm.targets import DEFAULT_TARGET, get_target, list_targets, reference_target
from pipeline.errors import StageError, UserError
from pipeline.model.onnx_input import onnx_sample_shape
from pipeline.stage import Stage, StageContext, StageResult

PARITY_ATOL = 1e-4  # per unit of output magnitude: max(1, max |onnxruntime output|)


@dataclass(frozen=True)
class CompileConfig:
    target: str = field(default=DEFAULT_TARGET, metadata={"choices": list_targets, "help": "target preset (see `compress targets`)"})
    batch: int = field(default=1, metadata={"help": "static batch size compiled for"})
    tune_trials: int = field(default=0, metadata={"help": "MetaSchedule trials for dense operators (0: off)"})
    tuning_db: str = field(default="", metadata={"help": "reusable MetaSchedule work directory"})
    verify: bool = field(default=True, metadata={"help": "check the device bundle under its emulator (qemu) when installed"})


class CompileStage(Stage):
    name = "compile"
    version = "2"  # 2: fused direct-convolution and linear kernels replace im2col + break-even table
    Config = CompileConfig
    consumes = ("onnx",)
    produces = ("compiled", "host-library")
    uses_data = False
    summary = "TVM compile for a target preset (CPUs, Android, OpenCL GPUs; `compress targets` lists them) with fused block-sparse kernels"

    def check(self, config: CompileConfig) -> None:
        if config.batch < 1:
            raise UserError(f"batch must be >= 1, got {config.batch}")
        if config.tune_trials < 0:
            raise UserError(f"tune-trials must be >= 0, got {config.tune_trials}")

    def run(self, ctx: StageContext, config: CompileConfig, inputs: dict) -> StageResult:
        onnx_path = Path(inputs["onnx"])
        input_shape = (config.batch, *onnx_sample_shape(onnx_path))
        reference = reference_target().name
        host = _compile(ctx, onnx_path, reference, input_shape, config)
        probe = np.random.default_rng(ctx.options.seed).random(input_shape, dtype=np.float32)
        parity, host_output = _host_parity(onnx_path, host.library_path, probe)
        metrics = {
            "target": config.target,
            "input_shape": list(input_shape),
            "host_vs_onnxruntime_max_abs_error": parity,
            "layers": [layer.to_dict() for layer in host.layers],
            "sparse_layers": sum(1 for layer in host.layers if layer.choice.sparsity_ratio > 0),
        }
        outputs = {"host-library": host.library_path}
        if config.target == reference:
            outputs["compiled"] = host.library_path
            return StageResult(outputs=outputs, metrics=metrics)
        built = _compile(ctx, onnx_path, config.target, input_shape, config)
        outputs["compiled"] = built.library_path
        metrics["target_layers"] = [layer.to_dict() for layer in built.layers]
        if get_target(config.target).bundle is not None:
            bundle_dir, check = _bundle_and_verify(ctx, built, onnx_path, config, probe=probe, host_output=host_output)
            outputs["bundle-manifest"] = bundle_dir / "manifest.json"
            metrics["bundle_check"] = check
        return StageResult(outputs=outputs, metrics=metrics)


def _ship_preprocess(onnx_path: Path, bundle_dir: Path, input_shape) -> None:
    """Copy the input preprocessing into the bundle so the device applies the same."""
    import onnx

    from deploy.onnx import read_preprocess

    preprocess = read_preprocess(onnx.load(str(onnx_path), load_external_data=False)) or {}
    document = {"input_shape": list(input_shape), "preprocess": preprocess}
    add_bundle_file(bundle_dir, "preprocess.json", (json.dumps(document, indent=2, sort_keys=True, default=str) + "\n").encode())  # listed in the bundle manifest


def _compile(ctx: StageContext, onnx_path: Path, target: str, input_shape, config: CompileConfig):
    """Compile into a temp directory, then move it into place (no half-written library)."""
    from deploy.tvm.compile import compile_onnx

    final = ctx.stage_dir / target
    work = ctx.stage_dir / f".{target}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    ctx.log(f"compile: building for {target}")
    try:
        result = compile_onnx(
            onnx_path, target=target, out_dir=work, input_shape=input_shape,
            tune_trials=config.tune_trials,
            tuning_db=config.tuning_db or None,
        )
    except CompileError as error:
        shutil.rmtree(work, ignore_errors=True)
        raise UserError(f"compile: {error}") from None
    shutil.rmtree(final, ignore_errors=True)
    os.replace(work, final)
    return _relocated(result, work, final)


def _relocated(result, old: Path, new: Path):
    from dataclasses import replace

    return replace(result, library_path=new / result.library_path.relative_to(old), report_path=new / result.report_path.relative_to(old))


def _host_parity(onnx_path: Path, library: Path, probe: np.ndarray) -> tuple[float, np.ndarray]:
    """Max abs difference of the TVM host build from onnxruntime on ``probe``, and the host output."""
    expected = load_session("onnxruntime", onnx_path).run_one(probe)
    actual = load_session("tvm", library).run_one(probe)
    error = float(np.max(np.abs(actual - expected)))
    tolerance = parity_tolerance(expected)
    if not error <= tolerance:
        raise StageError(f"compile: TVM host build differs from onnxruntime by {error:.3g} > {tolerance:.3g}")
    return error, actual


def parity_tolerance(expected: np.ndarray) -> float:
    """``PARITY_ATOL`` scaled by the output's magnitude (at least 1): a detector's box coordinates in
    pixels (hundreds) carry float32 rounding of about 1e-5 of their size, logits do not."""
    return PARITY_ATOL * max(1.0, float(np.max(np.abs(expected), initial=0.0)))


def _bundle_and_verify(ctx: StageContext, built, onnx_path: Path, config: CompileConfig, *, probe: np.ndarray, host_output: np.ndarray):
    """Bundle the target's library the way its preset says, then check it under the bundle's emulator
    against the reference build's output."""
    kind, target = get_target(config.target).bundle, config.target
    bundle_dir = ctx.stage_dir / "bundle"
    shutil.rmtree(bundle_dir, ignore_errors=True)
    try:
        kind.make(built.library_path, bundle_dir=bundle_dir, input_name=built.input_name, input_shape=probe.shape, target=target)
    except BundleError as error:
        raise UserError(f"compile: {error}") from None
    _ship_preprocess(onnx_path, bundle_dir, probe.shape)
    if not config.verify:
        return bundle_dir, {"status": "skipped (--no-verify)"}
    if not kind.emulator_installed():
        ctx.log(f"compile: {kind.emulator} not installed; {target} bundle not verified ({kind.install_hint})")
        return bundle_dir, {"status": f"skipped: {kind.emulator} not installed"}
    try:
        check = kind.verify(bundle_dir, probe, host_output, atol=parity_tolerance(host_output))
    except BundleError as error:
        raise StageError(f"compile: {target} bundle check failed: {error}") from None
    ctx.log(f"compile: {target} bundle matches the host build under {kind.emulator} (max abs error {check.max_abs_error:.2e})")
    return bundle_dir, {"status": "passed", "max_abs_error": check.max_abs_error, "atol": check.atol, "seconds": round(check.seconds, 2)}
