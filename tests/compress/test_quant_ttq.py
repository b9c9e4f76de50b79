"""TTQ operator: forward levels, the paper's gradients (Zhu et al., ICLR 2017), masks, projection and initial scales."""

import pytest
import torch

from compress.quant import project_ttq, ttq_initial_scales, ttq_ternarize


def _weight() -> torch.Tensor:
    return torch.tensor([[1.0, -0.8, 0.02, -0.03], [0.5, -0.04, 0.3, -0.9]])


def test_ttq_ternarize_forward_gives_levels_wp_zero_minus_wn():
    weight = _weight()
    out = ttq_ternarize(weight, torch.tensor([2.0]), torch.tensor([3.0]), threshold_ratio=0.05)
    delta = 0.05 * weight.abs().max()
    expected = torch.where(weight > delta, 2.0, torch.where(weight < -delta, -3.0, 0.0))
    assert torch.equal(out, expected)


@pytest.mark.parametrize("per_channel", [False, True])
def test_ttq_ternarize_backward_matches_spec_gradients(per_channel):
    weight = _weight().requires_grad_(True)
    groups = 2 if per_channel else 1
    pos = torch.full((groups,), 2.0, requires_grad=True)
    neg = torch.full((groups,), 3.0, requires_grad=True)
    upstream = torch.arange(1.0, 9.0).reshape(2, 4)
    (ttq_ternarize(weight, pos, neg, threshold_ratio=0.05) * upstream).sum().backward()
    peak = weight.detach().abs().amax(dim=1, keepdim=True) if per_channel else weight.detach().abs().max()
    positive, negative = weight.detach() > 0.05 * peak, weight.detach() < -0.05 * peak
    expected_weight = torch.where(positive, 2.0 * upstream, torch.where(negative, 3.0 * upstream, upstream))
    assert torch.equal(weight.grad, expected_weight)
    dims = 1 if per_channel else (0, 1)
    assert torch.allclose(pos.grad, (upstream * positive).sum(dim=dims).reshape(groups))
    assert torch.allclose(neg.grad, -(upstream * negative).sum(dim=dims).reshape(groups))


def test_ttq_ternarize_masked_entries_are_zero_and_get_no_gradient():
    weight = _weight().requires_grad_(True)
    mask = torch.tensor([[True, False, True, True], [False, True, True, True]])
    out = ttq_ternarize(weight, torch.tensor([1.0]), torch.tensor([1.0]), mask=mask)
    out.sum().backward()
    assert torch.all(out[~mask] == 0)
    assert torch.all(weight.grad[~mask] == 0)


def test_project_ttq_record_stores_signed_negative_level():
    weight = _weight()
    quantized = project_ttq(weight, torch.tensor([2.0]), torch.tensor([3.0]))
    record = quantized.to_record(fqn="w")
    assert record.scales == (2.0,) and record.neg_scales == (-3.0,)
    assert set(quantized.codes.unique().tolist()) <= {-1, 0, 1}
    assert torch.equal(quantized.dequantize(), ttq_ternarize(weight, torch.tensor([2.0]), torch.tensor([3.0])))


def test_ttq_initial_scales_are_support_means():
    weight = _weight()
    pos, neg = ttq_initial_scales(weight)
    delta = 0.05 * weight.abs().max()
    assert pos.item() == pytest.approx(weight[weight > delta].mean().item())
    assert neg.item() == pytest.approx(weight[weight < -delta].abs().mean().item())


def test_ttq_ternarize_rejects_scales_of_wrong_length():
    with pytest.raises(ValueError, match="length 1 or 2"):
        ttq_ternarize(_weight(), torch.ones(3), torch.ones(3))


def test_ttq_ternarize_rejects_threshold_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        ttq_ternarize(_weight(), torch.ones(1), torch.ones(1), threshold_ratio=1.5)
