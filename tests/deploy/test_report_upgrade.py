"""Tests for deploy.report.upgrade (reading compress-report/1 files)."""

from __future__ import annotations

import copy
import json

import pytest

from deploy.report import SCHEMA_ID, ReportSchemaError, compare_reports, load_report, upgrade_report, validate_report
from deploy.report.sample import sample_report


def _as_v1(report: dict) -> dict:
    """``report`` written the way compress-report/1 wrote it: kernel sparse|dense, the kernel's name in format."""
    old = copy.deepcopy(report)
    old["schema"] = "compress-report/1"
    old["kernels"] = [
        {"variant": row["variant"], "fqn": row["fqn"], "kernel": "sparse" if row["skips_zero_blocks"] else "dense",
         "format": row["kernel"], **{k: v for k, v in row.items() if k not in ("variant", "fqn", "kernel", "skips_zero_blocks")}}
        for row in report["kernels"]
    ]
    return old


def test_load_report_upgrades_v1_when_file_is_older(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps(_as_v1(sample_report())))

    report = load_report(tmp_path)

    assert report == sample_report()
    assert report["schema"] == SCHEMA_ID != "compress-report/1"
    assert list(report["kernels"][0]) == list(sample_report()["kernels"][0])  # key order kept


def test_upgrade_report_names_kernel_unrecorded_when_v1_row_had_no_format():
    old = _as_v1(sample_report())
    del old["kernels"][2]["format"]

    report = upgrade_report(old)

    validate_report(report)
    assert report["kernels"][2]["kernel"] == "unrecorded"
    assert report["kernels"][2]["skips_zero_blocks"] is sample_report()["kernels"][2]["skips_zero_blocks"]


def test_upgrade_report_leaves_current_and_unknown_schemas_alone():
    current = sample_report()
    future = {**sample_report(), "schema": "compress-report/9"}

    assert upgrade_report(current) is current
    with pytest.raises(ReportSchemaError, match="unsupported schema 'compress-report/9'"):
        validate_report(upgrade_report(future))


def test_validate_report_rejects_v1_when_not_upgraded():
    with pytest.raises(ReportSchemaError, match="unsupported schema 'compress-report/1'"):
        validate_report(_as_v1(sample_report()))


def test_compare_reports_takes_v1_beside_current(tmp_path):
    paths = compare_reports(_as_v1(sample_report()), sample_report(), tmp_path, labels=("old", "new"))

    assert "old" in paths["md"].read_text() and paths["html"].is_file()
