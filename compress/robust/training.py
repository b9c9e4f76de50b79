"""Adversarial training as a ``loss_fn(model, x, y)`` for ``compress.optim.loop.train_epoch``."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def adversarial_loss(attack: Attack, *, trade_off: float = 1.0) -> LossFn:
    """Build the adversarial-training loss ``loss_fn(model, x, y)``.

    ``L(x, y) = (1 - w) * CE(f(x), y) + w * CE(f(x'), y)``, ``x' = attack(f, x, y)``, ``w = trade_off``.
    ``w = 1`` trains on adversarial examples only (Madry et al., ICLR 2018, arXiv 1706.06083, the
    EnResNet / "Sparsity Meets Robustness" setting); ``w = 0.5`` is the mixed objective of Goodfellow
    et al. (arXiv 1412.6572). Because it is only a loss, it combines with every ``TrainingMethod``
    (penalties, prox steps and splitting updates act on the parameters, not on the loss)::

        train_epoch(model, batches, method, optimizer, loss_fn=adversarial_loss(create_attack("pgd")))

    The attack runs with the model in eval mode (restored afterwards); the loss forward passes run
    in the caller's mode. Terms with zero weight are skipped (no wasted forward or attack).

    Args:
        attack: ``attack(model, x, y) -> x_adv``, e.g. ``create_attack("pgd", eps=0.3, ...)``.
        trade_off: Weight ``w`` in ``[0, 1]`` of the adversarial term.

    Raises:
        ValueError: If ``trade_off`` is outside ``[0, 1]``.
    """
    if not 0.0 <= trade_off <= 1.0:
        raise ValueError(f"trade_off must be in [0, 1]; got trade_off={trade_off}")
    weight = float(trade_off)

    def loss_fn(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = torch.zeros((), dtype=inputs.dtype, device=inputs.device)
        if weight < 1.0:
            loss = loss + (1.0 - weight) * nn.functional.cross_entropy(model(inputs), targets)
        if weight > 0.0:
            adversarial = attack(model, inputs, targets)
            loss = loss + weight * nn.functional.cross_entropy(model(adversarial), targets)
        return loss

    return loss_fn
