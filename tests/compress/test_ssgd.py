"""SSGD specifics: the energy rule that prunes the vanishing weights, and the masked fine-tune phase."""

from __future__ import annotations

import pytest
import torch

from compress.optim import create_method
from compress.optim.loop import start_training
from compress.optim.ssgd import energy_mask
from tests.compress.test_methods import run_epochs, tiny_model


def test_energy_mask_keeps_smallest_prefix_holding_the_energy_fraction():
    w = torch.tensor([1.0, -3.0, 0.5, 0.0, 2.0])  # energies 1, 9, 0.25, 0, 4; total 14.25
    assert energy_mask(w, keep_energy=0.9).tolist() == [False, True, False, False, True]  # 13 >= 12.825
    assert energy_mask(w, keep_energy=0.95).tolist() == [True, True, False, False, True]  # 14 >= 13.5375
    assert energy_mask(w, keep_energy=1.0).tolist() == [True, True, True, False, True]


@pytest.mark.parametrize("keep_energy", [0.5, 0.9, 0.99, 0.999])
def test_energy_mask_bounds_the_pruned_energy_and_is_minimal(keep_energy):
    w = torch.randn(40, 30, generator=torch.Generator().manual_seed(0)).pow(3)
    mask = energy_mask(w, keep_energy=keep_energy)
    total = float(w.pow(2).sum())
    kept = float(w[mask].pow(2).sum())
    assert kept >= keep_energy * total * (1 - 1e-6)
    assert float(w[~mask].abs().max()) <= float(w[mask].abs().min())
    assert kept - float(w[mask].abs().min()) ** 2 < keep_energy * total


def test_energy_mask_keeps_the_bulk_next_to_an_outlier_where_a_max_relative_cut_does_not():
    w = torch.cat([torch.tensor([1000.0]), torch.full((999,), 5.0)])  # 1% of max|w| = 10 would cut all but one
    mask = energy_mask(w, keep_energy=0.999)
    assert int(mask.sum()) > 900 and bool(mask[0])


def test_energy_mask_of_zero_tensor_keeps_nothing():
    assert not bool(energy_mask(torch.zeros(3, 4), keep_energy=0.99).any())


def test_ssgd_finalize_without_fine_tune_applies_the_energy_rule_per_layer():
    model = tiny_model()
    method = create_method("ssgd", lr=0.05, sparsity_ratio=None, keep_energy=0.95, finetune_ratio=0.0)
    optimizer = start_training(method, model, total_steps=8)
    run_epochs(model, method, optimizer, epochs=2)
    expected = {fqn: w * energy_mask(w, keep_energy=0.95) for fqn, w in model.named_parameters() if w.dim() >= 2}
    method.finalize(model)
    for fqn, weight in model.named_parameters():
        if weight.dim() >= 2:
            assert torch.equal(weight, expected[fqn]), fqn
            assert 0 < int(weight.eq(0).sum()) < weight.numel(), fqn


def test_ssgd_fine_tune_keeps_the_mask_and_trains_the_survivors_with_the_plain_gradient():
    model = tiny_model()
    method = create_method("ssgd", lr=0.05, sparsity_ratio=None, keep_energy=0.9, ssgd_epochs=1)
    optimizer = start_training(method, model, total_steps=12)
    run_epochs(model, method, optimizer, epochs=1)
    assert method.fine_tuning
    pruned = {fqn: w.eq(0).clone() for fqn, w in model.named_parameters() if w.dim() >= 2}
    before = {fqn: w.detach().clone() for fqn, w in model.named_parameters()}
    run_epochs(model, method, optimizer, epochs=2, start_epoch=1)
    method.finalize(model)
    for fqn, weight in model.named_parameters():
        if weight.dim() >= 2:
            assert torch.equal(weight.eq(0), pruned[fqn]), fqn
            assert not torch.equal(weight, before[fqn]), fqn


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"keep_energy": 0.0}, "keep_energy must be in"), ({"keep_energy": 1.5}, "keep_energy must be in"), ({"ssgd_epochs": 0}, "ssgd_epochs must be"),
     ({"sparsity_ratio": 1.0}, "sparsity_ratio must be in")],
)
def test_ssgd_raises_on_invalid_pruning_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_method("ssgd", **kwargs)


def test_ssgd_default_prunes_one_global_magnitude_fraction_across_layers():
    model = tiny_model()
    method = create_method("ssgd", lr=0.05, sparsity_ratio=0.6, finetune_ratio=0.0)
    optimizer = start_training(method, model, total_steps=8)
    run_epochs(model, method, optimizer, epochs=2)
    weights = {fqn: w.detach().clone() for fqn, w in method.layers.weights(model)}
    magnitudes = torch.cat([w.abs().reshape(-1) for w in weights.values()])
    cut = magnitudes.kthvalue(round(0.6 * magnitudes.numel())).values
    method.finalize(model)
    for fqn, weight in method.layers.weights(model):
        kept = weight.detach() != 0
        assert torch.equal(kept, weights[fqn].abs() > cut), fqn
    zeros = sum(int(w.eq(0).sum()) for _, w in method.layers.weights(model))
    assert zeros == round(0.6 * magnitudes.numel())


def test_ssgd_cuts_on_a_cubic_ramp_and_a_cut_weight_stays_cut():
    model = tiny_model()
    method = create_method("ssgd", lr=0.05, sparsity_ratio=0.8, prune_rounds=4, finetune_ratio=0.5)
    optimizer = start_training(method, model, total_steps=16)  # 4 epochs of 4 steps: cuts after steps 2, 4, 6, 8

    def zeros():
        return {fqn: w.detach() == 0 for fqn, w in method.layers.weights(model)}

    total = sum(w.numel() for _, w in method.layers.weights(model))
    run_epochs(model, method, optimizer, epochs=1)
    first = zeros()
    assert sum(int(z.sum()) for z in first.values()) == round(0.8 * (1 - 0.5**3) * total)
    assert not method.fine_tuning
    run_epochs(model, method, optimizer, epochs=1, start_epoch=1)
    second = zeros()
    assert method.fine_tuning and sum(int(z.sum()) for z in second.values()) == round(0.8 * total)
    assert all(bool((second[fqn] | ~first[fqn]).all()) for fqn in first)


def test_ssgd_default_fine_tunes_the_last_third_of_the_steps():
    model = tiny_model()
    method = create_method("ssgd", lr=0.05)
    optimizer = start_training(method, model, total_steps=12)  # 3 epochs of 4 steps: switch after step 8
    run_epochs(model, method, optimizer, epochs=2)
    assert method.fine_tuning and method.steps == 8
    kept = {fqn: w.detach() != 0 for fqn, w in method.layers.weights(model)}
    run_epochs(model, method, optimizer, epochs=1, start_epoch=2)
    for fqn, weight in method.layers.weights(model):
        assert torch.equal(weight.detach() != 0, kept[fqn] & (weight.detach() != 0)), fqn
