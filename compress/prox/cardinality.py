"""Euclidean projection onto a cardinality constraint (the ADMM Z-step of Zhang et al., ECCV 2018).

``Pi_k(w) = argmin_{card(z) <= k} ||z - w||^2`` keeps the ``k`` largest ``|w_i|`` (element mode) or the
``k`` groups with the largest L2 norm (channel mode) and zeroes the rest. Ranking is by magnitude, not by
signed value (a signed percentile would keep large negative weights out).
"""

from __future__ import annotations

import torch

from compress.prox.group import group_norms

CARDINALITY_MODES = ("element", "channel")


def kept_count(total: int, sparsity_ratio: float) -> int:
    """How many of ``total`` items survive at ``sparsity_ratio`` (fraction zeroed, rounded)."""
    if not 0.0 <= sparsity_ratio <= 1.0:
        raise ValueError(f"sparsity_ratio must be in [0, 1], got {sparsity_ratio}")
    return int(round(total * (1.0 - sparsity_ratio)))


def cardinality_mask(w: torch.Tensor, *, sparsity_ratio: float, mode: str = "element", axis: int = 0) -> torch.Tensor:
    """Boolean mask of the kept entries of ``Pi_k(w)``; ties at the cut are broken by ``torch.topk``."""
    if mode == "element":
        scores = w.abs().reshape(-1)
    elif mode == "channel":
        scores = group_norms(w, axis=axis).reshape(-1)
    else:
        raise ValueError(f"unknown cardinality mode {mode!r}; allowed: {', '.join(CARDINALITY_MODES)}")
    keep = kept_count(scores.numel(), sparsity_ratio)
    flat = torch.zeros(scores.numel(), dtype=torch.bool, device=w.device)
    if keep > 0:
        flat[torch.topk(scores, keep, sorted=False).indices] = True
    if mode == "element":
        return flat.reshape(w.shape)
    shape = [1] * w.dim()
    shape[axis] = w.shape[axis]
    return flat.reshape(shape).expand_as(w)


def project_cardinality(
    w: torch.Tensor, *, sparsity_ratio: float, mode: str = "element", axis: int = 0
) -> torch.Tensor:
    """``Pi(w)``: zero all but the top ``round((1 - sparsity_ratio) * n)`` entries or groups of ``w``.

    Args:
        w: weight tensor.
        sparsity_ratio: fraction of entries (element mode) or groups (channel mode) to zero.
        mode: ``"element"`` or ``"channel"``.
        axis: group axis in channel mode (0 = output channels, 1 = input channels).
    """
    return w * cardinality_mask(w, sparsity_ratio=sparsity_ratio, mode=mode, axis=axis).to(w.dtype)
