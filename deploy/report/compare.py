"""Side-by-side comparison of two reports: compare.md and compare.html."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deploy.report.files import atomic_write_text
from deploy.report.formatting import fmt_bytes, fmt_delta, fmt_ms, fmt_ratio_pct, fmt_speedup
from deploy.report.html import html_figure, html_page, html_table
from deploy.report.markdown import markdown_document
from deploy.report.plots import PLOTS, report_plots
from deploy.report.schema import validate_report
from deploy.report.upgrade import upgrade_report
from deploy.report.tables import Table, size_keys


def _check_labels(labels: tuple[str, str]) -> None:
    if len(labels) != 2 or not all(isinstance(x, str) and x for x in labels) or labels[0] == labels[1]:
        raise ValueError(f"labels must be two distinct non-empty strings, got {labels!r}")


def run_compare_table(a: dict[str, Any], b: dict[str, Any], *, labels: tuple[str, str]) -> Table:
    """Run facts of both reports, one row per field."""
    def facts(report: dict[str, Any]) -> dict[str, str]:
        run = report["run"]
        return {
            "model": run["model"], "target": run["target"], "created": run["created"],
            "cpu": str(run["machine"]["cpu_model"]), "cores": str(run["machine"]["logical_cores"]),
            "seed": str(run["seed"]), "data": str(run["data"]["name"]),
            "versions": ", ".join(f"{k} {v}" for k, v in run["versions"].items()),
        }

    fa, fb = facts(a), facts(b)
    rows = tuple((key, fa[key], fb[key]) for key in fa)
    return Table("run", "Run", ("field", *labels), rows)


def variants_compare_table(a: dict[str, Any], b: dict[str, Any], *, labels: tuple[str, str]) -> Table:
    """Accuracy, sparsity and sizes of variants present in either report, with deltas."""
    va = {v["name"]: v for v in a["variants"]}
    vb = {v["name"]: v for v in b["variants"]}
    keys = list(dict.fromkeys(size_keys(a) + size_keys(b)))
    la, lb = labels
    headers = ["variant", f"accuracy {la}", f"accuracy {lb}", "delta", f"sparsity {la}", f"sparsity {lb}"]
    headers += [f"{k} {label}" for k in keys for label in labels]
    rows = []
    for name in dict.fromkeys(list(va) + list(vb)):
        x, y = va.get(name, {}), vb.get(name, {})
        row = [name, fmt_ratio_pct(x.get("accuracy")), fmt_ratio_pct(y.get("accuracy")),
               fmt_delta(x.get("accuracy"), y.get("accuracy"), pct=True),
               fmt_ratio_pct(x.get("weight_sparsity")), fmt_ratio_pct(y.get("weight_sparsity"))]
        for key in keys:
            row += [fmt_bytes(x.get("size_bytes", {}).get(key)), fmt_bytes(y.get("size_bytes", {}).get(key))]
        rows.append(tuple(row))
    return Table("variants", "Variants", tuple(headers), tuple(rows))


def latency_compare_table(a: dict[str, Any], b: dict[str, Any], *, labels: tuple[str, str]) -> Table:
    """Median latency per (variant, runtime) in both reports and the speed-up of B over A."""
    la = {(r["variant"], r["runtime"]): r for r in a["latency"]}
    lb = {(r["variant"], r["runtime"]): r for r in b["latency"]}
    rows = []
    for key in dict.fromkeys(list(la) + list(lb)):
        x, y = la.get(key), lb.get(key)
        speedup = x["median_ms"] / y["median_ms"] if x and y and y["median_ms"] > 0 else None
        rows.append((key[0], key[1], fmt_ms(x and x["median_ms"]), fmt_ms(y and y["median_ms"]), fmt_speedup(speedup)))
    first, second = labels
    headers = ("variant", "runtime", f"median {first}", f"median {second}", f"speed-up {second} vs {first}")
    return Table("latency", "Latency", headers, tuple(rows))


def _pairs_html(a: dict[str, Any], b: dict[str, Any], *, labels: tuple[str, str]) -> str:
    plots_a = {p.key: p for p in report_plots(a)}
    plots_b = {p.key: p for p in report_plots(b)}
    sections = []
    for key, title, _ in PLOTS:
        if key in plots_a or key in plots_b:
            pair = html_figure(plots_a.get(key), caption=f"{labels[0]}: {title}") + html_figure(
                plots_b.get(key), caption=f"{labels[1]}: {title}"
            )
            sections.append(f'<h3>{title}</h3><div class="pair">{pair}</div>')
    return f'<section id="plots"><h2>Plots</h2>{"".join(sections)}</section>'


def compare_reports(
    report_a: dict[str, Any], report_b: dict[str, Any], out_dir: Path, *, labels: tuple[str, str] = ("A", "B")
) -> dict[str, Path]:
    """Write ``compare.md`` and ``compare.html`` putting two reports side by side.

    Args:
        report_a: the reference report (either report may be in an older schema: upgraded first).
        report_b: the report compared with it (speed-ups are A's median / B's median).
        out_dir: destination folder (created when missing).
        labels: names of the two reports in headers and captions.

    Returns:
        ``{"md": compare.md, "html": compare.html}``.

    Raises:
        ReportSchemaError: when either report is invalid (nothing is written).
        ValueError: when ``labels`` are not two distinct non-empty strings.
    """
    _check_labels(tuple(labels))
    report_a, report_b = upgrade_report(report_a), upgrade_report(report_b)
    validate_report(report_a)
    validate_report(report_b)
    labels = (labels[0], labels[1])
    tables = [builder(report_a, report_b, labels=labels)
              for builder in (run_compare_table, variants_compare_table, latency_compare_table)]
    title = f"compress comparison: {labels[0]} vs {labels[1]}"
    markdown = markdown_document(title=title, tables=tables)
    body = "".join(html_table(t) for t in tables) + _pairs_html(report_a, report_b, labels=labels)
    out_dir = Path(out_dir)
    return {
        "md": atomic_write_text(out_dir / "compare.md", markdown),
        "html": atomic_write_text(out_dir / "compare.html", html_page(title=title, body=body)),
    }
