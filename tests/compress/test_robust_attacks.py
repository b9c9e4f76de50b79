"""Tests for compress.robust.attacks: FGSM / IFGSM / PGD and the ATTACKS registry."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from compress.robust import ATTACKS, LinfAttack, create_attack, list_attacks

ATTACK_NAMES = ("fgsm", "ifgsm", "pgd")


pytestmark = pytest.mark.usefixtures("single_thread")


def _linear_model(*, seed: int = 0, features: int = 16) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(features, 4))


def _data(*, seed: int = 1, n: int = 32, features: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, features, generator=generator), torch.randint(0, 4, (n,), generator=generator)


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(x), y))


def _attack(name: str, *, eps: float, lo: float = 0.0, hi: float = 1.0, seed: int = 0) -> LinfAttack:
    if name == "fgsm":
        return create_attack(name, eps=eps, lo=lo, hi=hi, seed=seed)
    return create_attack(name, eps=eps, step_size=max(eps / 4, 0.01), steps=6, lo=lo, hi=hi, seed=seed)


def test_list_attacks_names_the_three_registered_attacks():
    assert list_attacks() == ["fgsm", "ifgsm", "pgd"]


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_attack_increases_loss_vs_clean(name):
    model, (x, y) = _linear_model(), _data()
    adversarial = _attack(name, eps=0.1)(model, x, y)
    assert _loss(model, adversarial, y) > _loss(model, x, y) + 1e-3


@pytest.mark.parametrize("name", ATTACK_NAMES)
@settings(max_examples=15, deadline=None)
@given(
    eps=st.floats(min_value=0.0, max_value=0.6),
    lo=st.sampled_from([0.0, -1.0]),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_attack_respects_eps_ball_and_valid_range(name, eps, lo, seed):
    model = _linear_model(seed=seed % 7)
    x, y = _data(seed=seed)
    x = lo + (1.0 - lo) * x
    adversarial = _attack(name, eps=eps, lo=lo, hi=1.0, seed=seed)(model, x, y)
    assert bool((adversarial <= x + eps).all()) and bool((adversarial >= x - eps).all())
    assert float(adversarial.min()) >= lo and float(adversarial.max()) <= 1.0


def test_fgsm_moves_every_unclipped_pixel_by_exactly_eps():
    model, (x, y) = _linear_model(), _data()
    x = 0.25 + 0.5 * x  # far from the range ends, so no clipping at eps = 0.1
    adversarial = create_attack("fgsm", eps=0.1)(model, x, y)
    delta = (adversarial - x).abs()
    assert torch.allclose(delta, torch.full_like(delta, 0.1), atol=1e-6)


def test_pgd_is_deterministic_when_seeded():
    model, (x, y) = _linear_model(), _data()
    first = create_attack("pgd", eps=0.2, step_size=0.05, steps=3, seed=7)(model, x, y)
    second = create_attack("pgd", eps=0.2, step_size=0.05, steps=3, seed=7)(model, x, y)
    other = create_attack("pgd", eps=0.2, step_size=0.05, steps=3, seed=8)(model, x, y)
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_pgd_uses_the_given_generator_when_passed():
    model, (x, y) = _linear_model(), _data()
    attack = create_attack("pgd", eps=0.2, step_size=0.05, steps=1, seed=1)
    first = attack(model, x, y, generator=torch.Generator().manual_seed(5))
    second = attack(model, x, y, generator=torch.Generator().manual_seed(5))
    assert torch.equal(first, second)


class _ModeRecorder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 4)
        self.seen_training: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen_training.append(self.training)
        return self.linear(x.flatten(1))


def test_attack_runs_in_eval_mode_and_restores_modes():
    model = nn.Sequential(_ModeRecorder(), nn.Dropout(0.5))
    model.train()
    model[1].eval()  # a mixed-mode model must come back exactly as it was
    x, y = _data()
    create_attack("ifgsm", eps=0.1, step_size=0.05, steps=2)(model, x, y)
    assert model[0].seen_training == [False, False]
    assert model.training and model[0].training and not model[1].training


def test_attack_leaves_parameter_gradients_untouched():
    model, (x, y) = _linear_model(), _data()
    create_attack("pgd", eps=0.1, step_size=0.05, steps=2, seed=0)(model, x, y)
    assert all(parameter.grad is None for parameter in model.parameters())


def test_attack_works_when_called_under_no_grad():
    model, (x, y) = _linear_model(), _data()
    with torch.no_grad():
        adversarial = create_attack("fgsm", eps=0.1)(model, x, y)
    assert not torch.equal(adversarial, x)


def test_attack_rejects_inputs_outside_the_valid_range():
    model, (x, y) = _linear_model(), _data()
    with pytest.raises(ValueError, match=r"valid range \[0.0, 1.0\]"):
        create_attack("fgsm", eps=0.1)(model, x + 2.0, y)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps": -0.1}, "eps must be >= 0; got eps=-0.1"),
        ({"step_size": 0.0}, "step_size must be > 0; got step_size=0.0"),
        ({"steps": 0}, "steps must be an int >= 1; got steps=0"),
        ({"lo": 1.0, "hi": 0.0}, "lo < hi; got lo=1.0, hi=0.0"),
    ],
)
def test_create_attack_raises_naming_the_bad_setting_when_invalid(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        create_attack("pgd", **kwargs)


def test_create_attack_raises_listing_allowed_names_when_unknown():
    with pytest.raises(KeyError, match="allowed: fgsm, ifgsm, pgd"):
        create_attack("cw")


def test_attacks_registry_raises_on_duplicate_name():
    with pytest.raises(ValueError, match="duplicate attack name 'pgd'"):
        ATTACKS.register("pgd")(lambda: None)


# --- agreement with an independent implementation (the formulas written out with plain autograd) ---

def _reference_attack(model, x, y, *, eps, alpha, steps, start_noise, lo, hi, mean, std):
    """x is standardised: undo it, start (optionally) from x + noise, take signed-gradient steps in
    pixel units, clip to the eps-ball and then to [lo, hi], standardise again."""
    mean_t, std_t = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    pixels = x * std_t + mean_t
    adversarial = pixels + start_noise
    adversarial = torch.minimum(torch.maximum(adversarial, pixels - eps), pixels + eps).clamp(lo, hi)
    for _ in range(steps):
        adversarial = adversarial.detach().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model((adversarial - mean_t) / std_t), y, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, adversarial)
        adversarial = adversarial.detach() + alpha * gradient.sign()
        adversarial = torch.minimum(torch.maximum(adversarial, pixels - eps), pixels + eps).clamp(lo, hi)
    return (adversarial - mean_t) / std_t


@pytest.mark.parametrize("name", ["fgsm", "ifgsm", "pgd"])
def test_attacks_agree_with_an_independent_implementation_after_undoing_the_standardisation(name):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 3)).eval()
    mean, std = (0.4, 0.6), (0.2, 0.3)
    pixels = torch.rand(5, 2, 6, 6)
    pixels[:, :, 0, 0] = 0.0  # pixels at the ends of the range: the clip after undoing the standardisation matters
    pixels[:, :, 1, 1] = 1.0
    x = (pixels - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    y = torch.tensor([0, 1, 2, 0, 1])
    eps, alpha, steps = 0.1, 0.03, 4
    settings = {"eps": eps, "lo": 0.0, "hi": 1.0, "mean": mean, "std": std, "seed": 7}
    if name != "fgsm":
        settings.update(step_size=alpha, steps=steps)
    ours = create_attack(name, **settings)(model, x, y)
    noise = torch.zeros_like(pixels)
    if name == "pgd":  # the same uniform draw as the attack's seeded generator
        noise = (2 * torch.rand(pixels.shape, generator=torch.Generator().manual_seed(7)) - 1) * eps
    reference = _reference_attack(
        model, x, y, eps=eps, alpha=eps if name == "fgsm" else alpha, steps=1 if name == "fgsm" else steps,
        start_noise=noise, lo=0.0, hi=1.0, mean=mean, std=std,
    )
    assert torch.allclose(ours, reference, atol=1e-5)
    ours_pixels = ours * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
    assert float(ours_pixels.min()) >= -1e-6 and float(ours_pixels.max()) <= 1 + 1e-6
    assert float((ours_pixels - pixels).abs().max()) <= eps + 1e-5
    assert not torch.allclose(ours, x), "the attack moved nothing: the comparison would prove nothing"
