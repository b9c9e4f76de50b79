"""The report opens with what went in, what came out, a one-line verdict and its warnings; plots a
person can read."""

from __future__ import annotations

import copy

from deploy.report.headline import report_headline
from deploy.report.plots import layer_label
from deploy.report.sample import sample_report
from deploy.report.write import write_report


def _report():
    report = copy.deepcopy(sample_report())
    report["variants"][-1]["size_bytes"]["onnx"] = report["variants"][0]["size_bytes"]["onnx"] // 40
    return report


def test_the_headline_gives_size_speed_and_accuracy_against_the_dense_input():
    report = _report()
    headline = report_headline(report)
    dense, final = report["variants"][0], report["variants"][-1]
    assert headline.went_in.startswith(report["run"]["model"]) and f"{dense['params']:,} parameters" in headline.went_in
    assert final["name"] in headline.came_out and report["run"]["target"] in headline.came_out
    assert "40x smaller than the dense fp32 ONNX" in headline.verdict
    best = max(r["ratio_vs_baseline"] for r in report["latency"] if r["variant"] != "dense" and r["runtime"].startswith("tvm"))
    assert f"{best:.2f}x faster than the dense model on onnxruntime" in headline.verdict
    assert f"accuracy {100 * (final['accuracy'] - dense['accuracy']):+.2f} points" in headline.verdict
    assert headline.warnings == []


def test_the_headline_warns_on_noisy_latency_limited_data_and_robust_subsets():
    report = _report()
    report["latency"][0]["p90_ms"] = 4 * report["latency"][0]["median_ms"]
    report["run"]["data"].update(train_limit=500, test_limit=200, samples=200, robust_samples=100)
    for variant in (report["variants"][0], report["variants"][-1]):
        variant["robust_accuracy"] = {"pgd": 0.9 if variant is report["variants"][0] else 0.85}
    headline = report_headline(report)
    assert "robust accuracy PGD -5.00 points" in headline.verdict
    text = " | ".join(headline.warnings)
    assert "is noisy (p90 4.0x the median)" in text and "first 500 training samples" in text
    assert "first 200 test samples" in text and "robust accuracy is measured on the first 100" in text


def test_markdown_and_html_open_with_the_headline(tmp_path):
    report = _report()
    report["run"]["data"]["train_limit"] = 64
    paths = write_report(report, tmp_path)
    markdown = paths["md"].read_text()
    assert markdown.index("**Verdict:**") < markdown.index("## Run")
    assert "> **Warning:** training used only the first 64" in markdown
    html = paths["html"].read_text()
    assert html.index('id="headline"') < html.index('id="run"') and 'class="warning"' in html


def test_layers_are_named_by_module():
    assert layer_label("features.conv1.weight", [8, 1, 3, 3]) == "features.conv1"
    assert layer_label("0.weight", [20, 1, 5, 5]) == "0 conv" and layer_label("9.weight", [10, 500]) == "9 linear"
