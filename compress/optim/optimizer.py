"""``make_optimizer``: the one place a method's optimizer is built (SGD with optional Nesterov, or Adam)."""

from __future__ import annotations

from typing import Any

import torch

OPTIMIZERS = ("sgd", "adam")


def make_optimizer(param_groups: list[dict[str, Any]], hp: Any) -> torch.optim.Optimizer:
    """``torch.optim.SGD`` or ``torch.optim.Adam`` with ``hp``'s ``lr``, ``momentum``, ``weight_decay``,
    ``nesterov``; a group may override ``lr`` / ``weight_decay`` (TTQ's scales)."""
    if hp.optimizer == "sgd":
        return torch.optim.SGD(
            param_groups, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay,
            nesterov=hp.nesterov and hp.momentum > 0,
        )
    if hp.optimizer == "adam":
        return torch.optim.Adam(param_groups, lr=hp.lr, weight_decay=hp.weight_decay)
    raise ValueError(f"unknown optimizer {hp.optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
