"""Change the report of a finished run in place: rewrite report.json / .md / .html and the report
stage's manifest record (artifact digests, metrics), under the run's lock."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from deploy.report import ReportSchemaError, load_report, write_report
from pipeline.errors import UserError
from pipeline.manifest import Artifact, open_run, write_manifest
from pipeline.run_files import check_tree
from pipeline.run_lock import run_lock

Change = Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], None]  # (report, manifest, report record)


def finished_report_record(manifest: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    for record in reversed(manifest["stages"]):
        if record["name"] == "report" and record["status"] == "done":
            return record
    raise UserError(f"{run_dir} has no finished report stage; finish the run with `compress run --resume --out {run_dir}`")


def update_run_report(run_dir: Path, change: Change | None = None) -> dict[str, Any]:
    """Apply ``change(report, manifest, record)`` to the run's report (none: re-render it as is),
    write it, record the new digests in the manifest; returns the report.

    Under the run's lock; the report is read through the confined, digest-checked resolver and its
    folder is checked for links before anything is written.
    """
    run_dir, _ = open_run(run_dir)  # a non-run directory is refused before the lock file is made
    with run_lock(run_dir, create=False):
        run_dir, manifest = open_run(run_dir)
        record = finished_report_record(manifest, run_dir)
        report_path = report_json_path(run_dir, record)
        check_tree(run_dir, report_path.parent.relative_to(run_dir))
        try:
            report = load_report(report_path)
            if change is not None:
                change(report, manifest, record)
            paths = write_report(report, report_path.parent)
        except ReportSchemaError as error:
            raise UserError(f"report: {report_path}: {error}") from None
        for role, kind in (("report-json", "json"), ("report-md", "md"), ("report-html", "html")):
            record["outputs"][role] = Artifact.of(role, paths[kind], run_dir=run_dir, stage=record["name"]).to_dict()
        write_manifest(run_dir, manifest)
    return report


def report_json_path(run_dir: Path, record: dict[str, Any]) -> Path:
    """The report stage's ``report.json``, confined to the run and matching its recorded sha256."""
    if "report-json" not in record["outputs"]:
        raise UserError(f"{run_dir}: the report stage's record lists no report-json output")
    return Artifact(**record["outputs"]["report-json"]).verified(run_dir)
