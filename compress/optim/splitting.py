"""The auxiliary variable of relaxed variable splitting, shared by RVSM and RGSM (by composition).

Relaxed splitting (Dinh & Xin, arXiv 1812.05719) minimises ``f(w) + lambda P(u) + beta/2 ||w - u||^2``
alternately: before each optimizer step ``w <- w - lr * beta * (w - u)``, after it ``u <- prox(w)``.

The defaults are the reference code's (SGD-Nesterov, weight decay 5e-4, momentum reset at each epoch
end) except the learning rate: the reference trains CIFAR nets from scratch at lr 0.1, which wrecks a
pretrained model in one epoch (LeNet-5 / MNIST: 99.11% -> 9.6%); the stage fine-tunes trained models,
so the default is 0.01 (99.0% after one epoch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from compress.optim.method import (
    LAYER_KINDS,
    Hyperparameters,
    clone_tensors,
    load_tensors,
)
from compress.selection import ParamSelector


@dataclass(frozen=True)
class SplittingHyperparameters(Hyperparameters):
    """Relaxed splitting: the optimizer of the reference plus ``beta`` and the momentum reset.

    Attributes:
        beta: splitting parameter (> 0).
        reset_momentum_each_epoch: forget momentum at each epoch end (as the reference).
        layers: ``"all"`` (conv + linear), ``"conv"`` (the reference splits conv weights only) or ``"linear"``.
    """

    weight_decay: float = 5e-4
    nesterov: bool = True
    beta: float = 1e-2
    reset_momentum_each_epoch: bool = True
    layers: str = field(default="all", metadata={"choices": LAYER_KINDS})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")


class SplitVariable:
    """``u = threshold(fqn, w)`` per selected weight (by fqn), the coupling step and the overwrite ``w <- u``."""

    def __init__(self, threshold: Callable[[str, torch.Tensor], torch.Tensor], layers: ParamSelector) -> None:
        self.threshold = threshold
        self.layers = layers
        self.u: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def refresh(self, model: nn.Module) -> None:
        """``u <- prox(w)``."""
        for fqn, weight in self.layers.weights(model):
            self.u[fqn] = self.threshold(fqn, weight)

    @torch.no_grad()
    def couple_(self, model: nn.Module, *, step: float) -> None:
        """``w <- w - step * (w - u)`` with ``step = lr * beta``."""
        if not self.u:
            self.refresh(model)
        for fqn, weight in self.layers.weights(model):
            weight.sub_(step * (weight - self.u[fqn]))

    @torch.no_grad()
    def overwrite_(self, model: nn.Module) -> None:
        """``w <- prox(w)`` in place (exact zeros), then ``u`` refreshed."""
        for fqn, weight in self.layers.weights(model):
            weight.copy_(self.threshold(fqn, weight))
        self.refresh(model)

    def state_dict(self) -> dict[str, Any]:
        return {"u": clone_tensors(self.u)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.u = load_tensors(state, "u")
