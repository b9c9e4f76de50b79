"""Report sections as plain tables (title, headers, rows of strings) for any renderer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deploy.report.formatting import (
    fmt_bytes,
    fmt_int,
    fmt_ms,
    fmt_ratio_pct,
    fmt_shape,
    fmt_speedup,
)


@dataclass(frozen=True)
class Table:
    """One rendered-agnostic table.

    Attributes:
        key: stable identifier (``"latency"``), used for anchors.
        title: heading shown above the table.
        headers: column names.
        rows: cells, already formatted as strings.
    """

    key: str
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _table(key: str, title: str, headers: list[str], rows: list[list[str]]) -> Table:
    return Table(key, title, tuple(headers), tuple(tuple(row) for row in rows))


def size_keys(report: dict[str, Any]) -> list[str]:
    """All ``size_bytes`` keys over the variants, in first-seen order."""
    keys: list[str] = []
    for variant in report["variants"]:
        keys.extend(key for key in variant["size_bytes"] if key not in keys)
    return keys


def run_table(report: dict[str, Any]) -> Table:
    """Run facts: model, target, time, machine, versions, seed, data."""
    run = report["run"]
    machine = run["machine"]
    rows = [
        ["model", run["model"]], ["target", run["target"]], ["created", run["created"]],
        ["seed", str(run["seed"])], ["data", ", ".join(f"{k}={v}" for k, v in run["data"].items())],
        ["machine", ", ".join(f"{k}={v}" for k, v in machine.items())],
        ["versions", ", ".join(f"{k} {v}" for k, v in run["versions"].items())],
    ]
    if run.get("command"):
        rows.append(["command", run["command"]])
    return _table("run", "Run", ["field", "value"], rows)


def variants_table(report: dict[str, Any]) -> Table:
    """One row per variant: accuracy, sparsity, non-zeros, params and every size."""
    keys = size_keys(report)
    headers = ["variant", "stage", "accuracy", "weight sparsity", "nonzero weights", "params"]
    rows = []
    for variant in report["variants"]:
        sizes = [fmt_bytes(variant["size_bytes"].get(key)) for key in keys]
        rows.append([
            variant["name"], variant["stage"], fmt_ratio_pct(variant["accuracy"]),
            fmt_ratio_pct(variant["weight_sparsity"]), fmt_int(variant["nonzero_weights"]),
            fmt_int(variant["params"]), *sizes,
        ])
    return _table("variants", "Variants", headers + [f"size {key}" for key in keys], rows)


def robust_table(report: dict[str, Any]) -> Table | None:
    """Accuracy under attack per variant, or ``None`` when no variant has any."""
    attacks: list[str] = []
    for variant in report["variants"]:
        attacks.extend(a for a in variant.get("robust_accuracy", {}) if a not in attacks)
    if not attacks:
        return None
    rows = []
    for v in report["variants"]:
        rows.append([v["name"], fmt_ratio_pct(v["accuracy"])] + [fmt_ratio_pct(v.get("robust_accuracy", {}).get(a)) for a in attacks])
        if "robust_accuracy_tvm" in v:
            rows.append([f"{v['name']} (TVM build)", ""] + [fmt_ratio_pct(v["robust_accuracy_tvm"].get(a)) for a in attacks])
    return _table("robust", "Robust accuracy", ["variant", "clean"] + attacks, rows)


def latency_table(report: dict[str, Any]) -> Table:
    """Absolute latency with the speed-up ratio next to it."""
    baseline = report["run"].get("baseline_variant") or "baseline"
    rows = [
        [r["variant"], r["runtime"], fmt_ms(r["median_ms"]), fmt_ms(r["p90_ms"]), str(r["runs"]),
         "-" if r["threads"] is None else str(r["threads"]), fmt_speedup(r["ratio_vs_baseline"])]
        for r in report["latency"]
    ]
    headers = ["variant", "runtime", "median", "p90", "runs", "threads", f"speed-up vs {baseline}"]
    return _table("latency", "Latency", headers, rows)


def layers_table(report: dict[str, Any]) -> Table:
    """Per-layer shape, size and sparsity for every variant that lists layers."""
    rows = [
        [v["name"], layer["fqn"], fmt_shape(layer["shape"]), fmt_int(layer["numel"]),
         fmt_int(layer["nnz"]), fmt_ratio_pct(layer["sparsity_ratio"])]
        for v in report["variants"] for layer in v["layers"]
    ]
    return _table("layers", "Per-layer sparsity", ["variant", "layer", "shape", "numel", "nnz", "sparsity"], rows)


def kernels_table(report: dict[str, Any]) -> Table:
    """Kernel chosen per layer and whether it skips zero weight blocks, the weight bytes it stores in
    the library next to the ONNX's (where the compile reported them: ternary / binary code kernels),
    and why."""
    rows = [
        [k["variant"], k["fqn"], k["kernel"], "yes" if k["skips_zero_blocks"] else "no",
         fmt_ratio_pct(k["sparsity_ratio"]), _maybe_bytes(k.get("library_bytes")), _maybe_bytes(k.get("onnx_bytes")), k["reason"]]
        for k in report.get("kernels", [])
    ]
    headers = ["variant", "layer", "kernel", "skips zero blocks", "sparsity", "library weights", "ONNX weights", "reason"]
    return _table("kernels", "Kernel choice", headers, rows)


def _maybe_bytes(value: int | None) -> str:
    return "-" if value is None else fmt_bytes(value)


def artifacts_table(report: dict[str, Any]) -> Table:
    """Artifacts with path, size and digest."""
    rows = [
        [name, a["path"], fmt_bytes(a["bytes"]), a["sha256"]]
        for name, a in report.get("artifacts", {}).items()
    ]
    return _table("artifacts", "Artifacts", ["name", "path", "size", "sha256"], rows)


def report_tables(report: dict[str, Any]) -> list[Table]:
    """Every table of a report, in reading order (empty optional sections left out)."""
    tables = [run_table(report), variants_table(report), robust_table(report), latency_table(report),
              kernels_table(report), layers_table(report), artifacts_table(report)]
    return [t for t in tables if t is not None and (t.rows or t.key in ("variants", "latency"))]
