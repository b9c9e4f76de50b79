"""Per-layer quantization report: bits per weight, zero fraction, scales."""

import pytest
import torch
from torch import nn

from compress.quant import create_quant_method, mean_bits_per_weight, quant_report, zero_ratio
from compress.types import QuantRecord


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))


def test_quant_report_lists_bits_zeros_and_scales_per_layer():
    model = _model()
    method = create_quant_method("ternary", mode="exact")
    method.finalize(model)
    rows = quant_report(model, method.records())
    assert [(row.fqn, row.scheme, row.bits) for row in rows] == [
        ("0.weight", "none", 32), ("2.weight", "ternary", 2), ("4.weight", "none", 32)
    ]
    middle = model[2].weight
    assert rows[1].zero_ratio == pytest.approx(float((middle == 0).float().mean()))
    assert rows[1].scales == method.records()[0].scales
    assert rows[1].to_dict()["scales"] == list(rows[1].scales)


def test_mean_bits_per_weight_and_zero_ratio_weight_by_layer_size():
    model = _model()
    method = create_quant_method("binary")
    method.finalize(model)
    rows = quant_report(model, method.records())
    assert mean_bits_per_weight(rows) == pytest.approx((24 * 32 + 30 * 1 + 10 * 32) / 64)
    assert zero_ratio(rows) == 0.0


def test_quant_report_raises_when_record_names_unknown_weight():
    record = QuantRecord(fqn="9.weight", scheme="binary", bits=1, shape=(1,), scales=(1.0,))
    with pytest.raises(ValueError, match="9.weight"):
        quant_report(_model(), [record])
