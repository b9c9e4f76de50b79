"""The protocol every sparse-training method follows, and the method registry.

A training loop (``compress.optim.loop.train_epoch``) drives a method through these verbs, per
mini-batch::

    loss = criterion(model(x), y) + method.penalty(model)
    loss.backward()
    method.before_step(model)          # e.g. RVSM coupling step w <- w - lr*beta*(w - u)
    optimizer.step()                   # the optimizer returned by method.build_optimizer
    method.after_step(model)           # e.g. prox / threshold / auxiliary-variable update

and per epoch ``method.on_epoch_end(model, epoch=...)``. After training, ``method.finalize(model)``
writes exact zeros into the weights (the deployable model), and ``state_dict`` /
``load_state_dict`` let a killed run resume mid-stage.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from torch import nn

from compress.registry import Registry


def sparsifiable_parameters(model: nn.Module, *, min_dim: int = 2) -> Iterator[tuple[str, nn.Parameter]]:
    """Yield ``(fqn, weight)`` of conv / linear weights (tensors with ``dim >= min_dim``)."""
    for fqn, param in model.named_parameters():
        if param.requires_grad and param.dim() >= min_dim and fqn.endswith("weight"):
            yield fqn, param


class TrainingMethod:
    """Base class: plain SGD with momentum, no penalty. Subclasses override the verbs they need."""

    name = "sgd"

    def __init__(self, *, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.optimizer: torch.optim.Optimizer | None = None

    def build_optimizer(self, model: nn.Module, *, total_steps: int) -> torch.optim.Optimizer:
        self.optimizer = torch.optim.SGD(
            model.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
        )
        return self.optimizer

    def penalty(self, model: nn.Module) -> torch.Tensor | float:
        return 0.0

    def before_step(self, model: nn.Module) -> None:
        return None

    def after_step(self, model: nn.Module) -> None:
        return None

    def on_epoch_end(self, model: nn.Module, *, epoch: int) -> None:
        return None

    @torch.no_grad()
    def finalize(self, model: nn.Module) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


METHODS: Registry[TrainingMethod] = Registry("training method")


def create_method(name: str, **kwargs) -> TrainingMethod:
    """Create a registered training method; ``kwargs`` are its hyperparameters."""
    import compress.optim.catalog  # noqa: F401  (registers every method)

    return METHODS.create(name, **kwargs)


def list_methods() -> list[str]:
    import compress.optim.catalog  # noqa: F401

    return METHODS.names()


def method_class(name: str) -> type[TrainingMethod]:
    """The registered class of a method (its constructor's keyword-only arguments are its hyperparameters)."""
    import compress.optim.catalog  # noqa: F401

    return METHODS.get(name)
