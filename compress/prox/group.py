"""Group operators: block soft threshold (group L2,1 prox) and group hard threshold (group L0 prox).

A group is one slice along ``axis`` of a weight: ``axis=0`` groups output channels (``W[o, ...]``),
``axis=1`` groups input channels (``W[:, i, ...]``). Reference for the group lasso prox: Yuan & Lin,
"Model selection and estimation in regression with grouped variables", JRSS-B 68, 2006; spec §1.5-§1.6.
"""

from __future__ import annotations

import torch


def _reduce_dims(y: torch.Tensor, axis: int) -> tuple[int, ...]:
    if not 0 <= axis < y.dim():
        raise ValueError(f"group axis must be in [0, {y.dim() - 1}] for a {y.dim()}-D tensor, got {axis}")
    return tuple(d for d in range(y.dim()) if d != axis)


def group_norms(y: torch.Tensor, *, axis: int = 0) -> torch.Tensor:
    """L2 norm of every slice along ``axis``, kept broadcastable to ``y`` (``keepdim``)."""
    dims = _reduce_dims(y, axis)
    if not dims:
        return y.abs()
    return y.pow(2).sum(dim=dims, keepdim=True).sqrt()


def group_size(y: torch.Tensor, *, axis: int = 0) -> int:
    """Number of entries in one group (``numel / shape[axis]``)."""
    _reduce_dims(y, axis)
    return y.numel() // max(y.shape[axis], 1)


def group_soft_threshold(y: torch.Tensor, tau: float | torch.Tensor, *, axis: int = 0) -> torch.Tensor:
    """Block soft threshold ``x_g = max(0, 1 - tau / ||y_g||_2) * y_g`` (prox of ``tau * sum_g ||x_g||_2``)."""
    norms = group_norms(y, axis=axis)
    scale = torch.clamp(1.0 - tau / norms.clamp_min(torch.finfo(y.dtype).tiny), min=0.0)
    return y * scale


def group_hard_threshold(y: torch.Tensor, gamma: float | torch.Tensor, *, axis: int = 0) -> torch.Tensor:
    """``x_g = y_g * 1{||y_g||_2 > gamma}`` (prox of ``mu * #{g: x_g != 0}`` with ``gamma = sqrt(2 mu)``)."""
    return y * (group_norms(y, axis=axis) > gamma).to(y.dtype)


GROUP_AXES = {"output": 0, "input": 1}


def group_axis(name: str) -> int:
    """Tensor axis of a group-axis name: ``"output"`` -> 0 (filters / rows), ``"input"`` -> 1."""
    if name not in GROUP_AXES:
        raise ValueError(f"unknown group axis {name!r}; allowed: {', '.join(GROUP_AXES)}")
    return GROUP_AXES[name]
