"""Shared machinery of the relaxed variable-splitting methods (RVSM, RGSM): the coupling step.

Relaxed splitting (Dinh & Xin, arXiv 1812.05719) minimises ``f(w) + lambda P(u) + beta/2 ||w - u||^2``
alternately: before each optimizer step ``w <- w - lr * beta * (w - u)``, after it ``u <- prox(w)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from compress.optim.common import clone_tensors, current_lr, load_tensors, make_optimizer, reset_momentum
from compress.optim.method import TrainingMethod
from compress.regularizers.selection import check_layers, selected_weights


class SplittingMethod(TrainingMethod):
    """Base of RVSM / RGSM: keeps ``u`` per fqn; subclasses define ``threshold(fqn, w)``.

    The defaults are the reference code's (SGD-Nesterov, weight decay 5e-4, momentum reset at each
    epoch end) except the learning rate: the reference trains CIFAR nets from scratch at lr 0.1, which
    wrecks a pretrained model in one epoch (LeNet-5 / MNIST: 99.11% -> 9.6%); the stage fine-tunes
    trained models, so the default is 0.01 (99.0% after one epoch). ``beta`` has none, every subclass
    sets its own.
    """

    def __init__(
        self,
        *,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        beta: float,
        nesterov: bool = True,
        reset_momentum_each_epoch: bool = True,
        layers: str = "all",
    ) -> None:
        super().__init__(lr=lr, momentum=momentum, weight_decay=weight_decay)
        if beta <= 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        self.beta = beta
        self.nesterov = nesterov
        self.reset_momentum_each_epoch = reset_momentum_each_epoch
        self.layers = check_layers(layers)
        self.u: dict[str, torch.Tensor] = {}

    def threshold(self, weight: torch.Tensor) -> torch.Tensor:
        """The sparse surrogate ``u = prox(w)``."""
        raise NotImplementedError

    def build_optimizer(self, model: nn.Module, *, total_steps: int) -> torch.optim.Optimizer:
        self.optimizer = make_optimizer(
            model.parameters(), kind="sgd", lr=self.lr, momentum=self.momentum,
            weight_decay=self.weight_decay, nesterov=self.nesterov,
        )
        return self.optimizer

    @torch.no_grad()
    def _refresh_u(self, model: nn.Module) -> None:
        for fqn, weight in selected_weights(model, layers=self.layers):
            self.u[fqn] = self.threshold(weight)

    @torch.no_grad()
    def before_step(self, model: nn.Module) -> None:
        if not self.u:
            self._refresh_u(model)
        step = current_lr(self.optimizer, self.lr) * self.beta
        for fqn, weight in selected_weights(model, layers=self.layers):
            weight.sub_(step * (weight - self.u[fqn]))

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        self._refresh_u(model)

    @torch.no_grad()
    def on_epoch_end(self, model: nn.Module, *, epoch: int) -> None:
        """Overwrite ``w`` with its sparse surrogate (the reference code's end-of-epoch behaviour)."""
        self.finalize(model)
        if self.reset_momentum_each_epoch:
            reset_momentum(self.optimizer)

    @torch.no_grad()
    def finalize(self, model: nn.Module) -> None:
        for fqn, weight in selected_weights(model, layers=self.layers):
            weight.copy_(self.threshold(weight))
        self._refresh_u(model)

    def state_dict(self) -> dict[str, Any]:
        return {"u": clone_tensors(self.u), "beta": self.beta}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.u = load_tensors(state, "u")
        self.beta = float(state["beta"])
