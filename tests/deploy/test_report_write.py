"""Tests for deploy.report.write and deploy.report.files."""

from __future__ import annotations

import json
import re

import pytest

from deploy.report import ReportSchemaError, load_report, write_report
from deploy.report.sample import sample_report


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("report")
    return out_dir, write_report(sample_report(), out_dir)


def test_write_report_returns_json_md_html_and_plots_when_report_valid(written):
    out_dir, paths = written

    assert paths["json"] == out_dir / "report.json"
    assert paths["md"] == out_dir / "report.md"
    assert paths["html"] == out_dir / "report.html"
    plot_keys = sorted(k for k in paths if k.startswith("plot:"))
    assert plot_keys == sorted(
        f"plot:{k}" for k in ("latency", "size", "accuracy", "layer-sparsity", "kernels", "robust")
    )
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    assert not list(out_dir.rglob("*.tmp"))


def test_write_report_json_round_trips_when_loaded(written):
    out_dir, paths = written

    assert load_report(paths["json"]) == sample_report()
    assert load_report(out_dir) == sample_report()


def test_write_report_html_is_self_contained_when_rendered(written):
    _, paths = written
    html = paths["html"].read_text(encoding="utf-8")

    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == 6
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script" not in html and "<link" not in html
    assert "<style>" in html
    assert "fc1.weight" in html


def test_write_report_markdown_has_tables_and_ratios_when_rendered(written):
    _, paths = written
    markdown = paths["md"].read_text(encoding="utf-8")

    assert "| variant | runtime | median | p90 | runs | threads | speed-up vs dense |" in markdown
    assert "| compiled | tvm-host | 0.071 ms |" in markdown
    assert "2.13x" in markdown
    assert "![Latency per variant and runtime](plots/latency.png)" in markdown
    assert "## Kernel choice" in markdown and "## Notes" in markdown


def test_write_report_omits_robust_plot_when_no_robust_accuracy(tmp_path):
    report = sample_report()
    for variant in report["variants"]:
        variant.pop("robust_accuracy", None)

    paths = write_report(report, tmp_path)

    assert "plot:robust" not in paths
    assert "Robust accuracy" not in paths["md"].read_text(encoding="utf-8")


def test_write_report_writes_nothing_when_report_invalid(tmp_path):
    report = sample_report()
    report["latency"][0]["runtime"] = "tflite"

    with pytest.raises(ReportSchemaError, match="runtime"):
        write_report(report, tmp_path / "out")

    assert not (tmp_path / "out").exists()


def test_load_report_raises_when_file_invalid(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "wrong.json").write_text(json.dumps({"schema": "compress-report/1"}))

    with pytest.raises(ValueError, match="not valid JSON"):
        load_report(tmp_path / "bad.json")
    with pytest.raises(ReportSchemaError, match="missing required key 'run'"):
        load_report(tmp_path / "wrong.json")
    with pytest.raises(FileNotFoundError, match="no report at"):
        load_report(tmp_path / "absent.json")
