"""Epoch loop shared by the training stages: progress, evaluation, per-epoch checkpoints, resume.

Each epoch's batch order and RNG depend only on ``(seed, epoch)``, so a run killed mid-epoch and
resumed from the last epoch checkpoint ends with the same weights as an uninterrupted run.

Under ``torchrun`` (see ``pipeline.distributed``) the model runs inside DistributedDataParallel: each
global batch of ``batch_size`` samples is split across the ranks, and each rank's loss is weighted so
the averaged gradient equals the single-process gradient of the whole batch. The method's verbs act on
the unwrapped model; every rank applies the same update, so method state stays identical (checked
after every epoch). Only rank 0 logs and writes epoch checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from compress.optim.loop import evaluate, start_training, train_epoch
from compress.optim.method import TrainingMethod
from compress.stats import weight_sparsity
from pipeline import distributed
from pipeline.atomic import save_torch
from pipeline.errors import UserError
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
    _check_settings(label, epochs=epochs, batch_size=batch_size)
    _check_labels(label, model, data)
    steps_per_epoch = data.num_train_batches(batch_size)
    parallel = distributed.is_distributed()
    if parallel:
        _check_parallel(data, batch_size=batch_size, loss_fn=loss_fn)
    optimizer = start_training(method, model, total_steps=max(epochs * steps_per_epoch, 1))
    trainee = distributed.wrap(model) if parallel else model  # after prepare: it may add parameters
    checkpoint = Path(ctx.stage_dir) / f"{label}-{CHECKPOINT_NAME}"
    history, start_epoch = _resume(checkpoint, ctx.stage_id, model, method, optimizer)
    if start_epoch:
        ctx.log(f"{label}: resuming after epoch {start_epoch} from {checkpoint.name}")
    for epoch in range(start_epoch, epochs):
        torch.manual_seed(ctx.options.seed * 7919 + epoch)
        enabled = ctx.options.progress and distributed.is_main()
        bar = progress_bar(total=steps_per_epoch, desc=f"{label} epoch {epoch + 1}/{epochs}", enabled=enabled)
        with bar:
            def on_batch(_: int, loss: float, accuracy: float) -> None:
                bar.set_postfix(loss=f"{loss:.3f}", acc=f"{accuracy:.3f}", refresh=False)
                bar.update(1)

            batches = data.train_batches(batch_size=batch_size, seed=ctx.options.seed, epoch=epoch)
            if parallel:
                loss = _parallel_epoch(trainee, model, batches, method, optimizer, samples=len(data.train_y), on_batch=on_batch)
            else:
                loss = train_epoch(model, batches, method, optimizer, loss_fn=loss_fn, on_batch=on_batch)
        method.on_epoch_end(model, epoch=epoch)
        if after_epoch is not None:
            after_epoch(model, epoch)
        distributed.check_in_sync(model, what=f"{label} epoch {epoch + 1}")
        accuracy = evaluate(model, data.test_batches())
        history.append({"epoch": epoch + 1, "loss": loss, "test_accuracy": accuracy, "weight_sparsity": weight_sparsity(model)})
        ctx.log(f"{label} epoch {epoch + 1}/{epochs}: loss {loss:.4f}, test accuracy {accuracy:.4f}, sparsity {history[-1]['weight_sparsity']:.3f}")
        if distributed.is_main():
            _save(checkpoint, ctx.stage_id, epoch + 1, model, method, optimizer, history)
    return history


class _OnModule:
    """Presents ``method`` to the loop with its per-step verbs applied to the unwrapped ``module``."""

    def __init__(self, method: TrainingMethod, module: nn.Module) -> None:
        self._method = method
        self._module = module

    def penalty(self, _: nn.Module) -> torch.Tensor | float:
        return self._method.penalty(self._module)

    def before_step(self, _: nn.Module) -> None:
        self._method.before_step(self._module)

    def after_step(self, _: nn.Module) -> None:
        self._method.after_step(self._module)


def _check_settings(label: str, *, epochs: int, batch_size: int) -> None:
    """One clear line for settings the optimizer or the batch loop would reject with a traceback."""
    if batch_size < 1:
        raise UserError(f"{label}: batch-size must be >= 1, got {batch_size}")
    if epochs < 0:
        raise UserError(f"{label}: epochs must be >= 0, got {epochs}")


def _check_labels(label: str, model: nn.Module, data: Any) -> None:
    """Labels must index the model's outputs (cross-entropy would fail mid-epoch with a traceback)."""
    was_training = model.training
    with torch.no_grad():
        outputs = int(model.eval()(data.train_x[:1]).shape[-1])
    model.train(was_training)
    largest = int(max(data.train_y.max(), data.test_y.max()))
    if largest >= outputs:
        raise UserError(f"{label}: the data has label {largest} but the model has {outputs} outputs (labels 0..{outputs - 1})")


def _check_parallel(data: Any, *, batch_size: int, loss_fn: Callable | None) -> None:
    if loss_fn is not None:
        raise UserError("adversarial training is not supported under torchrun yet; run it in a single process")
    distributed.check_batch_sizes(samples=len(data.train_y), batch_size=batch_size)


def _parallel_epoch(trainee: nn.Module, module: nn.Module, batches, method, optimizer, *, samples: int, on_batch) -> float:
    """One epoch on this rank's slices of the global batches; returns the global mean training loss."""
    current = {"weight": 1.0, "loss_sum": 0.0}

    def local_batches():
        for inputs, targets, weight in distributed.shard_batches(batches):
            current["weight"] = weight
            yield inputs, targets

    def weighted_loss(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = nn.functional.cross_entropy(net(inputs), targets)
        current["loss_sum"] += float(loss.detach()) * len(targets)
        return loss * current["weight"]

    train_epoch(trainee, local_batches(), _OnModule(method, module), optimizer, loss_fn=weighted_loss, on_batch=on_batch)
    return distributed.all_reduce_sum(current["loss_sum"]) / max(samples, 1)


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
    state = distributed.broadcast_object(_read_checkpoint(path, stage_id) if distributed.is_main() else None)
    if state is None:
        return [], 0
    model.load_state_dict(state["model"])
    method.load_state_dict(state["method"])
    optimizer.load_state_dict(state["optimizer"])
    return list(state["history"]), int(state["epoch"])


def _read_checkpoint(path: Path, stage_id: str) -> dict[str, Any] | None:
    """The epoch checkpoint of this stage, or None (missing, cut by a crash, or of another stage id)."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a checkpoint cut by a crash is simply ignored
        return None
    return state if state.get("stage_id") == stage_id else None
