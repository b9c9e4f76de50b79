"""The goal search's report: Pareto plot of every candidate, per-layer allocation, one line per goal.

Input is the search record (``search.json``, written by the goal search): goals, the dense
baseline, per-layer curves (sensitivity and latency tables) and every candidate with what was
predicted and what its own report measured. Output: ``goal.md``, ``goal.html`` and ``pareto.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deploy.report.files import atomic_write_bytes, atomic_write_text
from deploy.report.formatting import fmt_ratio_pct
from deploy.report.html import data_uri, html_page
from deploy.report.plots import _figure, _png

GOAL_LABELS = {
    "min_speedup": "speed-up vs dense onnxruntime >= {:.2f}x",
    "max_size_kib": "ONNX size <= {:.1f} KiB",
    "max_accuracy_drop": "accuracy drop <= {:.2f} points",
    "max_robust_drop": "robust accuracy drop <= {:.2f} points",
}


def goal_lines(candidate: dict[str, Any]) -> list[str]:
    """One line per goal of a candidate: met or not, measured value and the shortfall."""
    lines = []
    for check in candidate.get("goals", []):
        scale = 100.0 if check["goal"] in ("max_accuracy_drop", "max_robust_drop") else 1.0
        label = GOAL_LABELS[check["goal"]].format(check["limit"] * scale)
        value = "not measured" if check["value"] is None else f"{check['value'] * scale:.2f}"
        verdict = "met" if check["met"] else f"NOT met (short by {check['shortfall'] * scale:.2f})"
        lines.append(f"{label}: measured {value}: {verdict}")
    return lines


def pareto_png(search: dict[str, Any]) -> bytes:
    """Accuracy against latency and against size of every candidate, goal lines, shipped one starred."""
    figure = _figure(width=9.0, height=3.8)
    by_latency, by_size = figure.subplots(1, 2)
    candidates = [c for c in search.get("candidates", []) if c.get("measured")]
    dense = search.get("dense", {})
    goals = search.get("goals", {})
    shipped = search.get("shipped")
    base_ms = dense.get("onnxruntime_ms")
    latency = {c["index"]: base_ms / c["measured"]["speedup"] if base_ms and c["measured"].get("speedup") else c["measured"].get("latency_ms") for c in candidates}
    for axes, key, label in ((by_latency, "latency_ms", "latency, ms (dense onnxruntime / measured speed-up)"), (by_size, "size_kib", "ONNX size, KiB")):
        xs = [latency[c["index"]] if key == "latency_ms" else c["measured"].get(key) for c in candidates]
        ys = [100.0 * (c["measured"].get("accuracy") or 0.0) for c in candidates]
        axes.scatter(xs, ys, color="tab:blue", label="candidates", zorder=3)
        for candidate, x, y in zip(candidates, xs, ys):
            axes.annotate(str(candidate["index"]), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
            if candidate["index"] == shipped:
                axes.scatter([x], [y], marker="*", s=220, color="tab:red", label="shipped", zorder=4)
        dense_x = base_ms if key == "latency_ms" else (dense.get("onnx_bytes") or 0) / 1024.0
        if dense.get("accuracy") is not None and dense_x:
            axes.scatter([dense_x], [100.0 * dense["accuracy"]], marker="s", color="tab:gray", label="dense input", zorder=3)
        if dense.get("accuracy") is not None and goals.get("max_accuracy_drop") is not None:
            axes.axhline(100.0 * (dense["accuracy"] - goals["max_accuracy_drop"]), color="tab:green", linestyle="--", label="accuracy goal")
        if key == "latency_ms" and goals.get("min_speedup") and dense.get("onnxruntime_ms"):
            axes.axvline(dense["onnxruntime_ms"] / goals["min_speedup"], color="tab:orange", linestyle="--", label="speed-up goal")
        if key == "size_kib" and goals.get("max_size_kib"):
            axes.axvline(goals["max_size_kib"], color="tab:orange", linestyle="--", label="size goal")
        axes.set_xscale("log")
        axes.set_xlabel(label)
        axes.set_ylabel("test accuracy, %")
        axes.grid(alpha=0.3)
    by_latency.legend(fontsize=7, loc="lower right")
    return _png(figure)


def _allocation_rows(search: dict[str, Any]) -> list[str]:
    shipped = next((c for c in search.get("candidates", []) if c["index"] == search.get("shipped")), None)
    allocation = (shipped or {}).get("allocation", {})
    rows = ["| layer | shape | precision | shipped sparsity | sparsity levels | sensitivity (calibration accuracy lost, points) | kernel time, us | kernel |",
            "|---|---|---|---|---|---|---|---|"]
    for layer in search.get("layers", []):
        levels = " / ".join(f"{s:.2f}" for s in layer["levels"])
        sensitivity = " / ".join(f"{100 * d:.2f}" for d in layer["sensitivity"])
        times = " / ".join(f"{1000 * t:.1f}" for t in layer["latency_ms"])
        kernels = ", ".join(sorted(set(layer["kernels"])))
        chosen = allocation.get(layer["fqn"])
        rows.append(f"| {layer['fqn']} | {layer['shape']} | {layer['precision']} | {'-' if chosen is None else f'{chosen:.2f}'} | {levels} | {sensitivity} | {times} | {kernels} |")
    return rows


def _candidate_rows(search: dict[str, Any]) -> list[str]:
    rows = ["| # | predicted speed-up | measured speed-up | accuracy | size | fine-tune epochs | all goals | seconds |",
            "|---|---|---|---|---|---|---|---|"]
    for c in search.get("candidates", []):
        m = c.get("measured") or {}
        speed = "-" if m.get("speedup") is None else f"{m['speedup']:.2f}x"
        size = "-" if m.get("size_kib") is None else f"{m['size_kib']:.1f} KiB"
        met = "yes" if c.get("goals") and all(g["met"] for g in c["goals"]) else "no"
        mark = " (shipped)" if c["index"] == search.get("shipped") else ""
        rows.append(f"| {c['index']}{mark} | {c['predicted']['speedup']:.2f}x | {speed} | {fmt_ratio_pct(m.get('accuracy'))} | {size} | {c['epochs']} | {met} | {c.get('seconds', 0):.0f} |")
    return rows


def goal_markdown(search: dict[str, Any], *, plot_name: str = "pareto.png") -> str:
    """The goal search as Markdown (the plot referenced by file name)."""
    shipped = next((c for c in search.get("candidates", []) if c["index"] == search.get("shipped")), None)
    calibration = search.get("calibration", {})
    table = search.get("latency_tables", {})
    status = "every goal met" if search.get("status") == "met" else "NOT every goal met: the best candidate is kept"
    lines = [
        "# compress goal search", "",
        f"**Result:** {status}; shipped candidate {search.get('shipped')} ({search.get('shipped_dir', '-')}), "
        f"search time {search.get('seconds', 0):.0f} s of a {search.get('goals', {}).get('search_budget', 0):g}-minute budget.", "",
        "## Goals (measured on the shipped artifact, by its own report)", "",
        *[f"- {line}" for line in goal_lines(shipped or {})], "",
        f"![Pareto]({plot_name})", "",
        "## Per-layer allocation", "",
        f"Sensitivity: one-shot {search.get('pattern', 'block')} magnitude pruning of one layer at a time, then "
        f"{search.get('goals', {}).get('short_term_steps', 0)} short-term masked fine-tuning steps, accuracy on a calibration "
        f"split of {calibration.get('samples', '?')} samples from the {calibration.get('split', 'train')} split (never the test set; "
        f"reference {fmt_ratio_pct(calibration.get('reference_accuracy'))}). "
        f"Kernel times: each layer compiled alone for the host and timed at {search.get('threads', 1)} thread(s) on "
        f"{table.get('cpu', '?')} (kernel version {table.get('kernel_version', '?')})"
        + ("; the target is not this machine: these tables, and the speed-up goal checked on this machine's host build of "
           "the same model, are estimates for it (compress bench-device measures the target's library on a device)." if table.get("estimate") else "."), "",
        *_allocation_rows(search), "",
        "## Candidates", "",
        *_candidate_rows(search), "",
    ]
    return "\n".join(lines)


def write_goal_report(search: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write ``goal.md``, ``goal.html`` and ``pareto.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    png = pareto_png(search)
    paths = {"png": atomic_write_bytes(out_dir / "pareto.png", png)}
    text = goal_markdown(search)
    paths["md"] = atomic_write_text(out_dir / "goal.md", text)
    paths["html"] = atomic_write_text(out_dir / "goal.html", html_page(title="compress goal search", body=_html_body(text, png)))
    return paths


def _html_body(text: str, png: bytes) -> str:
    """The Markdown's content as HTML: headings, lists, tables and the plot inlined."""
    import html as escape

    out, table = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [escape.escape(c.strip()) for c in line.strip("|").split("|")]
            if not set("".join(cells)) <= set("-"):
                table.append(cells)
            continue
        if table:
            head, *rest = table
            out.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rest) + "</table>")
            table = []
        if line.startswith("!["):
            out.append(f'<img alt="Pareto plot" src="{data_uri(png)}">')
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{escape.escape(line.lstrip('# '))}</h{level}>")
        elif line.startswith("- "):
            out.append(f"<li>{escape.escape(line[2:])}</li>")
        elif line.strip():
            out.append(f"<p>{escape.escape(line).replace('**', '')}</p>")
    return "\n".join(out)
