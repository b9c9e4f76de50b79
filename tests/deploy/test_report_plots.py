"""Tests for deploy.report.plots."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from deploy.report.plots import report_plots
from deploy.report.sample import sample_report


def test_report_plots_are_non_blank_pngs_when_sample_rendered():
    plots = report_plots(sample_report())

    assert [p.key for p in plots] == [
        "latency", "size", "accuracy", "layer-sparsity", "kernels", "robust"
    ]
    for plot in plots:
        assert plot.png.startswith(b"\x89PNG\r\n\x1a\n")
        pixels = np.asarray(Image.open(io.BytesIO(plot.png)).convert("L"), dtype=np.float64)
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100
        assert pixels.std() > 5.0, f"plot {plot.key} looks blank"


def test_report_plots_skip_empty_sections_when_no_latency_or_kernels():
    report = sample_report()
    report["latency"] = []
    report["kernels"] = []

    keys = [p.key for p in report_plots(report)]

    assert "latency" not in keys and "kernels" not in keys
    assert "size" in keys
