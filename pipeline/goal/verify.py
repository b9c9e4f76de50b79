"""Every goal checked on a candidate's artifact, as its own report measured it; the best candidate."""

from __future__ import annotations

from typing import Any

from pipeline.goal.config import Goals

SPEED_ROW = ("compiled", "tvm-host")


def measured_values(report: dict[str, Any]) -> dict[str, Any]:
    """Speed-up, latency, size, accuracy and robust drop of what ships, from a ``compress-report/1``."""
    variants = {v["name"]: v for v in report.get("variants", [])}
    final = report["variants"][-1] if report.get("variants") else {}
    dense = variants.get("dense", {})
    rows = {(r["variant"], r["runtime"]): r for r in report.get("latency", [])}
    speed = rows.get(SPEED_ROW, {})
    baseline = rows.get(("dense", "onnxruntime"), {})
    size = (variants.get("compiled") or final).get("size_bytes", {}).get("onnx")
    values = {
        "speedup": speed.get("ratio_vs_baseline"),
        "latency_ms": speed.get("median_ms"),
        "dense_onnxruntime_ms": baseline.get("median_ms"),
        "threads": speed.get("threads"),
        "size_kib": None if size is None else size / 1024.0,
        "accuracy": final.get("accuracy"),
        "dense_accuracy": dense.get("accuracy"),
    }
    values["accuracy_drop"] = None if values["accuracy"] is None or values["dense_accuracy"] is None else values["dense_accuracy"] - values["accuracy"]
    if "robust_accuracy" in dense and "robust_accuracy" in final:
        drops = [dense["robust_accuracy"][a] - final["robust_accuracy"][a] for a in dense["robust_accuracy"] if a in final["robust_accuracy"]]
        values["robust_drop"] = max(drops, default=0.0)
    else:
        values["robust_drop"] = None
    return values


def check_goals_met(goals: Goals, measured: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per goal set: ``{"goal", "limit", "value", "met", "shortfall"}`` (a goal whose value
    was not measured is not met)."""
    checks = []
    for name, key, larger_is_better in (("min_speedup", "speedup", True), ("max_size_kib", "size_kib", False),
                                        ("max_accuracy_drop", "accuracy_drop", False), ("max_robust_drop", "robust_drop", False)):
        limit = getattr(goals, name)
        if limit is None:
            continue
        value = measured.get(key)
        if value is None:
            checks.append({"goal": name, "limit": limit, "value": None, "met": False, "shortfall": float("inf")})
            continue
        shortfall = max(0.0, limit - value) if larger_is_better else max(0.0, value - limit)
        checks.append({"goal": name, "limit": limit, "value": value, "met": shortfall == 0.0, "shortfall": shortfall})
    return checks


def normalised_shortfall(checks: list[dict[str, Any]]) -> float:
    """Sum over goals of the shortfall relative to the goal (accuracy goals: per point of accuracy)."""
    total = 0.0
    for check in checks:
        if check["met"]:
            continue
        scale = 0.01 if check["goal"] in ("max_accuracy_drop", "max_robust_drop") else max(abs(check["limit"]), 1e-9)
        total += check["shortfall"] / scale
    return total


def best_candidate(candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The candidate that meets every goal with the highest accuracy, else the least total shortfall."""
    measured = [c for c in candidates if c.get("goals") is not None]
    meeting = [c for c in measured if all(g["met"] for g in c["goals"])]
    if meeting:
        return max(meeting, key=lambda c: (c["measured"].get("accuracy") or 0.0, c["measured"].get("speedup") or 0.0))
    return min(measured, key=lambda c: normalised_shortfall(c["goals"]), default=None)
