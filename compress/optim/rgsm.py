"""RGSM: relaxed group-wise splitting for channel sparsity (Yang, Lyu, Zhang, Qi, Xin 2019; used by
Dinh et al., "Sparsity meets robustness", arXiv 2003.00631, spec §3.2).

Objective ``f(w) + lambda2 sum_g ||w_g||_2 + lambda1 #{g: u_g != 0} + beta/2 ||w - u||^2``; groups are
input channels (``W[:, i, ...]``, the reference) or output channels. Per mini-batch::

    loss = f(w) + lambda2 * sum_g sqrt(||w_g||^2 + 1e-8)       (group lasso through autograd, penalty())
    w <- w - lr * beta * (w - u)                               (coupling)
    w <- SGD-Nesterov-step(w, grad loss + wd w)
    u <- group-hard-threshold(w, sqrt(2 lambda1 / beta))       (spec §1.6)

and at each epoch end ``w <- u`` (the reference swaps in the group-sparse copy) with a momentum reset.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from compress.hyperparameters import inherits_hyperparameters
from compress.optim.method import METHODS
from compress.optim.splitting import SplittingMethod
from compress.prox.group import group_hard_threshold
from compress.regularizers.group_lasso import smooth_group_norm_sum
from compress.regularizers.selection import group_axis as axis_index
from compress.regularizers.selection import selected_weights


@METHODS.register("rgsm")
@inherits_hyperparameters
class RGSM(SplittingMethod):
    """Relaxed group-wise splitting (channel sparsity).

    Args:
        lr: SGD learning rate.
        momentum: SGD momentum.
        weight_decay: L2 weight decay.
        lam1: group-L0 weight ``lambda1`` (reference default 1e-2).
        lam2: group-lasso weight ``lambda2`` (reference default 1e-5).
        beta: splitting parameter ``beta1`` (reference default 1).
        group_axis: ``"input"`` (reference) or ``"output"`` channels.
        nesterov: Nesterov momentum.
        reset_momentum_each_epoch: forget momentum at each epoch end.
        layers: ``"all"`` or ``"conv"`` (the reference uses conv weights only).
    """

    name = "rgsm"

    def __init__(
        self,
        *,
        lam1: float = 1e-2,
        lam2: float = 1e-5,
        beta: float = 1.0,
        group_axis: str = "input",
        **options: Any,
    ) -> None:
        super().__init__(beta=beta, **options)
        if lam1 < 0 or lam2 < 0:
            raise ValueError(f"lam1 and lam2 must be >= 0, got {lam1}, {lam2}")
        self.lam1 = lam1
        self.lam2 = lam2
        self.axis = axis_index(group_axis)

    def threshold(self, weight: torch.Tensor) -> torch.Tensor:
        return group_hard_threshold(weight, math.sqrt(2.0 * self.lam1 / self.beta), axis=self.axis)

    def penalty(self, model: nn.Module) -> torch.Tensor | float:
        total = 0.0
        for _, weight in selected_weights(model, layers=self.layers):
            total = total + smooth_group_norm_sum(weight, axis=self.axis)
        return self.lam2 * total
