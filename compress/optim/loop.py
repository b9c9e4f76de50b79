"""Starting a ``TrainingMethod``, one training epoch and one evaluation pass."""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from compress.optim.method import TrainingMethod

BatchCallback = Callable[[int, float, float], None]


def start_training(method: TrainingMethod, model: nn.Module, *, total_steps: int) -> torch.optim.Optimizer:
    """The lifecycle's first verbs in their order: ``method.prepare`` (attach) then ``method.build_optimizer``."""
    method.prepare(model, total_steps=total_steps)
    return method.build_optimizer(model)


def train_epoch(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    method: TrainingMethod,
    optimizer: torch.optim.Optimizer,
    *,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    on_batch: BatchCallback | None = None,
) -> float:
    """Run one epoch; returns the mean training loss.

    ``loss_fn(model, x, y)`` defaults to cross-entropy on ``model(x)``; adversarial training passes its own.
    ``on_batch(index, loss, accuracy)`` is called after each step (for progress bars).
    """
    model.train()
    total, count = 0.0, 0
    for index, (inputs, targets) in enumerate(batches):
        optimizer.zero_grad(set_to_none=True)
        if loss_fn is None:
            logits = model(inputs)
            data_loss = nn.functional.cross_entropy(logits, targets)
            accuracy = (logits.argmax(1) == targets).float().mean().item()
        else:
            data_loss = loss_fn(model, inputs, targets)
            accuracy = float("nan")
        loss = data_loss + method.penalty(model)
        loss.backward()
        method.before_step(model)
        optimizer.step()
        method.after_step(model)
        total += float(data_loss.item()) * len(targets)
        count += len(targets)
        if on_batch is not None:
            on_batch(index, float(data_loss.item()), accuracy)
    return total / max(count, 1)


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Top-1 accuracy in [0, 1]."""
    model.eval()
    correct, count = 0, 0
    for inputs, targets in batches:
        correct += int((model(inputs).argmax(1) == targets).sum())
        count += len(targets)
    return correct / max(count, 1)
