"""Group operators: block soft threshold (group L2,1 prox) and group hard threshold (group L0 prox).

A group is one slice along ``axis`` of a weight: ``axis=0`` groups output channels (``W[o, ...]``),
``axis=1`` groups input channels (``W[:, i, ...]``). ``axis=BLOCK`` (ours, for the block-sparse kernels)
groups ``BLOCK_ROWS`` consecutive output rows at one input position, ``W[o:o+16, i, kh, kw]`` (the last
block of a layer may be shorter): the 16x1 blocks the compiled kernels skip when they are zero.
Reference for the group lasso prox: Yuan & Lin, "Model selection and estimation in regression with
grouped variables", JRSS-B 68, 2006.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

BLOCK = "block"
BLOCK_ROWS = 16


def _row_blocks(y: torch.Tensor) -> torch.Tensor:
    """``y`` as ``(blocks, BLOCK_ROWS, inputs)``: output rows padded with zeros to whole blocks."""
    flat = y.reshape(y.shape[0], -1)
    blocks = -(-flat.shape[0] // BLOCK_ROWS)
    return F.pad(flat, (0, 0, 0, blocks * BLOCK_ROWS - flat.shape[0])).reshape(blocks, BLOCK_ROWS, -1)


def _block_norms(y: torch.Tensor) -> torch.Tensor:
    """Norm of each row block, broadcast back to ``y``'s shape (every entry gets its block's norm)."""
    norms = _row_blocks(y).pow(2).sum(dim=1).sqrt()
    return norms.repeat_interleave(BLOCK_ROWS, dim=0)[: y.shape[0]].reshape(y.shape)


def _reduce_dims(y: torch.Tensor, axis: int) -> tuple[int, ...]:
    if not 0 <= axis < y.dim():
        raise ValueError(f"group axis must be in [0, {y.dim() - 1}] for a {y.dim()}-D tensor, got {axis}")
    return tuple(d for d in range(y.dim()) if d != axis)


def group_norms(y: torch.Tensor, *, axis: int | str = 0) -> torch.Tensor:
    """L2 norm of every slice along ``axis``, kept broadcastable to ``y`` (``keepdim``); with
    ``axis=BLOCK`` the norm of each entry's row block, in ``y``'s shape."""
    if axis == BLOCK:
        return _block_norms(y)
    dims = _reduce_dims(y, axis)
    if not dims:
        return y.abs()
    return y.pow(2).sum(dim=dims, keepdim=True).sqrt()


def group_size(y: torch.Tensor, *, axis: int | str = 0) -> int:
    """Number of entries in one group (``numel / shape[axis]``; a full row block: ``BLOCK_ROWS``)."""
    if axis == BLOCK:
        return min(BLOCK_ROWS, y.shape[0])
    _reduce_dims(y, axis)
    return y.numel() // max(y.shape[axis], 1)


def group_soft_threshold(y: torch.Tensor, tau: float | torch.Tensor, *, axis: int | str = 0) -> torch.Tensor:
    """Block soft threshold ``x_g = max(0, 1 - tau / ||y_g||_2) * y_g`` (prox of ``tau * sum_g ||x_g||_2``)."""
    norms = group_norms(y, axis=axis)
    scale = torch.clamp(1.0 - tau / norms.clamp_min(torch.finfo(y.dtype).tiny), min=0.0)
    return y * scale


def group_hard_threshold(y: torch.Tensor, gamma: float | torch.Tensor, *, axis: int | str = 0) -> torch.Tensor:
    """``x_g = y_g * 1{||y_g||_2 > gamma}`` (prox of ``mu * #{g: x_g != 0}`` with ``gamma = sqrt(2 mu)``)."""
    return y * (group_norms(y, axis=axis) > gamma).to(y.dtype)


def smooth_group_norm_sum(weight: torch.Tensor, *, axis: int | str, eps: float = 1e-8) -> torch.Tensor:
    """``sum_g sqrt(||W_g||^2 + eps)``: the differentiable group-lasso term used through autograd."""
    if axis == BLOCK:
        return (_row_blocks(weight).pow(2).sum(dim=1) + eps).sqrt().sum()
    dims = tuple(d for d in range(weight.dim()) if d != axis)
    return (weight.pow(2).sum(dim=dims) + eps).sqrt().sum()


CHANNEL_AXES = {"output": 0, "input": 1}
GROUP_AXES = {**CHANNEL_AXES, "block": BLOCK}


def group_axis(name: str) -> int | str:
    """Tensor axis of a group-axis name: ``"output"`` -> 0 (filters / rows), ``"input"`` -> 1,
    ``"block"`` -> ``BLOCK`` (16x1 row blocks)."""
    if name not in GROUP_AXES:
        raise ValueError(f"unknown group axis {name!r}; allowed: {', '.join(GROUP_AXES)}")
    return GROUP_AXES[name]
