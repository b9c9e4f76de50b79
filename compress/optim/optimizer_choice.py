"""``OptimizerChoiceMethod``: a training method whose optimizer is Adam or SGD, chosen by a hyperparameter."""

from __future__ import annotations

import torch
from torch import nn

from compress.optim.common import make_optimizer
from compress.optim.method import TrainingMethod


class OptimizerChoiceMethod(TrainingMethod):
    """Base of the methods (ADMM, sparse group lasso) that train with ``optimizer="adam"`` or ``"sgd"``.

    Args:
        lr: learning rate.
        momentum: SGD momentum (ignored by Adam).
        weight_decay: L2 weight decay of the optimizer.
        optimizer: ``"adam"`` or ``"sgd"``.
    """

    def __init__(
        self, *, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0, optimizer: str = "adam"
    ) -> None:
        super().__init__(lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.optimizer_kind = optimizer

    def build_optimizer(self, model: nn.Module, *, total_steps: int) -> torch.optim.Optimizer:
        """The chosen optimizer over all of ``model``'s parameters."""
        self.optimizer = make_optimizer(
            model.parameters(), kind=self.optimizer_kind, lr=self.lr, momentum=self.momentum,
            weight_decay=self.weight_decay,
        )
        return self.optimizer
