"""Tests for compress.models.enresnet: EnResNet20 and the small MNIST variant."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compress.models import create_model, list_models, model_input_shape
from compress.models.enresnet import NoiseInjection, set_noise_mode


pytestmark = pytest.mark.usefixtures("single_thread")


def test_enresnet_registers_both_variants_with_their_input_shapes():
    assert {"enresnet20", "enresnet-mnist"} <= set(list_models())
    assert model_input_shape("enresnet20") == (3, 32, 32)
    assert model_input_shape("enresnet-mnist") == (1, 28, 28)


def test_enresnet20_member_is_preact_resnet20_with_bias_free_convs():
    model = create_model("enresnet20", num_ensembles=1)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    three_by_three = [c for c in convs if c.kernel_size == (3, 3)]
    assert len(three_by_three) == 19  # stem + 9 blocks x 2
    assert all(c.bias is None for c in convs)
    assert sorted({c.out_channels for c in convs}) == [16, 32, 64]
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_enresnet_ensemble_averages_member_logits():
    torch.manual_seed(0)
    model = create_model("enresnet-mnist", num_ensembles=3, noise_mode="off").eval()
    x = torch.rand(4, 1, 28, 28)
    members = torch.stack([member(x) for member in model.members])
    assert torch.allclose(model(x), members.mean(dim=0), atol=1e-6)
    assert not torch.allclose(members[0], members[1])  # independently parameterised


def test_enresnet_injects_noise_at_eval_when_mode_is_always():
    model = create_model("enresnet-mnist", num_ensembles=1).eval()
    x = torch.rand(4, 1, 28, 28)
    assert not torch.equal(model(x), model(x))


def test_enresnet_is_deterministic_at_eval_when_mode_is_train():
    model = create_model("enresnet-mnist", num_ensembles=1, noise_mode="train")
    x = torch.rand(4, 1, 28, 28)
    model.eval()
    assert torch.equal(model(x), model(x))
    set_noise_mode(model, "always")
    assert not torch.equal(model(x), model(x))


def test_noise_injection_scales_noise_by_coef_times_std():
    torch.manual_seed(0)
    layer = NoiseInjection(noise_coef=0.5, trainable=False, noise_mode="always")
    x = 3.0 * torch.randn(64, 8, 8, 8)
    noise = layer(x) - x
    assert abs(float(noise.std()) / (0.5 * float(x.std())) - 1.0) < 0.02


def test_enresnet_learns_noise_coef_when_trainable():
    model = create_model("enresnet-mnist", num_ensembles=1, trainable_noise=True)
    coefs = [p for name, p in model.named_parameters() if name.endswith("noise_coef")]
    model(torch.rand(4, 1, 28, 28)).sum().backward()
    assert len(coefs) == 3 and all(c.grad is not None for c in coefs)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"noise_mode": "test"}, "unknown noise_mode 'test'; allowed: always, train, off"),
        ({"num_ensembles": 0}, "num_ensembles must be >= 1; got num_ensembles=0"),
        ({"noise_coef": -0.1}, "noise_coef must be >= 0; got noise_coef=-0.1"),
    ],
)
def test_enresnet_raises_naming_the_bad_value_when_invalid(kwargs, error):
    with pytest.raises(ValueError, match=error):
        create_model("enresnet-mnist", **kwargs)


def test_enresnet_trains_a_few_steps():
    torch.manual_seed(0)
    model = create_model("enresnet-mnist", num_ensembles=2)
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
