"""Markdown rendering of report tables."""

from __future__ import annotations

from deploy.report.headline import Headline
from deploy.report.tables import Table


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table, *, level: int = 2) -> str:
    """One table as a GitHub-flavoured Markdown section (heading, header row, rows)."""
    lines = [f"{'#' * level} {table.title}", ""]
    lines.append("| " + " | ".join(_cell(h) for h in table.headers) + " |")
    lines.append("|" + "|".join("---" for _ in table.headers) + "|")
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows)
    if not table.rows:
        lines.append(f"\n_No {table.title.lower()} recorded._")
    return "\n".join(lines) + "\n"


def markdown_headline(headline: Headline) -> str:
    """The opening lines: in, out, verdict, and each warning as a quoted line."""
    lines = [f"**In:** {_cell(headline.went_in)}  ", f"**Out:** {_cell(headline.came_out)}  ", f"**Verdict:** {_cell(headline.verdict)}", ""]
    lines += [f"> **Warning:** {_cell(warning)}\n" for warning in headline.warnings]  # one quote each
    return "\n".join(lines) + "\n"


def markdown_document(
    *, title: str, tables: list[Table], images: list[tuple[str, str]] | None = None, notes: list[str] | None = None,
    headline: Headline | None = None,
) -> str:
    """A whole Markdown document.

    Args:
        title: top-level heading.
        tables: sections in order.
        images: ``(caption, relative path)`` pairs shown under "Plots".
        notes: free-text notes shown last.
        headline: the opening summary, under the title.

    Returns:
        The Markdown text.
    """
    parts = [f"# {title}\n"]
    if headline is not None:
        parts.append(markdown_headline(headline))
    parts.extend(markdown_table(table) for table in tables)
    if images:
        parts.append("## Plots\n\n" + "\n".join(f"![{caption}]({path})\n" for caption, path in images))
    if notes:
        parts.append("## Notes\n\n" + "\n".join(f"- {_cell(note)}" for note in notes) + "\n")
    return "\n".join(parts)
