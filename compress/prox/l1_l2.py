"""The L1 - alpha*L2 penalty and its (non-separable) proximal operator (Lou & Yan).

Reference: Y. Lou and M. Yan, "Fast L1-L2 minimization via a proximal operator", J. Sci. Comput. 74, 2018.
The operator acts on a whole tensor (flattened), not element-wise.
"""

from __future__ import annotations

import torch

from compress.prox.soft import soft_threshold


def l1_minus_l2_penalty(x: torch.Tensor, *, alpha: float = 1.0) -> torch.Tensor:
    """``||x||_1 - alpha * ||x||_2`` over all entries of ``x`` (a scalar tensor)."""
    return x.abs().sum() - alpha * x.norm()


def prox_l1_minus_l2(y: torch.Tensor, mu: float, *, alpha: float = 1.0) -> torch.Tensor:
    """``argmin_x mu (||x||_1 - alpha ||x||_2) + 1/2 ||x - y||^2`` with ``0 < alpha <= 1``.

    Three cases on ``m = ||y||_inf``:

    * ``m > mu``: ``z = S_mu(y)``, ``x = z (||z||_2 + alpha mu) / ||z||_2``;
    * ``(1 - alpha) mu < m <= mu``: 1-sparse, ``x_i* = sign(y_i*) (|y_i*| + (alpha - 1) mu)`` at
      ``i* = argmax |y_i|`` (the first one on ties);
    * ``m <= (1 - alpha) mu``: ``x = 0``.
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if mu < 0:
        raise ValueError(f"mu must be >= 0, got {mu}")
    if mu == 0 or y.numel() == 0:
        return y.clone()
    flat = y.reshape(-1)
    largest = flat.abs().max()
    if largest > mu:
        z = soft_threshold(flat, mu)
        norm = z.norm()
        return (z * (norm + alpha * mu) / norm).reshape(y.shape)
    out = torch.zeros_like(flat)
    if largest > (1.0 - alpha) * mu:
        index = int(flat.abs().argmax())
        out[index] = torch.sign(flat[index]) * (flat[index].abs() + (alpha - 1.0) * mu)
    return out.reshape(y.shape)
