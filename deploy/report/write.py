"""Write one report: report.json (validated), report.md and a self-contained report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deploy.report.files import atomic_write_bytes, atomic_write_text, report_json
from deploy.report.headline import report_headline
from deploy.report.html import (
    html_figure,
    html_headline,
    html_notes,
    html_page,
    html_table,
)
from deploy.report.markdown import markdown_document
from deploy.report.plots import Plot, report_plots
from deploy.report.schema import validate_report
from deploy.report.tables import Table, report_tables


def report_title(report: dict[str, Any]) -> str:
    """``"compress report: lenet5 -> arm64"``."""
    return f"compress report: {report['run']['model']} -> {report['run']['target']}"


def render_html(report: dict[str, Any], *, tables: list[Table], plots: list[Plot]) -> str:
    """The report page: headline, run facts, plots, then the remaining tables and notes."""
    first, rest = tables[:1], tables[1:]
    figures = "".join(html_figure(plot, caption=plot.title) for plot in plots)
    body = (
        html_headline(report_headline(report))
        + "".join(html_table(t) for t in first)
        + f'<section id="plots"><h2>Plots</h2>{figures}</section>'
        + "".join(html_table(t) for t in rest)
        + html_notes(report.get("notes", []))
    )
    return html_page(title=report_title(report), body=body)


def write_report(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Validate ``report`` and write it as JSON, Markdown and HTML into ``out_dir``.

    Everything is rendered before anything is written, and every file is written atomically,
    so a failure leaves no half-written report.

    Args:
        report: a ``compress-report/1`` dict (see deploy/report/SCHEMA.md).
        out_dir: destination folder (created when missing).

    Returns:
        ``{"json": report.json, "md": report.md, "html": report.html, "plot:<key>": plots/<key>.png}``.

    Raises:
        ReportSchemaError: when ``report`` does not follow the schema (nothing is written).
    """
    validate_report(report)
    out_dir = Path(out_dir)
    tables = report_tables(report)
    plots = report_plots(report)
    images = [(plot.title, f"plots/{plot.key}.png") for plot in plots]
    markdown = markdown_document(
        title=report_title(report), tables=tables, images=images, notes=report.get("notes", []),
        headline=report_headline(report),
    )
    html = render_html(report, tables=tables, plots=plots)
    paths: dict[str, Path] = {}
    for plot in plots:
        paths[f"plot:{plot.key}"] = atomic_write_bytes(out_dir / "plots" / f"{plot.key}.png", plot.png)
    paths["json"] = atomic_write_text(out_dir / "report.json", report_json(report))
    paths["md"] = atomic_write_text(out_dir / "report.md", markdown)
    paths["html"] = atomic_write_text(out_dir / "report.html", html)
    return paths
