"""Change the report of a finished run in place: rewrite report.json / .md / .html and the report
stage's manifest record (artifact digests, metrics), under the run's lock."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from pipeline.errors import UserError

Change = Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], None]  # (report, manifest, report record)


def finished_report_record(manifest: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    for record in reversed(manifest["stages"]):
        if record["name"] == "report" and record["status"] == "done":
            return record
    raise UserError(f"{run_dir} has no finished report stage; finish the run with `compress run --resume --out {run_dir}`")


def update_run_report(run_dir: Path, change: Change) -> dict[str, Any]:
    """Apply ``change(report, manifest, record)`` to the run's report, write it, record the new
    digests in the manifest; returns the report."""
    from deploy.report import load_report, write_report
    from pipeline.manifest import Artifact, read_manifest, write_manifest
    from pipeline.run_lock import run_lock

    run_dir = Path(run_dir).resolve()
    with run_lock(run_dir):
        manifest = read_manifest(run_dir)
        record = finished_report_record(manifest, run_dir)
        report_path = run_dir / record["outputs"]["report-json"]["path"]
        report = load_report(report_path)
        change(report, manifest, record)
        paths = write_report(report, report_path.parent)
        for role, kind in (("report-json", "json"), ("report-md", "md"), ("report-html", "html")):
            record["outputs"][role] = Artifact.of(role, paths[kind], run_dir=run_dir, stage=record["name"]).to_dict()
        write_manifest(run_dir, manifest)
    return report
