"""Gather the report's variants (dense, after each model-changing stage, compiled) from a run's history."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from compress.optim.loop import evaluate
from compress.stats import (
    count_nonzero_weights,
    layer_stats,
    parameter_count,
    weight_sparsity,
)
from pipeline.manifest import Artifact
from pipeline.model.bundle import build_model, load_bundle
from pipeline.stage import StageContext

VARIANT_NAMES = {"train-sparse": "sparse-trained", "prune": "pruned", "quantize": "quantized"}
_LAYER_KEYS = ("fqn", "shape", "numel", "nnz", "sparsity_ratio")


@dataclass
class VariantModel:
    """What the latency step needs of one variant."""

    name: str
    source: Path
    model: nn.Module | None
    input_shape: tuple[int, ...]
    test_samples: int
    onnx: Path | None = None
    tvm_library: Path | None = None
    target_library: Path | None = None


def collect_variants(ctx: StageContext, inputs: dict[str, Path], config) -> tuple[list[dict[str, Any]], dict[str, VariantModel]]:
    """Report variant dicts (report schema, deploy/report/SCHEMA.md) and the loaded models behind them."""
    records = [r for r in ctx.history if r["status"] == "done"]
    model_records = [r for r in records if "model" in r["outputs"]]
    variants, models = [], {}
    if model_records:
        dense_path = Artifact(**model_records[0]["inputs"]["model"]).verified(ctx.run_dir)  # confined and digest-checked
        variant, model = _model_variant(ctx, "dense", "input", dense_path, config)
        variants.append(variant)
        models["dense"] = model
        for record in model_records:
            path = Artifact(**record["outputs"]["model"]).verified(ctx.run_dir)
            name = VARIANT_NAMES.get(record["name"], record["name"])
            variant, model = _model_variant(ctx, name, record["name"], path, config, accuracy=record["metrics"].get("test_accuracy"))
            variants.append(variant)
            models[variant["name"]] = model
    export = next((r for r in records if r["name"] == "export"), None)
    _dense_onnx_sizes(export, variants)
    compiled = _compiled_variant(ctx, export, inputs, variants[-1] if variants else None)
    if compiled is not None:
        variants.append(compiled[0])
        models["compiled"] = compiled[1]
        if "dense" not in models:
            models["dense"] = compiled[1]
    return variants, models


def _model_variant(
    ctx: StageContext, name: str, stage: str, path: Path, config, *, accuracy: float | None = None
) -> tuple[dict[str, Any], VariantModel]:
    """A variant's report entry; ``accuracy`` is the producing stage's measurement (evaluated when absent)."""
    bundle = load_bundle(path)
    model = build_model(bundle, trust_pickle=ctx.options.trust_pickle, trusted_archs=ctx.options.trusted_archs)
    data = ctx.load_data(bundle.input_shape)
    variant = {
        "name": name,
        "stage": stage,
        "accuracy": accuracy if accuracy is not None else evaluate(model, data.test_batches()),
        "weight_sparsity": weight_sparsity(model),
        "nonzero_weights": count_nonzero_weights(model),
        "params": parameter_count(model),
        "size_bytes": {"checkpoint": path.stat().st_size, "checkpoint_gzip": _gzip_size(path)},
        "layers": [{key: s.to_dict()[key] for key in _LAYER_KEYS} for s in layer_stats(model)],
    }
    return variant, VariantModel(name, path, model, bundle.input_shape, len(data.test_y))


def _dense_onnx_sizes(export: dict[str, Any] | None, variants: list[dict[str, Any]]) -> None:
    """The dense input's fp32 ONNX size (and gzip), measured by the export stage, under "dense": the
    reference of the size plot and of the headline's "x smaller"."""
    dense = next((v for v in variants if v["name"] == "dense"), None)
    if export is None or dense is None:
        return
    metrics = export["metrics"]
    dense["size_bytes"]["onnx"] = int(metrics.get("original_dense_bytes", metrics["sizes"]["dense_bytes"]))
    dense["size_bytes"]["onnx_gzip"] = int(metrics.get("original_dense_gzip_bytes", metrics["sizes"]["dense_gzip_bytes"]))


def _compiled_variant(ctx: StageContext, export: dict[str, Any] | None, inputs, last: dict[str, Any] | None):
    onnx = inputs.get("onnx")
    library = inputs.get("host-library")
    if onnx is None or library is None:
        return None
    target_library = inputs.get("compiled", library)
    size_bytes = {"onnx": onnx.stat().st_size, "onnx_gzip": _gzip_size(onnx), "tvm_so": target_library.stat().st_size, "tvm_so_gzip": _gzip_size(target_library)}
    variant = {
        "name": "compiled",
        "stage": "compile",
        "accuracy": export["metrics"].get("onnx_test_accuracy") if export else None,
        "weight_sparsity": last["weight_sparsity"] if last else 0.0,
        "nonzero_weights": last["nonzero_weights"] if last else 0,
        "params": last["params"] if last else 0,
        "size_bytes": size_bytes,
        "layers": last["layers"] if last else [],
        "description": f"ONNX ({'export stage' if export else 'input'}) compiled by TVM for {ctx.options.target}; accuracy measured with onnxruntime on the same weights",
    }
    return variant, VariantModel("compiled", onnx, None, (), 0, onnx=onnx, tvm_library=library, target_library=target_library)


def _gzip_size(path: Path) -> int:
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0))


def kernel_rows(history: list[dict[str, Any]], layers: list[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """Per-layer kernel choice of the compile stage (host build), in the report schema, each layer named
    by its torch module where the ONNX name is not (``onnx::Conv_204`` after batch-norm folding)."""
    record = next((r for r in history if r["name"] == "compile" and r["status"] == "done"), None)
    if record is None:
        return []
    names = module_names(record["metrics"].get("layers", []), layers)
    export = next((r for r in history if r["name"] == "export" and r["status"] == "done"), None)
    stored = {s["fqn"]: s["stored_bytes"] for s in (export["metrics"].get("sizes", {}).get("layers", []) if export else [])}
    rows = []
    for layer in record["metrics"].get("layers", []):
        kernel = layer.get("kernel", "dense")
        rows.append(
            {
                "variant": "compiled",
                "fqn": names.get(str(layer.get("name")), str(layer.get("name"))),
                "kernel": kernel,
                "skips_zero_blocks": kernel != "dense" and float(layer.get("sparsity_ratio", 0.0)) > 0,
                "sparsity_ratio": float(layer.get("sparsity_ratio", 0.0)),
                "reason": str(layer.get("reason", "")),
                "library_bytes": layer.get("payload_bytes"),  # code kernels report the weight bytes they store
                "onnx_bytes": _stored_bytes(stored, names.get(str(layer.get("name")))),
            }
        )
    return rows


def _stored_bytes(stored: dict[str, int], fqn: str | None) -> int | None:
    """The export's stored bytes of the weight of module (or parameter) ``fqn``."""
    return None if fqn is None else stored.get(fqn, stored.get(f"{fqn}.weight"))


def module_names(compiled: list[dict[str, Any]], layers: list[dict[str, Any]]) -> dict[str, str]:
    """ONNX weight name -> torch parameter name, pairing the compiled layers (graph order) with the
    torch layers (module order) of the same weight shape, in order."""
    remaining = [dict(layer) for layer in layers]
    names = {}
    for layer in compiled:
        shape = list(layer.get("weight_shape", []))
        match = next((t for t in remaining if list(t["shape"]) == shape), None)
        if match is not None:
            remaining.remove(match)
            names[str(layer.get("name"))] = match["fqn"]
    return names


def artifact_rows(ctx: StageContext) -> dict[str, dict[str, Any]]:
    rows = {}
    for record in ctx.history:
        for role, artifact in record.get("outputs", {}).items():
            rows[f"{record['name']}/{role}"] = {"path": artifact["path"], "sha256": artifact["sha256"], "bytes": artifact["bytes"]}
    return rows
