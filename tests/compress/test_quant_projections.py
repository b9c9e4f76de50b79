"""Binary / ternary / TWN / int8 projections: optimality against brute force, formulas, codes, masks."""

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compress.quant import (
    PROJECTIONS,
    QuantizedTensor,
    codes_from_weight,
    dequantize,
    get_projection,
    project_binary,
    project_int8,
    project_ternary_exact,
    project_twn,
    record_scales,
)
from compress.types import QuantRecord

VALUES = st.floats(-10, 10, allow_nan=False, allow_subnormal=False, width=32)
VECTORS = st.lists(VALUES, min_size=1, max_size=6)


def _distance(w: np.ndarray, target: np.ndarray) -> float:
    return float(np.sum((w.astype(np.float64) - target.astype(np.float64)) ** 2))


def _brute_force(w: np.ndarray, levels: tuple[int, ...]) -> float:
    """min over codes t in levels^n and alpha >= 0 of ||w - alpha t||^2."""
    w = w.astype(np.float64)
    best = float(np.sum(w**2))
    for codes in itertools.product(levels, repeat=len(w)):
        t = np.array(codes, dtype=np.float64)
        norm = float(t @ t)
        if norm > 0:
            alpha = max(float(w @ t) / norm, 0.0)
            best = min(best, float(np.sum((w - alpha * t) ** 2)))
    return best


@settings(max_examples=60, deadline=None, database=None)
@given(VECTORS)
def test_project_ternary_exact_matches_brute_force_distance(values):
    weight = torch.tensor(values, dtype=torch.float32)
    projected = project_ternary_exact(weight).dequantize().numpy()
    best = _brute_force(weight.numpy(), (-1, 0, 1))
    assert _distance(weight.numpy(), projected) <= best + 1e-5 * (1 + float(np.sum(weight.numpy().astype(np.float64) ** 2)))


@settings(max_examples=40, deadline=None, database=None)
@given(VECTORS)
def test_project_binary_matches_brute_force_distance(values):
    weight = torch.tensor(values, dtype=torch.float32)
    projected = project_binary(weight).dequantize().numpy()
    best = _brute_force(weight.numpy(), (-1, 1))
    assert _distance(weight.numpy(), projected) <= best + 1e-5 * (1 + float(np.sum(weight.numpy().astype(np.float64) ** 2)))


def test_project_binary_uses_mean_absolute_value_and_signs():
    weight = torch.tensor([0.5, -1.5, 0.0, 2.0])
    quantized = project_binary(weight)
    assert quantized.scheme == "binary" and quantized.bits == 1
    assert quantized.codes.tolist() == [1, -1, 1, 1]
    assert quantized.scales.tolist() == [pytest.approx(1.0)]


def test_project_twn_follows_threshold_formula():
    weight = torch.tensor([[3.0, -0.1, 0.5, -2.0, 0.2, 0.0]])
    delta = 0.7 * weight.abs().mean()
    support = weight.abs() > delta
    quantized = project_twn(weight)
    assert torch.equal(quantized.codes, (torch.sign(weight) * support).to(torch.int8))
    assert quantized.scales.item() == pytest.approx(weight.abs()[support].mean().item())


@settings(max_examples=30, deadline=None, database=None)
@given(st.integers(1, 5), st.integers(1, 12), st.integers(0, 10_000), st.sampled_from(sorted(PROJECTIONS)))
def test_project_per_channel_equals_projecting_each_channel(channels, width, seed, name):
    weight = torch.randn(channels, width, generator=torch.Generator().manual_seed(seed))
    projection = get_projection(name)
    whole = projection(weight, per_channel=True).dequantize()
    rows = torch.cat([projection(row.unsqueeze(0), per_channel=False).dequantize() for row in weight])
    assert torch.equal(whole, rows)


@pytest.mark.parametrize(
    ("name", "allowed"),
    [("binary", {-1, 1}), ("ternary", {-1, 0, 1}), ("twn", {-1, 0, 1}), ("int8", set(range(-127, 128)))],
)
@pytest.mark.parametrize("per_channel", [False, True])
def test_project_codes_lie_in_scheme_alphabet(name, allowed, per_channel):
    weight = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(1))
    quantized = get_projection(name)(weight, per_channel=per_channel)
    assert quantized.codes.dtype == torch.int8
    assert set(quantized.codes.unique().tolist()) <= allowed
    assert quantized.scales.shape == ((6,) if per_channel else (1,))


@settings(max_examples=30, deadline=None, database=None)
@given(st.integers(1, 4), st.integers(1, 20), st.integers(0, 10_000), st.sampled_from(sorted(PROJECTIONS)), st.booleans())
def test_project_record_round_trip_is_exact(channels, width, seed, name, per_channel):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(channels, width, generator=generator) * 0.05
    quantized = get_projection(name)(weight, per_channel=per_channel)
    record = QuantRecord.from_dict(quantized.to_record(fqn="layer.weight").to_dict())
    scales, neg = record_scales(record)
    written = quantized.dequantize()
    assert torch.equal(dequantize(quantized.codes, scales, neg_scales=neg), written)
    assert torch.equal(codes_from_weight(written, record), quantized.codes)


def test_project_int8_error_is_at_most_half_a_step():
    weight = torch.randn(8, 50, generator=torch.Generator().manual_seed(2))
    quantized = project_int8(weight, per_channel=True)
    step = quantized.scales.unsqueeze(1)
    assert torch.all((quantized.dequantize() - weight).abs() <= step / 2 + 1e-7)
    assert torch.equal(quantized.codes.abs().amax(dim=1), torch.full((8,), 127, dtype=torch.int8))


@settings(max_examples=40, deadline=None, database=None)
@given(st.lists(st.tuples(VALUES, st.booleans()), min_size=1, max_size=7), st.sampled_from(sorted(PROJECTIONS)))
def test_project_keeps_masked_entries_zero_and_zero_set_only_grows(entries, name):
    weight = torch.tensor([value for value, _ in entries])
    mask = torch.tensor([keep for _, keep in entries])
    weight = weight * mask
    quantized = get_projection(name)(weight, per_channel=False, mask=mask)
    assert torch.all(quantized.codes[~mask] == 0)
    assert torch.all(quantized.dequantize()[~mask] == 0)
    if name != "binary":  # binary has no zero level: an in-support exact zero maps to +alpha
        assert torch.all(quantized.dequantize()[weight == 0] == 0)


@settings(max_examples=40, deadline=None, database=None)
@given(st.lists(st.tuples(VALUES, st.booleans()), min_size=1, max_size=6))
def test_project_ternary_exact_with_mask_equals_projection_of_the_support(entries):
    weight = torch.tensor([value for value, _ in entries])
    mask = torch.tensor([keep for _, keep in entries])
    masked = project_ternary_exact(weight, mask=mask).dequantize()
    if mask.any():
        alone = project_ternary_exact(weight[mask]).dequantize()
        kept = weight[mask].numpy()
        assert _distance(kept, masked[mask].numpy()) <= _distance(kept, alone.numpy()) + 1e-5 * (1 + float(np.sum(kept.astype(np.float64) ** 2)))


def test_project_binary_with_sparse_mask_is_stored_as_ternary_with_mean_over_support():
    weight = torch.tensor([1.0, -3.0, 0.0, 0.0])
    quantized = project_binary(weight, mask=weight != 0)
    assert (quantized.scheme, quantized.bits) == ("ternary", 2)
    assert quantized.codes.tolist() == [1, -1, 0, 0]
    assert quantized.scales.item() == pytest.approx(2.0)


def test_project_ternary_exact_gives_zero_scale_for_all_zero_channel():
    weight = torch.zeros(2, 4)
    weight[1] = torch.tensor([1.0, -1.0, 0.1, 0.0])
    quantized = project_ternary_exact(weight, per_channel=True)
    assert quantized.codes[0].tolist() == [0, 0, 0, 0]
    assert quantized.scales[0].item() == 0.0
    assert quantized.codes[1].tolist() == [1, -1, 0, 0]


def test_project_rejects_mask_of_wrong_shape_or_dtype():
    weight = torch.randn(3, 4)
    with pytest.raises(ValueError, match="mask shape"):
        project_twn(weight, mask=torch.ones(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        project_binary(weight, mask=torch.ones(3, 4))


def test_get_projection_raises_naming_allowed_when_unknown():
    with pytest.raises(KeyError, match="allowed: binary, int8, ternary, twn"):
        get_projection("quaternary")


def test_quantized_tensor_rejects_unknown_scheme():
    with pytest.raises(ValueError, match="allowed"):
        QuantizedTensor(codes=torch.zeros(2, dtype=torch.int8), scales=torch.ones(1), scheme="int4", bits=4)


def test_codes_from_weight_raises_when_weight_not_representable():
    quantized = project_ternary_exact(torch.tensor([[1.0, -2.0, 0.1]]))
    record = quantized.to_record(fqn="w")
    with pytest.raises(ValueError, match="not exactly representable"):
        codes_from_weight(torch.tensor([[1.0, -2.0, 0.1]]), record)
