"""SCAD penalty and its thresholding rule (Fan & Li).

Reference: J. Fan and R. Li, "Variable selection via nonconcave penalized likelihood and its oracle
properties", JASA 96, 2001.
"""

from __future__ import annotations

import torch

from compress.prox.soft import soft_threshold


def _check(mu: float, a: float) -> None:
    if mu < 0:
        raise ValueError(f"mu must be >= 0, got {mu}")
    if a <= 2:
        raise ValueError(f"SCAD parameter a must be > 2, got {a}")


def scad_penalty(x: torch.Tensor, mu: float, *, a: float = 3.7) -> torch.Tensor:
    """SCAD ``p_mu(x)``: ``mu|x|`` up to ``mu``, quadratic blend up to ``a mu``, ``(a+1) mu^2 / 2`` beyond."""
    _check(mu, a)
    t = x.abs()
    linear = mu * t
    blend = (2.0 * a * mu * t - t * t - mu * mu) / (2.0 * (a - 1.0))
    flat = torch.full_like(t, (a + 1.0) * mu * mu / 2.0)
    return torch.where(t <= mu, linear, torch.where(t <= a * mu, blend, flat))


def prox_scad(y: torch.Tensor, mu: float, *, a: float = 3.7) -> torch.Tensor:
    """``argmin_x p_mu(x) + 1/2 (x - y)^2`` (SCAD with parameter ``mu``), element-wise.

    ``S_mu(y)`` if ``|y| <= 2 mu``; ``((a-1) y - sign(y) a mu) / (a-2)`` if ``2 mu < |y| <= a mu``;
    ``y`` otherwise.
    """
    _check(mu, a)
    t = y.abs()
    middle = ((a - 1.0) * y - torch.sign(y) * a * mu) / (a - 2.0)
    return torch.where(t <= 2.0 * mu, soft_threshold(y, mu), torch.where(t <= a * mu, middle, y))
