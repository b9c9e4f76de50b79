"""One-shot per-layer sensitivity sweep."""

import pytest
import torch
from torch import nn

from compress.search import block_magnitude_prune, layer_sensitivity
from compress.types import BlockShape


def _model_and_data():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4))
    x = torch.randn(256, 8)
    y = model(x).argmax(dim=1)  # the model is perfect on its own labels
    return model, x, y


def test_layer_sensitivity_grows_with_sparsity_and_restores_weights():
    model, x, y = _model_and_data()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def evaluate(m):
        return float((m(x).argmax(dim=1) == y).float().mean())

    curves = layer_sensitivity(model, fqns=["0.weight", "2.weight"], levels=[0.0, 0.5, 0.9],
                               evaluate=evaluate, mask_function=block_magnitude_prune(BlockShape(4, 1)))
    assert set(curves) == {"0.weight", "2.weight"}
    for points in curves.values():
        assert points[0] == 0.0
        assert points[2] > 0.05  # 90% of the blocks gone costs accuracy
        assert points[2] >= points[1] - 1e-9
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_layer_sensitivity_rejects_unknown_layers_and_bad_levels():
    model, x, y = _model_and_data()
    with pytest.raises(ValueError, match="not parameters"):
        layer_sensitivity(model, fqns=["9.weight"], levels=[0.5], evaluate=lambda m: 1.0, mask_function=block_magnitude_prune(BlockShape(1, 1)))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        layer_sensitivity(model, fqns=["0.weight"], levels=[1.0], evaluate=lambda m: 1.0, mask_function=block_magnitude_prune(BlockShape(1, 1)))


def test_short_term_fine_tuning_recovers_and_everything_is_restored():
    model, x, y = _model_and_data()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def evaluate(m):
        return float((m(x).argmax(dim=1) == y).float().mean())

    def fine_tune(m, masks):
        optimizer = torch.optim.SGD(m.parameters(), lr=0.05)
        m.train()
        for _ in range(30):
            loss = nn.functional.cross_entropy(m(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for fqn, mask in masks.items():
                    dict(m.named_parameters())[fqn].mul_(mask)

    mask_function = block_magnitude_prune(BlockShape(4, 1))
    one_shot = layer_sensitivity(model, fqns=["0.weight"], levels=[0.0, 0.75], evaluate=evaluate, mask_function=mask_function)
    tuned = layer_sensitivity(model, fqns=["0.weight"], levels=[0.0, 0.75], evaluate=evaluate, mask_function=mask_function, fine_tune=fine_tune)
    assert tuned["0.weight"][1] < one_shot["0.weight"][1]  # fine-tuning wins accuracy back
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
