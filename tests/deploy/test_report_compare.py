"""Tests for deploy.report.compare."""

from __future__ import annotations

import re

import pytest

from deploy.report import ReportSchemaError, compare_reports
from deploy.report.sample import sample_report


def _faster_report() -> dict:
    report = sample_report()
    for row in report["latency"]:
        row["median_ms"] = row["median_ms"] / 2
        row["p90_ms"] = row["p90_ms"] / 2
    report["variants"][2]["accuracy"] = 0.9807
    return report


def test_compare_reports_writes_side_by_side_when_reports_valid(tmp_path):
    paths = compare_reports(sample_report(), _faster_report(), tmp_path, labels=("main", "pr"))

    assert set(paths) == {"md", "html"}
    markdown = paths["md"].read_text(encoding="utf-8")
    assert "| variant | runtime | median main | median pr | speed-up pr vs main |" in markdown
    assert "| dense | torch | 0.412 ms | 0.206 ms | 2.00x |" in markdown
    assert "| pruned | 98.97% | 98.07% | -0.90 pp |" in markdown
    html = paths["html"].read_text(encoding="utf-8")
    assert html.count('<div class="pair">') == 6
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 12


def test_compare_reports_shows_placeholder_when_plot_only_in_one_report(tmp_path):
    plain = sample_report()
    for variant in plain["variants"]:
        variant.pop("robust_accuracy", None)

    paths = compare_reports(sample_report(), plain, tmp_path)

    html = paths["html"].read_text(encoding="utf-8")
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 11
    assert '<p class="muted">no data</p><figcaption>B: Robust accuracy</figcaption>' in html


def test_compare_reports_marks_missing_variant_when_only_in_one_report(tmp_path):
    other = sample_report()
    other["variants"] = [v for v in other["variants"] if v["name"] != "quantized"]
    other["latency"] = [r for r in other["latency"] if r["variant"] != "quantized"]

    paths = compare_reports(sample_report(), other, tmp_path)

    assert "| quantized | 98.71% | - | - |" in paths["md"].read_text(encoding="utf-8")


def test_compare_reports_raises_when_labels_equal(tmp_path):
    with pytest.raises(ValueError, match="labels must be two distinct"):
        compare_reports(sample_report(), sample_report(), tmp_path, labels=("x", "x"))


def test_compare_reports_raises_when_a_report_invalid(tmp_path):
    bad = sample_report()
    del bad["run"]

    with pytest.raises(ReportSchemaError, match="missing required key 'run'"):
        compare_reports(sample_report(), bad, tmp_path / "out")

    assert not (tmp_path / "out").exists()
