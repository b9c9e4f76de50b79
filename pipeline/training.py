"""Epoch loop shared by the training stages: progress, evaluation, per-epoch checkpoints, resume.

Each epoch's batch order and RNG depend only on ``(seed, epoch)``, so a run killed mid-epoch and
resumed from the last epoch checkpoint ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from compress.optim.loop import evaluate, train_epoch
from compress.optim.method import TrainingMethod
from compress.stats import weight_sparsity
from pipeline.atomic import save_torch
from pipeline.progress import progress_bar
from pipeline.stage import StageContext

CHECKPOINT_NAME = "epoch-checkpoint.pt"


def run_training(
    ctx: StageContext,
    model: nn.Module,
    method: TrainingMethod,
    data: Any,
    *,
    epochs: int,
    batch_size: int,
    label: str,
    loss_fn: Callable | None = None,
    after_epoch: Callable[[nn.Module, int], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place for ``epochs`` epochs; returns per-epoch metrics."""
    steps_per_epoch = data.num_train_batches(batch_size)
    optimizer = method.build_optimizer(model, total_steps=max(epochs * steps_per_epoch, 1))
    checkpoint = Path(ctx.stage_dir) / f"{label}-{CHECKPOINT_NAME}"
    history, start_epoch = _resume(checkpoint, ctx.stage_id, model, method, optimizer)
    if start_epoch:
        ctx.log(f"{label}: resuming after epoch {start_epoch} from {checkpoint.name}")
    for epoch in range(start_epoch, epochs):
        torch.manual_seed(ctx.options.seed * 7919 + epoch)
        bar = progress_bar(total=steps_per_epoch, desc=f"{label} epoch {epoch + 1}/{epochs}", enabled=ctx.options.progress)
        with bar:
            def on_batch(_: int, loss: float, accuracy: float) -> None:
                bar.set_postfix(loss=f"{loss:.3f}", acc=f"{accuracy:.3f}", refresh=False)
                bar.update(1)

            loss = train_epoch(
                model,
                data.train_batches(batch_size=batch_size, seed=ctx.options.seed, epoch=epoch),
                method,
                optimizer,
                loss_fn=loss_fn,
                on_batch=on_batch,
            )
        method.on_epoch_end(model, epoch=epoch)
        if after_epoch is not None:
            after_epoch(model, epoch)
        accuracy = evaluate(model, data.test_batches())
        history.append({"epoch": epoch + 1, "loss": loss, "test_accuracy": accuracy, "weight_sparsity": weight_sparsity(model)})
        ctx.log(f"{label} epoch {epoch + 1}/{epochs}: loss {loss:.4f}, test accuracy {accuracy:.4f}, sparsity {history[-1]['weight_sparsity']:.3f}")
        _save(checkpoint, ctx.stage_id, epoch + 1, model, method, optimizer, history)
    return history


def _save(path: Path, stage_id: str, epoch: int, model, method, optimizer, history) -> None:
    save_torch(
        path,
        {
            "stage_id": stage_id,
            "epoch": epoch,
            "model": model.state_dict(),
            "method": method.state_dict(),
            "optimizer": optimizer.state_dict(),
            "history": history,
        },
    )


def _resume(path: Path, stage_id: str, model, method, optimizer) -> tuple[list[dict[str, float]], int]:
    if not path.exists():
        return [], 0
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a checkpoint cut by a crash is simply ignored
        return [], 0
    if state.get("stage_id") != stage_id:
        return [], 0
    model.load_state_dict(state["model"])
    method.load_state_dict(state["method"])
    optimizer.load_state_dict(state["optimizer"])
    return list(state["history"]), int(state["epoch"])
