"""Masks: attach, bake, re-apply; AGP schedule; unstructured magnitude / threshold pruning."""

import pytest
import torch
from torch import nn

from compress.models import create_model
from compress.prune import (
    agp_sparsity,
    apply_masks_,
    attach_masks,
    attached_masks,
    bake_masks,
    magnitude_masks,
    mask_gradients_,
    mask_sparsity,
    threshold_masks,
)
from compress.selection import ParamSelector

torch.set_num_threads(1)


def _lenet():
    torch.manual_seed(0)
    return create_model("lenet5")


def test_prune_masks_forward_uses_masked_weight_when_attached():
    model = _lenet()
    masks = magnitude_masks(model, sparsity_ratio=0.5)
    attach_masks(model, masks)
    weight = model.get_submodule("0").weight
    assert int(weight.eq(0).sum()) == round(0.5 * weight.numel())


def test_prune_masks_bake_writes_zeros_and_removes_masks():
    model = _lenet()
    masks = magnitude_masks(model, sparsity_ratio=0.7)
    attach_masks(model, masks)
    bake_masks(model)
    keys = list(model.state_dict())
    assert not any("parametrizations" in key or "mask" in key for key in keys)
    assert torch.equal(model.get_submodule("7").weight.ne(0), masks["7.weight"])
    assert attached_masks(model) == {}


def test_prune_masks_state_dict_keeps_dense_original_when_not_baked():
    model = _lenet()
    dense = model.get_submodule("0").weight.detach().clone()
    attach_masks(model, magnitude_masks(model, sparsity_ratio=0.5))
    assert torch.equal(model.state_dict()["0.parametrizations.weight.original"], dense)


def test_prune_masks_gradient_is_zero_on_pruned_weights_when_attached():
    model = _lenet()
    masks = magnitude_masks(model, sparsity_ratio=0.5)
    attach_masks(model, masks)
    model(torch.randn(2, 1, 28, 28)).sum().backward()
    grad = model.get_submodule("0").parametrizations.weight.original.grad
    assert bool(grad[~masks["0.weight"]].eq(0).all())


def test_prune_masks_reapply_keeps_pruned_weights_zero_after_momentum_steps():
    model = _lenet()
    masks = magnitude_masks(model, sparsity_ratio=0.6)
    apply_masks_(model, masks)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(4, 1, 28, 28)).pow(2).mean().backward()
        mask_gradients_(model, masks)
        optimizer.step()
        apply_masks_(model, masks)
    assert bool(model.get_submodule("3").weight[~masks["3.weight"]].eq(0).all())


def test_prune_masks_attach_raises_when_shape_differs():
    model = _lenet()
    with pytest.raises(ValueError, match="shape"):
        attach_masks(model, {"0.weight": torch.ones(3, 3, dtype=torch.bool)})


def test_prune_magnitude_reaches_per_layer_ratio():
    masks = magnitude_masks(_lenet(), sparsity_ratio=0.9)
    for fqn, mask in masks.items():
        assert abs((1 - mask.float().mean().item()) - 0.9) <= 1 / mask.numel(), fqn


def test_prune_magnitude_global_prunes_smallest_weights_overall():
    model = _lenet()
    masks = magnitude_masks(model, sparsity_ratio=0.8, scope="global")
    kept_min = min(float(w.detach().abs()[masks[f].bool()].min()) for f, w in _weights(model).items())
    dropped_max = max(float(w.detach().abs()[~masks[f].bool()].max()) for f, w in _weights(model).items())
    assert dropped_max <= kept_min
    assert abs(mask_sparsity(masks) - 0.8) < 1e-5


def _weights(model):
    return {f"{n}.weight": m.weight for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def test_prune_magnitude_skips_layers_when_excluded_by_pattern():
    masks = magnitude_masks(_lenet(), sparsity_ratio=0.5, layers=ParamSelector(exclude=("9", "0.*")))
    assert sorted(masks) == ["3.weight", "7.weight"]


def test_prune_magnitude_raises_when_scope_unknown():
    with pytest.raises(ValueError, match="allowed: layer, global"):
        magnitude_masks(_lenet(), sparsity_ratio=0.5, scope="network")


def test_prune_threshold_keeps_only_weights_above_threshold():
    model = _lenet()
    masks = threshold_masks(model, threshold=0.05)
    assert torch.equal(masks["7.weight"], model.get_submodule("7").weight.abs() > 0.05)


def test_prune_agp_follows_cubic_schedule():
    kwargs = dict(initial_ratio=0.0, final_ratio=0.8, start_step=10, num_updates=4, update_every=5)
    assert agp_sparsity(0, **kwargs) == 0.0
    assert agp_sparsity(10, **kwargs) == 0.0
    assert agp_sparsity(20, **kwargs) == pytest.approx(0.8 + (0.0 - 0.8) * (1 - 10 / 20) ** 3)
    assert agp_sparsity(22, **kwargs) == agp_sparsity(20, **kwargs)
    assert agp_sparsity(30, **kwargs) == pytest.approx(0.8)
    assert agp_sparsity(1000, **kwargs) == pytest.approx(0.8)


def test_prune_agp_is_monotone_non_decreasing():
    values = [agp_sparsity(t, initial_ratio=0.1, final_ratio=0.9, start_step=0, num_updates=10, update_every=3) for t in range(40)]
    assert all(a <= b for a, b in zip(values, values[1:]))


def test_prune_agp_raises_when_ratio_out_of_range():
    with pytest.raises(ValueError, match="final_ratio"):
        agp_sparsity(0, initial_ratio=0.0, final_ratio=1.5, start_step=0, num_updates=1, update_every=1)
