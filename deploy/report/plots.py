"""Report plots as PNG bytes, drawn with matplotlib's object API and the Agg canvas.

No pyplot: figures are plain ``Figure`` objects, so nothing touches matplotlib's global state
and no display is needed. matplotlib is imported inside the functions (lazy).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Callable

from deploy.report.tables import size_keys


@dataclass(frozen=True)
class Plot:
    """One rendered plot.

    Attributes:
        key: stable identifier, e.g. ``"latency"``.
        title: caption.
        png: the PNG file's bytes.
    """

    key: str
    title: str
    png: bytes


def _figure(*, width: float = 7.0, height: float = 3.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _grouped_bars(axes, *, groups: list[str], series: dict[str, list[float | None]]) -> list:
    width = 0.8 / max(len(series), 1)
    containers = []
    for index, (label, values) in enumerate(series.items()):
        xs = [g + (index - (len(series) - 1) / 2) * width for g in range(len(groups))]
        heights = [0.0 if v is None else v for v in values]
        containers.append(axes.bar(xs, heights, width=width, label=label, color=f"C{index}"))
    axes.set_xticks(range(len(groups)), groups, rotation=20, ha="right")
    return containers


def latency_figure(report: dict[str, Any]):
    """Median latency per variant and runtime; p90 as a black tick, speed-up above each bar."""
    rows = report["latency"]
    if not rows:
        return None
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    runtimes = list(dict.fromkeys(r["runtime"] for r in rows))
    lookup = {(r["variant"], r["runtime"]): r for r in rows}
    figure = _figure()
    axes = figure.add_subplot()
    series = {rt: [lookup[(v, rt)]["median_ms"] if (v, rt) in lookup else None for v in variants] for rt in runtimes}
    for runtime, container in zip(runtimes, _grouped_bars(axes, groups=variants, series=series)):
        for variant, bar in zip(variants, container):
            row = lookup.get((variant, runtime))
            if row is None:
                continue
            x = bar.get_x() + bar.get_width() / 2
            axes.plot([x], [row["p90_ms"]], marker="_", color="black", markersize=10)
            if row["ratio_vs_baseline"] is not None:
                label = f"{row['ratio_vs_baseline']:.2f}x"
                axes.annotate(label, (x, row["p90_ms"]), ha="center", va="bottom", fontsize=7)
    axes.set_yscale("log")  # torch eager can be 10x the others: on a linear axis it flattens every other bar
    axes.set_ylabel("median latency (ms, log scale), p90 tick")
    axes.set_title("labels: speed-up vs the dense model on onnxruntime", fontsize=8)
    axes.legend(fontsize=8)
    return figure


def size_figure(report: dict[str, Any]):
    """Model size per variant, one bar per size kind (onnx, onnx_gzip, ...)."""
    variants = report["variants"]
    keys = size_keys(report)
    if not keys:
        return None
    figure = _figure()
    axes = figure.add_subplot()
    series = {k: [None if k not in v["size_bytes"] else v["size_bytes"][k] / 1024 for v in variants] for k in keys}
    _grouped_bars(axes, groups=[v["name"] for v in variants], series=series)
    axes.set_ylabel("size (KiB)")
    axes.legend(fontsize=8)
    return figure


def accuracy_figure(report: dict[str, Any]):
    """Accuracy against weight sparsity, one labelled point per variant."""
    points = [v for v in report["variants"] if v["accuracy"] is not None]
    if not points:
        return None
    names: dict[tuple[float, float], list[str]] = {}
    for variant in points:
        names.setdefault((100 * variant["weight_sparsity"], 100 * variant["accuracy"]), []).append(variant["name"])
    figure = _figure(width=6.0)
    axes = figure.add_subplot()
    for index, ((x, y), labels) in enumerate(names.items()):
        axes.scatter([x], [y], color=f"C{index}", s=40)
        axes.annotate(", ".join(labels), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axes.set_xlabel("weight sparsity (%)")
    axes.set_ylabel("accuracy (%)")
    lowest = min(y for _, y in names)
    axes.set_ylim(max(0.0, 5 * (lowest // 5) - 5), 100.5)  # at least 5 points of context: 0.2 points must not look like a cliff
    axes.grid(alpha=0.3)
    return figure


def layer_sparsity_figure(report: dict[str, Any]):
    """Sparsity of every layer, one bar per variant that lists layers."""
    variants = [v for v in report["variants"] if v["layers"]]
    if not variants:
        return None
    shapes = {layer["fqn"]: layer["shape"] for v in variants for layer in v["layers"]}
    fqns = list(shapes)
    series = {}
    for v in variants:
        by_fqn = {layer["fqn"]: 100 * layer["sparsity_ratio"] for layer in v["layers"]}
        series[v["name"]] = [by_fqn.get(fqn) for fqn in fqns]
    figure = _figure()
    axes = figure.add_subplot()
    _grouped_bars(axes, groups=[layer_label(fqn, shapes[fqn]) for fqn in fqns], series=series)
    axes.set_ylabel("sparsity (%)")
    axes.set_ylim(0, 100)
    axes.legend(fontsize=7)
    return figure


def layer_label(fqn: str, shape: list[int] | None = None) -> str:
    """A layer named by its module: ``conv1`` for ``conv1.weight``; a bare index of a Sequential gets
    its kind (``0 conv``, ``9 linear``) from the weight's rank."""
    module = fqn.removesuffix(".weight")
    if module.rpartition(".")[2].isdigit() and shape:
        return f"{module} {'conv' if len(shape) == 4 else 'linear' if len(shape) == 2 else 'layer'}"
    return module


def kernel_figure(report: dict[str, Any]):
    """Per-layer sparsity coloured by whether the kernel chosen skips zero weight blocks."""
    rows = report.get("kernels", [])
    if not rows:
        return None
    figure = _figure(height=max(2.0, 0.35 * len(rows) + 1.0))
    axes = figure.add_subplot()
    labels = [layer_label(r["fqn"], r.get("shape")) for r in rows]
    colors = ["C2" if r["skips_zero_blocks"] else "C7" for r in rows]
    axes.barh(range(len(rows)), [100 * r["sparsity_ratio"] for r in rows], color=colors)
    axes.set_yticks(range(len(rows)), labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("sparsity (%): green = kernel skips zero blocks, grey = computes every block")
    return figure


def robust_figure(report: dict[str, Any]):
    """Clean and attacked accuracy per variant, or ``None`` when no variant has robust numbers."""
    variants = [v for v in report["variants"] if v.get("robust_accuracy")]
    if not variants:
        return None
    attacks = list(dict.fromkeys(a for v in variants for a in v["robust_accuracy"]))
    series = {"clean": [None if v["accuracy"] is None else 100 * v["accuracy"] for v in variants]}
    for attack in attacks:
        series[attack] = [
            100 * v["robust_accuracy"][attack] if attack in v["robust_accuracy"] else None for v in variants
        ]
    figure = _figure()
    axes = figure.add_subplot()
    _grouped_bars(axes, groups=[v["name"] for v in variants], series=series)
    axes.set_ylabel("accuracy (%)")
    axes.set_ylim(0, 100)
    axes.legend(fontsize=8)
    return figure


PLOTS: tuple[tuple[str, str, Callable[[dict[str, Any]], Any]], ...] = (
    ("latency", "Latency per variant and runtime", latency_figure),
    ("size", "Model size per variant", size_figure),
    ("accuracy", "Accuracy vs weight sparsity", accuracy_figure),
    ("layer-sparsity", "Per-layer sparsity", layer_sparsity_figure),
    ("kernels", "Per-layer kernel choice", kernel_figure),
    ("robust", "Robust accuracy", robust_figure),
)


def report_plots(report: dict[str, Any]) -> list[Plot]:
    """Render every plot that has data, in reading order."""
    plots = []
    for key, title, draw in PLOTS:
        figure = draw(report)
        if figure is not None:
            plots.append(Plot(key, title, _png(figure)))
    return plots
