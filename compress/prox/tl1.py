"""Transformed-L1 (TL1) penalty and its closed-form proximal operator (Zhang & Xin).

Reference: S. Zhang and J. Xin, "Minimization of transformed L1 penalty: closed form representation and
iterative thresholding algorithms", Comm. Math. Sci. 15(2), 2017.
"""

from __future__ import annotations

import math

import torch


def _check(mu: float, a: float) -> None:
    if mu < 0:
        raise ValueError(f"mu must be >= 0, got {mu}")
    if a <= 0:
        raise ValueError(f"TL1 parameter a must be > 0, got {a}")


def tl1_penalty(x: torch.Tensor, *, a: float = 1.0) -> torch.Tensor:
    """``rho_a(x) = (a + 1)|x| / (a + |x|)`` element-wise."""
    _check(0.0, a)
    return (a + 1.0) * x.abs() / (a + x.abs())


def tl1_threshold(mu: float, *, a: float = 1.0) -> float:
    """Threshold ``t`` below which ``prox_{mu*rho_a}`` returns 0.

    ``t = mu (a+1)/a`` if ``mu <= a^2 / (2(a+1))``, else ``sqrt(2 mu (a+1)) - a/2``.
    """
    _check(mu, a)
    if mu <= a * a / (2.0 * (a + 1.0)):
        return mu * (a + 1.0) / a
    return math.sqrt(2.0 * mu * (a + 1.0)) - a / 2.0


def prox_tl1(y: torch.Tensor, mu: float, *, a: float = 1.0) -> torch.Tensor:
    """``argmin_x mu*rho_a(x) + 1/2 (x - y)^2`` element-wise, in closed form.

    With ``phi(y) = arccos(1 - 27 mu a (a+1) / (2 (a+|y|)^3))`` and
    ``g(y) = sign(y) ((2/3)(a+|y|) cos(phi/3) - 2a/3 + |y|/3)``, the prox is ``g(y)`` where
    ``|y| > t`` (``t`` from :func:`tl1_threshold`) and 0 elsewhere.

    Args:
        y: input tensor.
        mu: prox weight ``lambda / beta`` (>= 0).
        a: TL1 shape parameter (> 0); small ``a`` approaches L0, large ``a`` approaches L1.
    """
    _check(mu, a)
    if mu == 0:
        return y.clone()
    magnitude = y.abs()
    cos_arg = 1.0 - 27.0 * mu * a * (a + 1.0) / (2.0 * (a + magnitude) ** 3)
    phi = torch.arccos(cos_arg.clamp(-1.0, 1.0))
    value = (2.0 / 3.0) * (a + magnitude) * torch.cos(phi / 3.0) - 2.0 * a / 3.0 + magnitude / 3.0
    keep = magnitude > tl1_threshold(mu, a=a)
    return torch.where(keep, torch.sign(y) * value, torch.zeros_like(y))
