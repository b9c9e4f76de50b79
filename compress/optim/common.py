"""Small helpers shared by the training methods (optimizer choice, lr lookup, fqn-keyed state)."""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

OPTIMIZERS = ("sgd", "adam")


def make_optimizer(
    params: Iterable[nn.Parameter],
    *,
    kind: str,
    lr: float,
    momentum: float,
    weight_decay: float,
    nesterov: bool = False,
) -> torch.optim.Optimizer:
    """``torch.optim.SGD`` (momentum, optional Nesterov) or ``torch.optim.Adam``."""
    if kind == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov and momentum > 0
        )
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {kind!r}; allowed: {', '.join(OPTIMIZERS)}")


def current_lr(optimizer: torch.optim.Optimizer | None, default: float) -> float:
    """Learning rate of the first param group (schedulers may change it), else ``default``."""
    return float(optimizer.param_groups[0]["lr"]) if optimizer is not None else default


def clone_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached copies, so a saved state does not alias live training tensors."""
    return {fqn: tensor.detach().clone() for fqn, tensor in tensors.items()}


def load_tensors(state: dict[str, Any], key: str) -> dict[str, torch.Tensor]:
    """Copies of ``state[key]`` (an fqn -> tensor dict; missing key -> empty)."""
    return clone_tensors(dict(state.get(key, {})))


def reset_momentum(optimizer: torch.optim.Optimizer | None) -> None:
    """Forget the optimizer's per-parameter state (momentum buffers), as re-creating it would."""
    if optimizer is not None:
        optimizer.state.clear()


def check_ratio(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value
