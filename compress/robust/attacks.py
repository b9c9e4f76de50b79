"""L-infinity gradient-sign attacks (FGSM, IFGSM, PGD) and the ``ATTACKS`` registry.

All three are one iteration (Madry et al., "Towards Deep Learning Models Resistant to Adversarial
Attacks", ICLR 2018, arXiv 1706.06083)::

    x_0     = x + U(-eps, eps)            (PGD random start; FGSM / IFGSM start at x_0 = x)
    x_{k+1} = Pi_{B(x, eps) ∩ [lo, hi]}( x_k + alpha * sign(grad_x CE(f(x_k), y)) ),  k < steps

where ``Pi`` clips to the eps-ball around the clean input, then to the valid range ``[lo, hi]``.
FGSM (Goodfellow et al., ICLR 2015, arXiv 1412.6572) is one step with ``alpha = eps``; IFGSM
(Kurakin et al., arXiv 1607.02533) iterates from ``x`` without a random start; PGD adds the
random start.

``x``, ``eps``, ``alpha`` and ``[lo, hi]`` are in *pixel* units (e.g. [0, 1] images). A model fed
standardised inputs ``z = (x - mean[c]) / std[c]`` is attacked by giving the attack ``mean`` and
``std``: it takes and returns ``z``, undoes the standardisation, perturbs and clips the pixels, and
standardises again for every forward pass (the sign of the gradient is the same in both spaces,
since ``std > 0``). Without them the inputs are the pixels themselves.

During an attack every module is put in eval mode and restored afterwards, and only the input
gradient is computed (``torch.autograd.grad``), so parameter ``.grad`` buffers are untouched.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from compress.registry import Registry


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


class LinfAttack:
    """Iterated L-inf gradient-sign attack with optional uniform random start (see module docstring).

    Args:
        eps: Radius of the L-inf ball, ``>= 0``.
        step_size: Step ``alpha`` per iteration, ``> 0``.
        steps: Number of iterations, ``>= 1``.
        random_start: Start from ``x + U(-eps, eps)`` (PGD) instead of ``x``.
        lo: Lower end of the valid input range.
        hi: Upper end of the valid input range, ``> lo``.
        mean: Per-channel mean of the model's input standardisation (empty: inputs are pixels).
        std: Per-channel std of the same standardisation, ``> 0`` (empty: 1).
        seed: Seeds the attack's own ``torch.Generator`` (used for the random start); ``None`` draws
            a seed from torch's default generator once, at construction. Two attacks built with the
            same seed return identical outputs for the same sequence of calls; successive calls of
            one attack draw fresh random starts (what adversarial training wants).
    """

    name = "linf"

    def __init__(
        self,
        *,
        eps: float,
        step_size: float,
        steps: int,
        random_start: bool,
        lo: float = 0.0,
        hi: float = 1.0,
        mean: Sequence[float] = (),
        std: Sequence[float] = (),
        seed: int | None = None,
    ) -> None:
        _require(eps >= 0, f"eps must be >= 0; got eps={eps}")
        _require(step_size > 0, f"step_size must be > 0; got step_size={step_size}")
        _require(isinstance(steps, int) and steps >= 1, f"steps must be an int >= 1; got steps={steps!r}")
        _require(lo < hi, f"valid range needs lo < hi; got lo={lo}, hi={hi}")
        self.eps = float(eps)
        self.step_size = float(step_size)
        self.steps = steps
        self.random_start = bool(random_start)
        self.lo = float(lo)
        self.hi = float(hi)
        _require(all(v > 0 for v in std), f"std must be > 0 per channel; got std={list(std)}")
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self.generator = torch.Generator().manual_seed(seed)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(eps={self.eps}, step_size={self.step_size}, steps={self.steps}, "
            f"random_start={self.random_start}, lo={self.lo}, hi={self.hi}, mean={list(self.mean)}, std={list(self.std)})"
        )

    def __call__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Return adversarial inputs (detached, same shape, dtype and standardisation as ``inputs``).

        Args:
            model: Maps inputs (standardised with ``mean`` / ``std`` when given) to logits.
            inputs: Clean batch ``(N, C, ...)``.
            targets: Class indices ``(N,)``.
            generator: Overrides the attack's own generator for the random start.
        """
        mean, std = self._standardisation(inputs)
        clean = self._pixels(inputs.detach() * std + mean)
        lower = torch.clamp(clean - self.eps, min=self.lo)
        upper = torch.clamp(clean + self.eps, max=self.hi)
        adversarial = self._start(clean, generator if generator is not None else self.generator)
        adversarial = torch.max(torch.min(adversarial, upper), lower)
        modes = [(module, module.training) for module in model.modules()]
        model.eval()
        try:
            with torch.enable_grad():
                for _ in range(self.steps):
                    gradient = _loss_gradient(model, (adversarial - mean) / std, targets)
                    adversarial = torch.max(torch.min(adversarial + self.step_size * gradient.sign(), upper), lower)
        finally:
            for module, training in modes:
                module.training = training
        return ((adversarial - mean) / std).detach()

    def _standardisation(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``mean`` and ``std`` shaped to broadcast over ``inputs`` (channel axis 1)."""
        shape = (1, -1) + (1,) * (inputs.dim() - 2)
        mean = torch.tensor(self.mean or (0.0,), dtype=inputs.dtype, device=inputs.device).view(shape)
        std = torch.tensor(self.std or (1.0,), dtype=inputs.dtype, device=inputs.device).view(shape)
        return mean, std

    def _pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Clean pixels, checked to lie in ``[lo, hi]`` (up to the float error of undoing the
        standardisation) and clipped there."""
        _check_range(pixels, self.lo, self.hi, tolerance=1e-4 * (self.hi - self.lo) if self.std or self.mean else 0.0)
        return pixels.clamp(self.lo, self.hi)

    def _start(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if not self.random_start or self.eps == 0:
            return clean.clone()
        noise = torch.rand(clean.shape, generator=generator, dtype=clean.dtype)
        return clean + (2 * noise.to(clean.device) - 1) * self.eps


def _check_range(pixels: torch.Tensor, lo: float, hi: float, *, tolerance: float) -> None:
    low, high = float(pixels.min()), float(pixels.max())
    if low < lo - tolerance or high > hi + tolerance:
        raise ValueError(
            f"attack inputs must lie in the valid range [{lo}, {hi}]; got pixel values in [{low}, {high}] "
            "(give the attack the inputs' mean / std, or the range lo / hi they really span)"
        )


def _loss_gradient(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Gradient of the summed cross-entropy with respect to the inputs only."""
    inputs = inputs.detach().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(inputs), targets, reduction="sum")
    (gradient,) = torch.autograd.grad(loss, inputs)
    return gradient


ATTACKS: Registry[LinfAttack] = Registry("attack")


@ATTACKS.register("fgsm")
def fgsm(*, eps: float = 8 / 255, lo: float = 0.0, hi: float = 1.0, mean: Sequence[float] = (), std: Sequence[float] = (), seed: int | None = None) -> LinfAttack:
    """FGSM: ``x' = clip_[lo,hi](x + eps * sign(grad_x CE))`` (Goodfellow et al., arXiv 1412.6572)."""
    step = eps if eps > 0 else 1.0
    return LinfAttack(eps=eps, step_size=step, steps=1, random_start=False, lo=lo, hi=hi, mean=mean, std=std, seed=seed)


@ATTACKS.register("ifgsm")
def ifgsm(
    *,
    eps: float = 8 / 255,
    step_size: float = 2 / 255,
    steps: int = 20,
    lo: float = 0.0,
    hi: float = 1.0,
    mean: Sequence[float] = (),
    std: Sequence[float] = (),
    seed: int | None = None,
) -> LinfAttack:
    """IFGSM (basic iterative method, Kurakin et al., arXiv 1607.02533): iterate from ``x``, no random start.

    Defaults are the IFGSM^20 evaluation of Wang et al. (EnResNet): eps = 8/255, alpha = 2/255.
    """
    return LinfAttack(eps=eps, step_size=step_size, steps=steps, random_start=False, lo=lo, hi=hi, mean=mean, std=std, seed=seed)


@ATTACKS.register("pgd")
def pgd(
    *,
    eps: float = 8 / 255,
    step_size: float = 0.007,
    steps: int = 10,
    lo: float = 0.0,
    hi: float = 1.0,
    mean: Sequence[float] = (),
    std: Sequence[float] = (),
    seed: int | None = None,
) -> LinfAttack:
    """PGD with uniform random start (Madry et al., arXiv 1706.06083).

    Defaults are Madry's CIFAR-10 training attack: eps = 0.031, alpha = 0.007, 10 steps.
    """
    return LinfAttack(eps=eps, step_size=step_size, steps=steps, random_start=True, lo=lo, hi=hi, mean=mean, std=std, seed=seed)


def create_attack(name: str, **kwargs) -> LinfAttack:
    """Create a registered attack (``"fgsm"``, ``"ifgsm"``, ``"pgd"``); ``kwargs`` are its settings."""
    return ATTACKS.create(name, **kwargs)


def list_attacks() -> list[str]:
    """Names of the registered attacks."""
    return ATTACKS.names()
