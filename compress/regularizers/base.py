"""The ``Regularizer`` base: a penalty ``strength * sum_fqn R(w_fqn)`` and its proximal step.

A regularizer acts on the weights its ``ParamSelector`` picks (keyed by ``fqn``). It offers the
differentiable ``penalty(model)`` (added to the loss; autograd gives the (sub)gradient), the tensor
operators ``value(w)`` and ``prox(w, mu) = argmin_x mu R(x) + 1/2 ||x - w||^2``, and ``prox_(model,
step=)``, the in-place step ``w <- prox_{step * strength * R}(w)`` after an optimizer step of size
``step``. Every training method that thresholds weights goes through these objects.
"""

from __future__ import annotations

import torch
from torch import nn

from compress.selection import ALL_LAYERS, ParamSelector


class Regularizer:
    """Base class; subclasses set ``name`` and implement ``value`` and ``prox`` for one tensor."""

    name = "none"

    def __init__(self, *, strength: float, layers: ParamSelector = ALL_LAYERS) -> None:
        if not strength >= 0:
            raise ValueError(f"regularizer strength must be >= 0, got {strength}")
        self.strength = strength
        self.layers = layers

    def value(self, weight: torch.Tensor) -> torch.Tensor:
        """Unscaled ``R(w)`` of one tensor."""
        raise NotImplementedError

    def prox(self, weight: torch.Tensor, mu: float) -> torch.Tensor:
        """``argmin_x mu R(x) + 1/2 ||x - w||^2`` of one tensor."""
        raise NotImplementedError

    def penalty(self, model: nn.Module) -> torch.Tensor | float:
        total: torch.Tensor | float = 0.0
        for _, weight in self.layers.weights(model):
            total = total + self.value(weight)
        return self.strength * total

    @torch.no_grad()
    def prox_(self, model: nn.Module, *, step: float) -> None:
        for _, weight in self.layers.weights(model):
            weight.copy_(self.prox(weight, step * self.strength))
