"""``compress report RUN_DIR [--compare RUN_B]``: re-render a run's report, or two runs side by side."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.errors import UserError


def make_command(name: str) -> click.Command:
    @click.command(name=name)
    @click.argument("run_dir", type=click.Path(path_type=Path))
    @click.option("--compare", "other", default=None, type=click.Path(path_type=Path), help="second run directory to compare with")
    @click.option("--out", "out_dir", default=None, type=click.Path(path_type=Path), help="where to write compare.md / compare.html")
    def command(run_dir: Path, other: Path | None, out_dir: Path | None) -> None:
        """Re-render RUN_DIR's report (report.json -> .md / .html), or compare it with another run."""
        from deploy.report import ReportSchemaError, compare_reports, load_report, write_report

        try:
            report_a = load_report(find_report(run_dir))
            if other is None:
                paths = write_report(report_a, find_report(run_dir).parent)
            else:
                report_b = load_report(find_report(other))
                paths = compare_reports(report_a, report_b, out_dir or run_dir, labels=_labels(run_dir, other))
        except ReportSchemaError as error:
            raise UserError(f"report: {error}") from None
        for kind, path in paths.items():
            if not kind.startswith("plot:"):
                click.echo(f"{kind}: {path}")

    return command


def _labels(run_a: Path, run_b: Path) -> tuple[str, str]:
    names = (run_a.name or str(run_a), run_b.name or str(run_b))
    return names if names[0] != names[1] else (f"A: {names[0]}", f"B: {names[1]}")


def find_report(run_dir: Path) -> Path:
    """The ``report.json`` of a run directory (written by its report stage)."""
    from pipeline.manifest import read_manifest

    manifest = read_manifest(run_dir)
    for record in reversed(manifest["stages"]):
        if record["name"] == "report" and record["status"] == "done":
            return Path(run_dir) / record["outputs"]["report-json"]["path"]
    raise UserError(f"{run_dir} has no finished report stage; finish the run with `compress run --resume --out {run_dir}`")
