"""Batch-1 latency of the report's variants under torch, onnxruntime and TVM, interleaved in one run."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from deploy.bench import LatencyStats, measure_interleaved
from deploy.report import latency_rows
from deploy.runtimes import SessionError, load_session
from deploy.tvm.targets import reference_target
from pipeline.atomic import atomic_path
from pipeline.errors import UserError
from pipeline.model.onnx_input import onnx_sample_shape
from pipeline.report.data import VariantModel
from pipeline.stage import StageContext

BASELINE = ("dense", "onnxruntime")
TORCH_WARMUP = 50  # torch eager's first calls (allocator, OpenMP pool start) are slow: never time them


def measure_latency(ctx: StageContext, config, inputs: dict[str, Path], models: dict[str, VariantModel]) -> tuple[list[dict[str, Any]], list[str]]:
    """Latency rows of the report schema, plus notes on what was (not) measured."""
    x = _sample_input(ctx, models)
    threads = ctx.options.threads or _tvm_default_threads()
    candidates, notes = _candidates(ctx, config, models, x, threads=threads)
    stats = {}
    for torch_group in (False, True):
        group = _group(candidates, torch_group=torch_group)
        warmup = max(config.warmup, TORCH_WARMUP) if torch_group else config.warmup
        if group:
            stats.update(measure_interleaved(group, warmup=warmup, runs=config.runs, progress=ctx.options.progress))
    baseline = stats.get("|".join(BASELINE))
    rows = []
    for key, stat in stats.items():
        variant, runtime = key.split("|")
        rows.append(_row(variant, runtime, stat, baseline, threads=torch.get_num_threads() if runtime == "torch" else threads))
    if ctx.options.device and models.get("compiled") is not None:
        stat = _remote_latency(ctx.options.device, models["compiled"], x, config)
        rows.append({**_row("compiled", "tvm-rpc", stat, baseline, threads=None), "device": ctx.options.device})
        notes.append(f"tvm-rpc: measured on {ctx.options.device} with the device's own timer (no network time), not interleaved.")
    notes.append(
        f"Latency: batch 1, median of {config.runs} interleaved runs after {config.warmup} warm-up runs each; "
        "ratio_vs_baseline = median of the dense model on onnxruntime / median of the row. "
        "torch eager is timed in a separate interleaved group, after at least "
        f"{TORCH_WARMUP} warm-up runs: its OpenMP threads keep spinning after each call "
        "and slowed the other runtimes 2-3x when interleaved with them (measured). "
        f"onnxruntime and the TVM runtime both ran with {threads} intra-op thread(s) "
        "(--threads, else the TVM runtime's default: one per physical core as TVM counts them); "
        f"torch with {torch.get_num_threads()}."
    )
    return rows, notes


def _group(candidates: dict, *, torch_group: bool) -> dict[str, Callable[[], Any]]:
    return {f"{variant}|{runtime}": run for (variant, runtime), run in candidates.items() if (runtime == "torch") == torch_group}


def _tvm_default_threads() -> int:
    """Threads the TVM runtime uses here by default (``TVM_NUM_THREADS`` or TVM's own core count)."""
    import tvm

    return int(tvm.get_global_func("runtime.NumThreads")())


def _row(variant: str, runtime: str, stat, baseline, *, threads: int | None) -> dict[str, Any]:
    """One report latency row; the ratio is against the dense model on onnxruntime, across runtimes."""
    row = latency_rows({variant: stat}, runtime=runtime, threads=threads)[0]
    row["ratio_vs_baseline"] = baseline.median_ms / stat.median_ms if baseline and stat.median_ms > 0 else None
    return row


def _remote_latency(device: str, compiled: VariantModel, x: np.ndarray, config):
    """Latency of the target library on a TVM RPC device (its own timer)."""
    try:
        session = load_session("tvm", compiled.target_library, device=device)
        seconds = session.time({(session.input_names or ["input"])[0]: x}, repeat=config.runs, warmup=config.warmup)
    except SessionError as error:
        raise UserError(f"report: {error}") from None
    return LatencyStats.from_samples([s * 1000.0 for s in seconds])


def _sample_input(ctx: StageContext, models: dict[str, VariantModel]) -> np.ndarray:
    dense = models["dense"]
    if dense.model is not None:
        data = ctx.load_data(dense.input_shape)
        return data.test_x[:1].numpy()

    shape = onnx_sample_shape(dense.onnx)
    return np.random.default_rng(ctx.options.seed).random((1, *shape), dtype=np.float32)


def _candidates(ctx: StageContext, config, models: dict[str, VariantModel], x: np.ndarray, *, threads: int) -> tuple[dict[tuple[str, str], Callable[[], Any]], list[str]]:
    session = partial(load_session, threads=threads)
    candidates: dict[tuple[str, str], Callable[[], Any]] = {}
    notes: list[str] = []
    for name, variant in models.items():
        if variant.model is not None:
            candidates[(name, "torch")] = _torch_call(variant.model, x)
    dense = models["dense"]
    if dense.model is not None:
        dense_onnx = _export_dense(ctx, dense, x)
        candidates[("dense", "onnxruntime")] = _session_call(session("onnxruntime", dense_onnx), x)
        if config.tvm_dense:
            library = _compile_dense(ctx, dense_onnx, x.shape)
            candidates[("dense", "tvm-host")] = _session_call(session("tvm", library), x)
        else:
            notes.append("The dense model was not built with TVM (tvm-dense off).")
    compiled = models.get("compiled")
    if compiled is not None:
        candidates[("compiled", "onnxruntime")] = _session_call(session("onnxruntime", compiled.onnx), x)
        candidates[("compiled", "tvm-host")] = _session_call(session("tvm", compiled.tvm_library), x)
    return candidates, notes


def _torch_call(model: torch.nn.Module, x: np.ndarray) -> Callable[[], Any]:
    tensor = torch.from_numpy(x)
    model.eval()

    def call() -> Any:
        with torch.inference_mode():
            return model(tensor)

    return call


def _session_call(session, x: np.ndarray) -> Callable[[], Any]:
    return lambda: session.run_one(x)


def _export_dense(ctx: StageContext, dense: VariantModel, x: np.ndarray) -> Path:
    from deploy.onnx import export_onnx

    path = ctx.stage_dir / "dense" / "model-dense.onnx"
    with atomic_path(path) as tmp:
        export_onnx(dense.model, torch.from_numpy(x), tmp, encoding="dense")
    dense.onnx = path
    return path


def _compile_dense(ctx: StageContext, onnx_path: Path, input_shape) -> Path:
    from deploy.tvm.compile import compile_onnx

    ctx.log("report: building the dense original with TVM for the host")
    result = compile_onnx(onnx_path, target=reference_target().name, out_dir=ctx.stage_dir / "dense" / "tvm-host", input_shape=tuple(input_shape))
    return result.library_path
