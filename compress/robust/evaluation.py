"""Robust accuracy: top-1 accuracy on adversarial inputs produced by an attack."""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def robust_accuracy(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    attack: Attack,
) -> float:
    """Accuracy in [0, 1] of ``model`` on ``attack(model, x, y)`` for every batch.

    ``acc_rob = (1/N) * sum_i 1[argmax f(x_i') = y_i]`` with ``x_i' = attack(f, x_i, y_i)``; the
    metric of Dinh et al., arXiv 2003.00631 (e.g. IFGSM^20, eps = 8/255 on CIFAR-10). The model is evaluated in
    eval mode; its previous train / eval mode is restored on return.

    Args:
        model: Maps raw inputs to logits.
        batches: Iterable of ``(inputs, targets)``.
        attack: Any callable ``attack(model, x, y) -> x_adv`` (e.g. ``create_attack("ifgsm")``).

    Raises:
        ValueError: If ``batches`` is empty.
    """
    modes = [(module, module.training) for module in model.modules()]
    correct, count = 0, 0
    try:
        for inputs, targets in batches:
            adversarial = attack(model, inputs, targets)
            model.eval()
            with torch.no_grad():
                correct += int((model(adversarial).argmax(1) == targets).sum())
            count += len(targets)
    finally:
        for module, training in modes:
            module.training = training
    if count == 0:
        raise ValueError("robust_accuracy got no samples: batches was empty")
    return correct / count
