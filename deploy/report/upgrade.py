"""Read older ``report.json`` files: ``upgrade_report`` turns a ``compress-report/1`` dict into the
current schema, so ``load_report`` and ``compare_reports`` take the reports of earlier runs."""

from __future__ import annotations

from typing import Any

from deploy.report.schema import SCHEMA_ID

V1 = "compress-report/1"


def upgrade_report(report: Any) -> Any:
    """The report in the current schema; a dict of another schema (or no dict) is returned unchanged,
    for ``validate_report`` to judge.

    ``compress-report/1`` -> ``/2``: a kernel row's ``kernel`` (``sparse`` | ``dense``) becomes
    ``skips_zero_blocks`` (``true`` for ``sparse``), and its ``format`` (the kernel used, e.g.
    ``direct-conv``) becomes ``kernel`` (``unrecorded`` where the old row had none).
    """
    if not isinstance(report, dict) or report.get("schema") != V1:
        return report
    upgraded = {**report, "schema": SCHEMA_ID}
    if isinstance(report.get("kernels"), list):
        upgraded["kernels"] = [_kernel_row(row) for row in report["kernels"]]
    return upgraded


def _kernel_row(row: Any) -> Any:
    """A ``/1`` kernel row in ``/2`` keys, the key order kept; a row that was not valid ``/1`` is left as is."""
    if not isinstance(row, dict) or row.get("kernel") not in ("sparse", "dense"):
        return row
    upgraded = {}
    for key, value in row.items():
        if key == "kernel":
            upgraded["kernel"] = row.get("format", "unrecorded")
            upgraded["skips_zero_blocks"] = value == "sparse"
        elif key != "format":
            upgraded[key] = value
    return upgraded
