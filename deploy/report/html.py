"""Self-contained HTML rendering: inline CSS, plots as base64 PNG data URIs, no script, no network."""

from __future__ import annotations

import base64
from html import escape

from deploy.report.headline import Headline
from deploy.report.plots import Plot
from deploy.report.tables import Table

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
color:#1b1f24;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}tr:nth-child(even) td{background:#fbfcfd}
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#57606a}
img{max-width:100%;height:auto;border:1px solid #eaeef2}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1rem}.muted{color:#57606a}
#headline{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.5rem 1rem}
#headline .verdict{font-size:1.05rem;font-weight:600}.warning{color:#9a6700}
"""


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def html_table(table: Table) -> str:
    """A section with a heading and an HTML table (or a muted line when empty)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    if not table.rows:
        body = f'<tr><td colspan="{len(table.headers)}" class="muted">none recorded</td></tr>'
    return (
        f'<section id="{escape(table.key)}"><h2>{escape(table.title)}</h2>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>"
    )


def html_figure(plot: Plot | None, *, caption: str) -> str:
    """A figure with the plot inlined, or a muted placeholder when there is no plot."""
    if plot is None:
        return f'<figure><p class="muted">no data</p><figcaption>{escape(caption)}</figcaption></figure>'
    return (
        f'<figure><img src="{data_uri(plot.png)}" alt="{escape(plot.title)}" data-plot="{escape(plot.key)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def html_headline(headline: Headline) -> str:
    """The opening box: in, out, verdict, warnings."""
    warnings = "".join(f'<li class="warning">{escape(w)}</li>' for w in headline.warnings)
    return (
        f'<section id="headline"><p><b>In:</b> {escape(headline.went_in)}<br><b>Out:</b> {escape(headline.came_out)}</p>'
        f'<p class="verdict">{escape(headline.verdict)}</p>'
        + (f'<ul id="warnings">{warnings}</ul>' if warnings else "")
        + "</section>"
    )


def html_notes(notes: list[str]) -> str:
    """Notes as a list section ("" when there are none)."""
    if not notes:
        return ""
    items = "".join(f"<li>{escape(note)}</li>" for note in notes)
    return f'<section id="notes"><h2>Notes</h2><ul>{items}</ul></section>'


def html_page(*, title: str, body: str) -> str:
    """A complete HTML document around ``body``."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )
