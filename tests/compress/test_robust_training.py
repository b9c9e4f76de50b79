"""Tests for compress.robust.training.adversarial_loss (and its use with train_epoch)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compress.optim import create_method
from compress.optim.loop import start_training, train_epoch
from compress.robust import adversarial_loss, create_attack, robust_accuracy

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def setup(linear_model):
    """``(model, x, y)``: the shared linear model and 32 random samples with random labels."""
    generator = torch.Generator().manual_seed(1)
    return linear_model, torch.rand(32, 1, 16, generator=generator), torch.randint(0, 4, (32,), generator=generator)


def _ce(model, x, y):
    return nn.functional.cross_entropy(model(x), y)


def test_adversarial_loss_equals_clean_ce_when_trade_off_is_zero(setup):
    model, x, y = setup
    loss = adversarial_loss(create_attack("fgsm", eps=0.1), trade_off=0.0)(model, x, y)
    assert torch.allclose(loss, _ce(model, x, y))


def test_adversarial_loss_equals_adversarial_ce_when_trade_off_is_one(setup):
    model, x, y = setup
    attack = create_attack("fgsm", eps=0.1)
    loss = adversarial_loss(attack)(model, x, y)
    assert torch.allclose(loss, _ce(model, attack(model, x, y), y))
    assert loss > _ce(model, x, y)


def test_adversarial_loss_mixes_clean_and_adversarial_when_trade_off_is_between(setup):
    model, x, y = setup
    attack = create_attack("fgsm", eps=0.1)
    loss = adversarial_loss(attack, trade_off=0.25)(model, x, y)
    expected = 0.75 * _ce(model, x, y) + 0.25 * _ce(model, attack(model, x, y), y)
    assert torch.allclose(loss, expected)


@pytest.mark.parametrize("trade_off", [-0.1, 1.5])
def test_adversarial_loss_raises_when_trade_off_outside_unit_interval(trade_off):
    with pytest.raises(ValueError, match=f"trade_off must be in \\[0, 1\\]; got trade_off={trade_off}"):
        adversarial_loss(create_attack("fgsm"), trade_off=trade_off)


def test_adversarial_loss_backpropagates_into_parameters(setup):
    model, x, y = setup
    adversarial_loss(create_attack("pgd", eps=0.1, step_size=0.05, steps=2, seed=0))(model, x, y).backward()
    assert all(parameter.grad is not None and parameter.grad.abs().sum() > 0 for parameter in model.parameters())


def test_adversarial_loss_trains_with_a_sparse_method_through_train_epoch(setup):
    model, x, y = setup
    method = create_method("l1-prox", lr=0.1, lam=1e-3)
    optimizer = start_training(method, model, total_steps=40)
    attack = create_attack("pgd", eps=0.05, step_size=0.02, steps=3, seed=0)
    before = robust_accuracy(model, [(x, y)], attack)
    losses = [
        train_epoch(model, [(x, y)], method, optimizer, loss_fn=adversarial_loss(attack)) for _ in range(40)
    ]
    assert losses[-1] < losses[0]
    assert robust_accuracy(model, [(x, y)], attack) > before
