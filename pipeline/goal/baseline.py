"""What the search starts from: the imported model (sparse-trained first when the recipe trains for
sparsity, :mod:`pipeline.goal.sparse_start`), its data, per-layer curves, and the dense baseline
(dense onnxruntime and dense TVM latency, interleaved) that calibrates the time outside the layers."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from deploy.bench import measure_interleaved
from deploy.bench.layer_latency import cache_path, kernel_version
from deploy.bench.machine import cpu_model
from deploy.runtimes import load_session
from deploy.tvm.targets import reference_target
from pipeline.atomic import sha256_file
from pipeline.execute import execute
from pipeline.goal.config import Goals
from pipeline.goal.curves import (
    calibration_evaluator,
    join_curves,
    latency_curves,
    layer_precisions,
    layer_shapes,
    sensitivity_curves,
    short_term_fine_tune,
)
from pipeline.goal.sparse_start import sparse_trained_model
from pipeline.model.bundle import build_model, load_bundle, trusted_archs_for
from pipeline.model.run_input import RunInput
from pipeline.runner import data_loader

INPUT_RUN = "input"


def search_inputs(steps, *, goals: Goals, run_input: RunInput, goal_dir: Path, options, resume: bool, log) -> dict[str, Any]:
    """Curves, records and the dense baseline for :func:`pipeline.goal.search.run_goal_search`."""
    input_dir = goal_dir / INPUT_RUN
    manifest = execute([], run_input=run_input, run_dir=input_dir, options=options,
                       resume=resume and input_dir.exists(), until=None, dry_run=False, log=log)
    sparse = sparse_trained_model(steps, run_input=run_input, goal_dir=goal_dir, options=options, resume=resume, log=log)
    bundle_path = sparse or input_dir / manifest["inputs"]["model"]["path"]  # the curves are measured on what candidates prune
    bundle = load_bundle(bundle_path)
    trusted = trusted_archs_for(run_input.model_path, arch=run_input.arch, trust_pickle=options.trust_pickle)
    model = build_model(bundle, trust_pickle=options.trust_pickle, trusted_archs=trusted).eval()
    data = data_loader(options)(bundle.input_shape)
    example = data.test_x[:1]  # only its shape is used
    shapes = layer_shapes(model, example)
    fqns = list(shapes)
    precisions = layer_precisions(model, steps, fqns)
    evaluate, samples = calibration_evaluator(data, samples=goals.calibration_samples)
    log(f"goal: sensitivity of {len(fqns)} layers at {len(goals.levels)} levels on {samples} calibration samples (training split), {goals.short_term_steps} short-term fine-tuning steps each")
    fine_tune = short_term_fine_tune(data, steps=goals.short_term_steps, calibration_samples=samples, seed=options.seed)
    sensitivity = sensitivity_curves(model, fqns, goals, evaluate, cache_dir=goal_dir, model_digest=sha256_file(bundle_path), log=log, fine_tune=fine_tune)
    threads = options.threads or _tvm_threads()
    tables = latency_curves(shapes, precisions, goals, threads=threads, log=log)
    curves, records = join_curves(shapes, precisions, sensitivity["curves"], tables, goals)
    dense = _dense_baseline(model, example, threads=threads, log=log)
    dense["accuracy"] = None
    level_zero = sum(c.latency_s[0] for c in curves)
    return {
        "curves": curves, "records": records, "threads": threads, "dense": dense,
        "calibration": {"split": "train", "samples": samples, "reference_accuracy": sensitivity["reference_accuracy"]},
        "table_facts": {"cpu": cpu_model(), "kernel_version": kernel_version(), "cache": str(cache_path()),
                        "estimate": options.target != reference_target().name and not options.device},
        "fixed_latency_s": max(0.0, dense["tvm_ms"] / 1000.0 - level_zero),
        "fixed_size_bytes": max(0.0, dense["onnx_bytes"] - 4.0 * sum(p.numel() for fqn, p in model.named_parameters() if fqn in shapes)),
    }


def _tvm_threads() -> int:
    import tvm

    return int(tvm.get_global_func("runtime.NumThreads")())


def _dense_baseline(model, example: torch.Tensor, *, threads: int, log, runs: int = 50) -> dict[str, Any]:
    """Dense onnxruntime and dense TVM (host) medians, interleaved, and the dense ONNX's bytes."""
    from deploy.onnx import export_onnx
    from deploy.tvm.compile import compile_onnx

    x = example[:1].numpy()
    with tempfile.TemporaryDirectory(prefix="compress-goal-") as tmp:
        onnx_path = Path(tmp) / "dense.onnx"
        export_onnx(model, torch.from_numpy(x), onnx_path, encoding="dense")
        library = compile_onnx(onnx_path, target=reference_target().name, out_dir=Path(tmp) / "tvm", input_shape=x.shape).library_path
        ort = load_session("onnxruntime", onnx_path, threads=threads)
        tvm_session = load_session("tvm", library, threads=threads)
        stats = measure_interleaved({"ort": lambda: ort.run_one(x), "tvm": lambda: tvm_session.run_one(x)}, warmup=10, runs=runs, progress=False)
        onnx_bytes = onnx_path.stat().st_size
    log(f"goal: dense baseline onnxruntime {stats['ort'].median_ms:.3f} ms, TVM {stats['tvm'].median_ms:.3f} ms (median, {threads} thread(s))")
    return {"onnxruntime_ms": stats["ort"].median_ms, "tvm_ms": stats["tvm"].median_ms, "onnx_bytes": onnx_bytes, "threads": threads}
