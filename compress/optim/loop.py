"""Starting a ``TrainingMethod``, one training epoch and one evaluation pass."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable, Iterable

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
    autocast: Callable[[], Any] | None = None,
    scaler: Any = None,
) -> float:
    """Run one epoch; returns the mean training loss.

    ``loss_fn(model, x, y)`` defaults to cross-entropy on ``model(x)``; adversarial training passes its own.
    ``on_batch(index, loss, accuracy)`` is called after each step (for progress bars).
    Mixed precision: ``autocast()`` (e.g. ``torch.autocast``) wraps the forward pass, and a
    ``torch.amp.GradScaler`` ``scaler`` scales the loss; the gradients are unscaled before
    ``method.before_step``, so the method sees true gradients (Micikevicius et al., arXiv 1710.03740).
    """
    model.train()
    total, count = 0.0, 0
    for index, (inputs, targets) in enumerate(batches):
        optimizer.zero_grad(set_to_none=True)
        with autocast() if autocast is not None else nullcontext():
            if loss_fn is None:
                logits = model(inputs)
                data_loss = nn.functional.cross_entropy(logits, targets)
                accuracy = (logits.argmax(1) == targets).float().mean().item()
            else:
                data_loss = loss_fn(model, inputs, targets)
                accuracy = float("nan")
        loss = data_loss.float() + method.penalty(model)
        _step(loss, model, method, optimizer, scaler)
        total += float(data_loss.item()) * len(targets)
        count += len(targets)
        if on_batch is not None:
            on_batch(index, float(data_loss.item()), accuracy)
    return total / max(count, 1)


def _step(loss: torch.Tensor, model: nn.Module, method: TrainingMethod, optimizer: torch.optim.Optimizer, scaler: Any) -> None:
    if scaler is None:
        loss.backward()
        method.before_step(model)
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        method.before_step(model)
        scaler.step(optimizer)
        scaler.update()
    method.after_step(model)


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, device: torch.device | None = None) -> float:
    """Top-1 accuracy in [0, 1] (batches are moved to ``device`` when given)."""
    model.eval()
    correct, count = 0, 0
    for inputs, targets in batches:
        if device is not None:
            inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        correct += int((model(inputs).argmax(1) == targets).sum())
        count += len(targets)
    return correct / max(count, 1)
