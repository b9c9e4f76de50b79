"""Soft threshold, the proximal operator of the L1 norm."""

from __future__ import annotations

import torch


def soft_threshold(y: torch.Tensor, tau: float | torch.Tensor) -> torch.Tensor:
    """``S_tau(y) = sign(y) * max(|y| - tau, 0)`` = ``argmin_x tau*|x| + 1/2 (x - y)^2``.

    ``tau`` may be a scalar or a tensor broadcastable to ``y`` (weighted L1).
    """
    return torch.sign(y) * torch.clamp(y.abs() - tau, min=0.0)
