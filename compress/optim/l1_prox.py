"""Proximal-L1 SGD baseline: a gradient step, then the soft threshold on conv / linear weights.

Update (prox-SGD on ``f(w) + lam*||w||_1``):  ``w <- S_{lr*lam}(w - lr*g)``, with
``S_t(y) = sign(y) * max(|y| - t, 0)`` (Parikh & Boyd, Proximal Algorithms, 2014).
"""

from __future__ import annotations

import torch
from torch import nn

from compress.optim.method import METHODS, TrainingMethod, sparsifiable_parameters
from compress.prox.soft import soft_threshold


@METHODS.register("l1-prox")
class L1Prox(TrainingMethod):
    """Proximal-L1 SGD: momentum SGD step, then ``w <- S_{lr*lam}(w)`` on conv / linear weights."""

    name = "l1-prox"

    def __init__(self, *, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0, lam: float = 1e-4) -> None:
        super().__init__(lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.lam = lam

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        lr = self.optimizer.param_groups[0]["lr"] if self.optimizer else self.lr
        for _, weight in sparsifiable_parameters(model):
            weight.copy_(soft_threshold(weight, lr * self.lam))
