"""The report's kernel table gives a code kernel's library weight bytes next to the ONNX's."""

import pytest

from deploy.report import validate_report
from deploy.report.fields import ReportSchemaError
from deploy.report.sample import sample_report
from deploy.report.tables import kernels_table


def _report_with_payload(library_bytes):
    report = sample_report()
    report["kernels"][0].update(kernel="ternary-linear", library_bytes=library_bytes, onnx_bytes=9_000)
    return report


def test_kernels_table_shows_library_and_onnx_weight_bytes_when_reported():
    report = _report_with_payload(10_240)
    validate_report(report)
    table = kernels_table(report)
    row = table.rows[0]
    assert list(table.headers[5:7]) == ["library weights", "ONNX weights"]
    assert row[5] != "-" and row[6] != "-" and row[5] != row[6]
    assert all(other[5] == "-" for other in table.rows[1:])


def test_report_validation_refuses_negative_library_bytes():
    with pytest.raises(ReportSchemaError):
        validate_report(_report_with_payload(-1))
