"""SSL group lasso by proximal SGD (Wen, Wu, Wang, Chen, Li, "Learning structured sparsity in deep neural
networks", NIPS 2016; spec §6.4 with the proximal variant of §1.5).

Objective ``f(W) + lambda sum_l sum_g ||W_{l,g}||_2`` over output channels (filters / rows), input
channels (columns), or both. After each optimizer step with learning rate ``lr``::

    W_g <- max(0, 1 - lr * lambda * c_g / ||W_g||_2) * W_g      (block soft threshold)

with ``c_g = sqrt(|g|)`` if ``scale_by_size`` else 1. With ``axes="both"`` the output-channel then the
input-channel prox are applied in sequence (a splitting approximation of the joint prox).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from compress.optim.common import current_lr
from compress.optim.method import METHODS, TrainingMethod
from compress.regularizers.group_lasso import GroupLasso

SSL_AXES = {"output": ("output",), "input": ("input",), "both": ("output", "input")}


@METHODS.register("group-lasso")
class SSLGroupLasso(TrainingMethod):
    """Proximal group lasso on channels.

    Args:
        lr: SGD learning rate.
        momentum: SGD momentum.
        weight_decay: L2 weight decay.
        lam: group-lasso weight ``lambda``.
        axes: ``"output"``, ``"input"`` or ``"both"``.
        scale_by_size: weight each group by ``sqrt(|g|)``.
        layers: ``"all"``, ``"conv"`` or ``"linear"``.
    """

    name = "group-lasso"

    def __init__(
        self,
        *,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        lam: float = 1e-4,
        axes: str = "output",
        scale_by_size: bool = False,
        layers: str = "all",
    ) -> None:
        super().__init__(lr=lr, momentum=momentum, weight_decay=weight_decay)
        if axes not in SSL_AXES:
            raise ValueError(f"unknown group-lasso axes {axes!r}; allowed: {', '.join(SSL_AXES)}")
        self.regularizers = [
            GroupLasso(strength=lam, layers=layers, axis=axis, scale_by_size=scale_by_size) for axis in SSL_AXES[axes]
        ]

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        step = current_lr(self.optimizer, self.lr)
        for regularizer in self.regularizers:
            regularizer.prox_(model, step=step)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None
