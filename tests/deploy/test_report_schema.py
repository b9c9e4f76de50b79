"""Tests for deploy.report.schema (the report schema validator)."""

from __future__ import annotations

import copy

import pytest

from deploy.report import ReportSchemaError, validate_report
from deploy.report.sample import sample_report


def _broken(mutate) -> dict:
    report = copy.deepcopy(sample_report())
    mutate(report)
    return report


def test_validate_report_accepts_sample_when_complete():
    validate_report(sample_report())


def test_validate_report_accepts_minimal_when_optional_sections_absent():
    report = sample_report()
    for key in ("kernels", "artifacts", "notes"):
        del report[key]
    for variant in report["variants"]:
        variant.pop("robust_accuracy", None)

    validate_report(report)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.update(schema="compress-report/9"), r"report\.schema: unsupported schema"),
        (lambda r: r["run"].pop("model"), r"report\.run: missing required key 'model'"),
        (lambda r: r["run"].update(modle="x"), r"report\.run: unknown key 'modle'"),
        (lambda r: r["run"].update(created="yesterday"), r"report\.run\.created: expected an ISO 8601"),
        (lambda r: r.update(variants=[]), r"report\.variants: expected a list of at least 1"),
        (lambda r: r["variants"][1].update(accuracy=1.5), r"report\.variants\[1\]\.accuracy: expected a value <= 1"),
        (lambda r: r["variants"][0]["size_bytes"].update(onnx="big"), r"size_bytes\.onnx: expected an integer"),
        (lambda r: r["variants"][0].update(params=True), r"report\.variants\[0\]\.params: expected an integer"),
        (lambda r: r["variants"][2]["layers"][0].update(nnz=10**6), r"layers\[0\]: nnz 1000000 > numel"),
        (lambda r: r["variants"][1].update(name="dense"), r"duplicate variant name 'dense'"),
        (lambda r: r["latency"][0].update(runtime="tflite"), r"report\.latency\[0\]\.runtime: expected one of torch"),
        (lambda r: r["latency"][0].update(variant="ghost"), r"report\.latency\[0\]\.variant: 'ghost' is not a variant"),
        (lambda r: r["latency"][0].update(p90_ms=0.001), r"report\.latency\[0\]: p90_ms 0.001 < median_ms"),
        (lambda r: r["latency"][0].update(median_ms=float("nan")), r"median_ms: expected a finite number"),
        (lambda r: r["kernels"][0].update(skips_zero_blocks="yes"), r"kernels\[0\]\.skips_zero_blocks: expected true or false"),
        (lambda r: r["kernels"][0].update(format="block-linear"), r"report\.kernels\[0\]: unknown key 'format'"),
        (lambda r: r["artifacts"]["model.onnx"].update(sha256="xyz"), r"sha256: expected 64 lowercase hex"),
        (lambda r: r["run"].update(baseline_variant="nope"), r"baseline_variant: 'nope' is not a variant"),
        (lambda r: r["notes"].append(3), r"report\.notes\[2\]: expected a string"),
    ],
)
def test_validate_report_raises_naming_path_when_report_invalid(mutate, message):
    report = _broken(mutate)

    with pytest.raises(ReportSchemaError, match=message):
        validate_report(report)


def test_validate_report_raises_when_report_not_a_dict():
    with pytest.raises(ReportSchemaError, match="report: expected an object"):
        validate_report(["not", "a", "report"])


def test_validate_report_error_is_one_line_when_value_long():
    report = _broken(lambda r: r["run"].update(seed="x" * 500))

    with pytest.raises(ReportSchemaError) as info:
        validate_report(report)

    assert "\n" not in str(info.value)
    assert len(str(info.value)) < 200
