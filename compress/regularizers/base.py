"""The Regularizer protocol and its registry.

A regularizer acts on the weights selected by ``layers`` (keyed by ``fqn``). It offers a differentiable
``penalty(model)`` (added to the loss; autograd gives the (sub)gradient) and ``prox_(model, step=)``,
the in-place proximal step ``w <- prox_{step * R}(w)`` taken after an optimizer step of size ``step``.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from compress.registry import Registry
from compress.regularizers.selection import check_layers, selected_weights


class Regularizer:
    """Base class: ``strength * sum_fqn R(w_fqn)`` over the selected weights."""

    name = "none"

    def __init__(self, *, strength: float, layers: str = "all") -> None:
        if strength < 0:
            raise ValueError(f"regularizer strength must be >= 0, got {strength}")
        self.strength = strength
        self.layers = check_layers(layers)

    def weights(self, model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
        return selected_weights(model, layers=self.layers)

    def value(self, weight: torch.Tensor) -> torch.Tensor:
        """Unscaled ``R(w)`` of one tensor."""
        raise NotImplementedError

    def prox(self, weight: torch.Tensor, mu: float) -> torch.Tensor:
        """``argmin_x mu R(x) + 1/2 ||x - w||^2`` of one tensor."""
        raise NotImplementedError

    def penalty(self, model: nn.Module) -> torch.Tensor | float:
        total: torch.Tensor | float = 0.0
        for _, weight in self.weights(model):
            total = total + self.value(weight)
        return self.strength * total

    @torch.no_grad()
    def prox_(self, model: nn.Module, *, step: float) -> None:
        for _, weight in self.weights(model):
            weight.copy_(self.prox(weight, step * self.strength))


REGULARIZERS: Registry[Regularizer] = Registry("regularizer")


def create_regularizer(name: str, **kwargs) -> Regularizer:
    import compress.regularizers.elementwise  # noqa: F401  (registers)
    import compress.regularizers.group_lasso  # noqa: F401

    return REGULARIZERS.create(name, **kwargs)


def list_regularizers() -> list[str]:
    import compress.regularizers.elementwise  # noqa: F401
    import compress.regularizers.group_lasso  # noqa: F401

    return REGULARIZERS.names()
