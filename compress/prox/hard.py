"""Hard threshold, the proximal operator of the L0 "norm" (element-wise)."""

from __future__ import annotations

import math

import torch


def hard_threshold(y: torch.Tensor, gamma: float | torch.Tensor) -> torch.Tensor:
    """``H_gamma(y) = y * 1{|y| > gamma}`` (keeps entries strictly above the threshold).

    Args:
        y: input tensor.
        gamma: threshold, a scalar or a tensor broadcastable to ``y``.

    Returns:
        A new tensor with the entries ``|y| <= gamma`` set to exactly zero.
    """
    return y * (y.abs() > gamma).to(y.dtype)


def l0_threshold(mu: float) -> float:
    """Threshold ``sqrt(2*mu)`` at which ``prox_{mu*||.||_0}`` switches from 0 to identity.

    ``argmin_x mu*1{x != 0} + 1/2 (x - y)^2`` is ``y`` when ``y^2/2 > mu``, else 0. With ``mu = lambda/beta``
    this is ``sqrt(2*lambda/beta)``.
    """
    if mu < 0:
        raise ValueError(f"mu must be >= 0, got {mu}")
    return math.sqrt(2.0 * mu)


def prox_l0(y: torch.Tensor, mu: float) -> torch.Tensor:
    """``prox_{mu*||.||_0}(y) = H_{sqrt(2 mu)}(y)``."""
    return hard_threshold(y, l0_threshold(mu))
