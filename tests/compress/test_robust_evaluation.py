"""Tests for compress.robust.evaluation.robust_accuracy."""

from __future__ import annotations

import pytest
import torch

from compress.optim.loop import evaluate
from compress.robust import create_attack, robust_accuracy


pytestmark = pytest.mark.usefixtures("single_thread")


def _batches(model):
    """Two batches of 32 random inputs labelled by ``model`` itself."""
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(64, 1, 16, generator=generator)
    with torch.no_grad():
        y = model(x).argmax(1)  # the model is right on every clean sample
    return [(x[:32], y[:32]), (x[32:], y[32:])]


def test_robust_accuracy_equals_natural_accuracy_when_eps_is_zero(linear_model):
    model, batches = linear_model, _batches(linear_model)
    assert robust_accuracy(model, batches, create_attack("fgsm", eps=0.0)) == evaluate(model, batches) == 1.0


def test_robust_accuracy_drops_below_natural_when_attacked(linear_model):
    model, batches = linear_model, _batches(linear_model)
    attacked = robust_accuracy(model, batches, create_attack("ifgsm", eps=0.5, step_size=0.1, steps=10))
    assert attacked < 0.5


def test_robust_accuracy_restores_training_mode(linear_model):
    model, batches = linear_model, _batches(linear_model)
    model.train()
    robust_accuracy(model, batches, create_attack("fgsm", eps=0.1))
    assert model.training


def test_robust_accuracy_raises_when_batches_are_empty(linear_model):
    model = linear_model
    with pytest.raises(ValueError, match="no samples"):
        robust_accuracy(model, [], create_attack("fgsm"))


def test_robust_accuracy_runs_on_a_noisy_enresnet_ensemble():
    from compress.models import create_model

    torch.manual_seed(0)
    model = create_model("enresnet-mnist", num_ensembles=2)
    x, y = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    accuracy = robust_accuracy(model, [(x, y)], create_attack("pgd", eps=0.3, step_size=0.1, steps=2, seed=0))
    assert 0.0 <= accuracy <= 1.0 and model.training
