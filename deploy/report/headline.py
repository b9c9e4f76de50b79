"""The report's opening: what went in, what came out, a one-line verdict, and what to distrust.

The verdict compares what ships (the last variant) with the dense input: ONNX size against the dense
fp32 ONNX, the best batch-1 speed-up of the compiled artifact against the dense model on onnxruntime,
the accuracy change, and the robust-accuracy change where it was measured. Warnings flag noisy
latency (p90 more than ``NOISY`` times the median), training data cut by ``--train-limit``, and
accuracy measured on a subset of the test set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deploy.report.formatting import fmt_bytes

NOISY = 3.0  # p90 / median above which a latency row is called noisy


@dataclass(frozen=True)
class Headline:
    went_in: str
    came_out: str
    verdict: str
    warnings: list[str] = field(default_factory=list)


def report_headline(report: dict[str, Any]) -> Headline:
    variants = report["variants"]
    run = report["run"]
    dense = next((v for v in variants if v["name"] == "dense"), None)
    final = variants[-1] if variants else None
    return Headline(
        went_in=_went_in(run, dense),
        came_out=_came_out(run, final),
        verdict=", ".join(part for part in (_size(dense, final), _speed(report), _accuracy(dense, final), _robust(dense, final)) if part) or "nothing to compare",
        warnings=_warnings(report),
    )


def _went_in(run: dict[str, Any], dense: dict[str, Any] | None) -> str:
    data = run.get("data", {})
    text = f"{run['model']} on {data.get('name', '?')}"
    if dense is not None:
        text += f": {dense['params']:,} parameters, accuracy {_pct(dense['accuracy'])}"
    return text


def _came_out(run: dict[str, Any], final: dict[str, Any] | None) -> str:
    if final is None:
        return "no variant"
    sizes = final["size_bytes"]
    parts = [f"{label} {fmt_bytes(sizes[key])}" for key, label in (("onnx", "ONNX"), ("tvm_so", "TVM library"), ("checkpoint", "checkpoint")) if sizes.get(key)]
    parts += [f"weight sparsity {_pct(final['weight_sparsity'])}", f"accuracy {_pct(final['accuracy'])}"]
    return f"{final['name']} for {run['target']}: " + ", ".join(parts)


def _size(dense: dict[str, Any] | None, final: dict[str, Any] | None) -> str:
    if dense is None or final is None or final is dense:
        return ""
    reference, shipped = dense["size_bytes"].get("onnx"), final["size_bytes"].get("onnx")
    return f"{reference / shipped:.0f}x smaller than the dense fp32 ONNX" if reference and shipped else ""


def _speed(report: dict[str, Any]) -> str:
    rows = [r for r in report["latency"] if r["variant"] != "dense" and r["ratio_vs_baseline"] and r["runtime"].startswith("tvm")]
    best = max(rows, key=lambda r: r["ratio_vs_baseline"], default=None)
    if best is None:
        return ""
    threads = f", {best['threads']} thread(s)" if best.get("threads") else ""
    return f"{best['ratio_vs_baseline']:.2f}x faster than the dense model on onnxruntime ({best['runtime']}, median{threads})"


def _accuracy(dense: dict[str, Any] | None, final: dict[str, Any] | None) -> str:
    if dense is None or final is None or dense["accuracy"] is None or final["accuracy"] is None:
        return ""
    return f"accuracy {100 * (final['accuracy'] - dense['accuracy']):+.2f} points"


def _robust(dense: dict[str, Any] | None, final: dict[str, Any] | None) -> str:
    if dense is None or final is None:
        return ""
    before, after = dense.get("robust_accuracy") or {}, final.get("robust_accuracy") or {}
    changes = [f"{attack.upper()} {100 * (after[attack] - before[attack]):+.2f}" for attack in before if attack in after]
    return f"robust accuracy {', '.join(changes)} points" if changes else ""


def _warnings(report: dict[str, Any]) -> list[str]:
    warnings = []
    for row in report["latency"]:
        if row["median_ms"] > 0 and row["p90_ms"] / row["median_ms"] > NOISY:
            warnings.append(f"latency of {row['variant']} on {row['runtime']} is noisy (p90 {row['p90_ms'] / row['median_ms']:.1f}x the median): "
                            "rerun on a quiet machine before trusting its speed-up")
    data = report["run"].get("data", {})
    if data.get("train_limit"):
        warnings.append(f"training used only the first {data['train_limit']:,} training samples (--train-limit)")
    if data.get("test_limit"):
        warnings.append(f"accuracy is measured on the first {data['test_limit']:,} test samples only (--test-limit)")
    if 0 < data.get("robust_samples", 0) < data.get("samples", 0) and any("robust_accuracy" in v for v in report["variants"]):
        warnings.append(f"robust accuracy is measured on the first {data['robust_samples']:,} test samples")
    return warnings


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"
