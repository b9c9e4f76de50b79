"""A realistic example ``compress-report/2`` dict (LeNet-5 on MNIST), for docs, tests and previews.

``python -m deploy.report.sample OUT_DIR`` writes report.json / report.md / report.html from it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from deploy.report.schema import SCHEMA_ID
from deploy.report.write import write_report

_LAYERS = (
    ("conv1.weight", [6, 1, 5, 5]),
    ("conv2.weight", [16, 6, 5, 5]),
    ("fc1.weight", [120, 400]),
    ("fc2.weight", [84, 120]),
    ("fc3.weight", [10, 84]),
)
_BIASES = 6 + 16 + 120 + 84 + 10
# variant -> (stage, accuracy, per-layer sparsity, robust accuracy, onnx bytes)
_VARIANTS = (
    ("dense", "train", 0.9912, (0.0, 0.0, 0.0, 0.0, 0.0), {"fgsm": 0.412, "pgd": 0.083}, 247_000),
    ("sparse-trained", "sparse-train", 0.9905, (0.22, 0.61, 0.93, 0.84, 0.31), {"fgsm": 0.455, "pgd": 0.101}, 247_000),
    ("pruned", "prune", 0.9897, (0.30, 0.70, 0.96, 0.90, 0.40), {"fgsm": 0.447, "pgd": 0.096}, 41_500),
    ("quantized", "quantize", 0.9871, (0.30, 0.70, 0.96, 0.90, 0.40), {"fgsm": 0.431, "pgd": 0.090}, 9_800),
    ("compiled", "compile", 0.9871, (0.30, 0.70, 0.96, 0.90, 0.40), None, 9_800),
)


def _numel(shape: list[int]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


def _layers(sparsities: tuple[float, ...]) -> list[dict[str, Any]]:
    rows = []
    for (fqn, shape), sparsity in zip(_LAYERS, sparsities):
        numel = _numel(shape)
        nnz = numel - round(numel * sparsity)
        rows.append({"fqn": fqn, "shape": shape, "numel": numel, "nnz": nnz, "sparsity_ratio": 1 - nnz / numel})
    return rows


def _variant(name: str, stage: str, accuracy: float, sparsities, robust, onnx_bytes: int) -> dict[str, Any]:
    layers = _layers(sparsities)
    numel = sum(layer["numel"] for layer in layers)
    nnz = sum(layer["nnz"] for layer in layers)
    variant: dict[str, Any] = {
        "name": name,
        "stage": stage,
        "accuracy": accuracy,
        "weight_sparsity": 1 - nnz / numel,
        "nonzero_weights": nnz + _BIASES,
        "params": numel + _BIASES,
        "size_bytes": {"onnx": onnx_bytes, "onnx_gzip": int(onnx_bytes * 0.62)},
        "layers": layers,
    }
    if name == "compiled":
        variant["size_bytes"] = {"tvm_so": 58_000, "tvm_so_gzip": 21_000}
    if robust is not None:
        variant["robust_accuracy"] = dict(robust)
    return variant


def _latency() -> list[dict[str, Any]]:
    medians = {
        ("dense", "torch"): 0.412, ("dense", "onnxruntime"): 0.151,
        ("pruned", "onnxruntime"): 0.149, ("quantized", "onnxruntime"): 0.162,
        ("compiled", "tvm-host"): 0.071, ("compiled", "tvm-rpc"): 0.233,
    }
    rows = []
    for (variant, runtime), median in medians.items():
        baseline = medians.get(("dense", runtime), medians[("dense", "onnxruntime")])
        rows.append({
            "variant": variant, "runtime": runtime, "median_ms": median, "p90_ms": round(median * 1.18, 4),
            "runs": 50, "threads": 1, "ratio_vs_baseline": round(baseline / median, 3),
        })
    return rows


def _kernels() -> list[dict[str, Any]]:
    rows = []
    for layer in _layers(_VARIANTS[2][3]):
        rows.append({
            "variant": "compiled", "fqn": layer["fqn"],
            "kernel": "direct-conv" if layer["fqn"].startswith("conv") else "block-linear",
            "skips_zero_blocks": layer["sparsity_ratio"] >= 0.8,
            "sparsity_ratio": layer["sparsity_ratio"],
            "reason": f"{layer['sparsity_ratio']:.0%} of the 8x1 blocks zero and skipped; fused bias + relu",
        })
    return rows


def sample_report() -> dict[str, Any]:
    """A complete, valid ``compress-report/2`` dict with every optional section filled in."""
    return {
        "schema": SCHEMA_ID,
        "run": {
            "model": "lenet5", "target": "arm64", "created": "2026-11-21T07:00:00+00:00",
            "machine": {
                "cpu_model": "Neoverse-N1", "logical_cores": 4, "arch": "aarch64", "os": "Linux 6.1.0",
                "python": "3.11.2", "torch_threads": 1, "onnxruntime_threads": 1,
            },
            "versions": {"compress": "0.1.0", "torch": "2.13.0", "onnxruntime": "1.20.1", "tvm": "0.27.0"},
            "seed": 0, "data": {"name": "mnist", "split": "test", "samples": 10000},
            "baseline_variant": "dense", "command": "compress run lenet5.pt --target arm64",
        },
        "variants": [_variant(*spec) for spec in _VARIANTS],
        "latency": _latency(),
        "kernels": _kernels(),
        "artifacts": {
            "model.onnx": {"path": "export/model.onnx", "sha256": "ab" * 32, "bytes": 9_800},
            "model.so": {"path": "compile/model.so", "sha256": "cd" * 32, "bytes": 58_000},
        },
        "notes": ["Latency on tvm-rpc measured on a Pixel 7 over adb.", "Accuracy on the full MNIST test split."],
    }


def main(argv: list[str] | None = None) -> int:
    """Write the sample report's files into the directory given as the only argument."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m deploy.report.sample OUT_DIR", file=sys.stderr)
        return 2
    for kind, path in write_report(sample_report(), Path(args[0])).items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
