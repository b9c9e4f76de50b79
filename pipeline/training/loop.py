"""Epoch loop shared by the training stages: device, streamed batches, progress, evaluation, checkpoints, resume.

Each epoch's batch order and augmentation depend only on ``(seed, epoch)`` (``pipeline.data.loader``)
and the global RNG is reseeded per epoch, so a run killed mid-epoch and resumed from its last
checkpoint (epoch end, or every ``--checkpoint-every`` steps) ends with the same weights as an
uninterrupted run.

Under ``torchrun`` (see ``pipeline.training.distributed``) the model runs inside DistributedDataParallel and
each rank streams only its ``DistributedSampler`` shard: ``batch_size / world`` samples of every
global batch, so the averaged gradient is the single-process gradient of the whole batch. The
method's verbs act on the unwrapped model; every rank applies the same update, so method state stays
identical (checked after every epoch). Only rank 0 logs, evaluates and writes checkpoints.
"""

from __future__ import annotations

import time
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from compress.optim.loop import evaluate, start_training, train_epoch
from compress.optim.method import TrainingMethod
from compress.stats import weight_sparsity
from pipeline.errors import UserError
from pipeline.stage import StageContext
from pipeline.training import distributed
from pipeline.training import checkpoint as checkpoints
from pipeline.training.checkpoint import CHECKPOINT_NAME, Position
from pipeline.training.devices import Precision, resolve_train_device
from pipeline.training.progress import progress_bar

__all__ = ["CHECKPOINT_NAME", "run_training", "evaluate_model", "train_device"]


def train_device(ctx: StageContext) -> torch.device:
    return resolve_train_device(ctx.options.train_device, local_rank=distributed.local_rank())


def evaluate_model(ctx: StageContext, model: nn.Module, data: Any) -> float:
    """Test accuracy on the training device, measured by rank 0 only (the other ranks read no test data)."""
    device = train_device(ctx)
    accuracy = None
    if distributed.is_main():
        original = next(model.parameters(), torch.empty(0)).device
        accuracy = evaluate(model.to(device), data.test_batches(), device=device)
        model.to(original)
    return distributed.broadcast_object(accuracy)


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
    augment: str = "auto",
) -> list[dict[str, float]]:
    """Train ``model`` in place for ``epochs`` epochs on the training device (it comes back on the CPU);
    returns per-epoch metrics."""
    _check_settings(label, epochs=epochs, batch_size=batch_size)
    options, world = ctx.options, distributed.world_size()
    device = train_device(ctx)
    steps = _steps_per_epoch(data, batch_size=batch_size, world=world, limit=options.epoch_steps)
    if world > 1 and loss_fn is not None:
        raise UserError("adversarial training is not supported under torchrun yet; run it in a single process")
    model.to(device)
    _check_labels(label, model, data, device)
    optimizer = start_training(method, model, total_steps=max(epochs * steps, 1))
    trainee = distributed.wrap(model) if world > 1 else model  # after prepare: it may add parameters
    learner = _OnModule(method, model) if world > 1 else method
    checkpoint = Path(ctx.stage_dir) / f"{label}-{CHECKPOINT_NAME}"
    position = checkpoints.resume(checkpoint, ctx.stage_id, model=model, method=method, optimizer=optimizer, device=device)
    if position.epoch or position.step:
        ctx.log(f"{label}: resuming at epoch {position.epoch + 1}, step {position.step} from {checkpoint.name}")
    augmentation = data.augmentation(augment)
    precision = Precision.of(device, amp=options.amp)
    started, first_epoch = time.perf_counter(), position.epoch
    for epoch in range(position.epoch, epochs):
        if position.step and position.rng is not None:
            torch.set_rng_state(position.rng)
        else:
            torch.manual_seed(options.seed * 7919 + epoch)
        clock = time.perf_counter()
        batches = data.train_batches(batch_size=batch_size, seed=options.seed, epoch=epoch, augment=augmentation,
                                     start_step=position.step, rank=distributed.rank(), world=world)
        loss, samples = _epoch(ctx, trainee, learner, optimizer, batches, position, precision=precision, device=device,
                               steps=steps, data=data, batch_size=batch_size, label=f"{label} epoch {epoch + 1}/{epochs}", loss_fn=loss_fn,
                               save=lambda: checkpoints.save(checkpoint, ctx.stage_id, position, model=model, method=method, optimizer=optimizer))
        seconds = time.perf_counter() - clock
        method.on_epoch_end(model, epoch=epoch)
        if after_epoch is not None:
            after_epoch(model, epoch)
        distributed.check_in_sync(model, what=f"{label} epoch {epoch + 1}")
        accuracy = evaluate_model(ctx, model, data)
        rate = samples / max(seconds, 1e-9)
        position.history.append({"epoch": epoch + 1, "loss": loss, "test_accuracy": accuracy, "weight_sparsity": weight_sparsity(model),
                                 "images_per_second": round(rate, 2)})
        position.epoch, position.step, position.loss_sum, position.samples = epoch + 1, 0, 0.0, 0
        eta = (time.perf_counter() - started) / (epoch + 1 - first_epoch) * (epochs - epoch - 1)
        ctx.log(f"{label} epoch {epoch + 1}/{epochs}: loss {loss:.4f}, test accuracy {accuracy:.4f}, sparsity "
                f"{position.history[-1]['weight_sparsity']:.3f}, {rate:.1f} images/s, {seconds:.1f} s"
                + (f", ETA {_clock(eta)} for the remaining {epochs - epoch - 1} epoch(s)" if epoch + 1 < epochs else ""))
        checkpoints.save(checkpoint, ctx.stage_id, position, model=model, method=method, optimizer=optimizer)
    model.to("cpu")
    return position.history


def _epoch(ctx, trainee, learner, optimizer, batches, position: Position, *, precision: Precision, device, steps: int,
           data: Any, batch_size: int, label: str, loss_fn, save) -> tuple[float, int]:
    """One (possibly resumed) epoch; returns the global mean training loss and this rank's samples."""
    options = ctx.options
    local = {"size": 0}
    start_step, samples_before = position.step, position.samples
    world = distributed.world_size()
    images = max(min(steps * batch_size, len(data.train_y)) - start_step * batch_size, 0) // world  # this rank's, for the bar
    bar = progress_bar(total=images, desc=label, unit="img", enabled=options.progress and distributed.is_main())

    def on_device() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for inputs, targets in islice(batches, max(steps - start_step, 0)):
            local["size"] = len(targets)
            yield inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)

    def on_batch(_: int, loss: float, accuracy: float) -> None:
        position.step += 1
        position.loss_sum += loss * local["size"]
        position.samples += local["size"]
        bar.set_postfix(loss=f"{loss:.3f}", acc=f"{accuracy:.3f}", refresh=False)
        bar.update(local["size"])
        if options.checkpoint_every and position.step % options.checkpoint_every == 0 and position.step < steps:
            save()

    with bar:
        train_epoch(trainee, on_device(), learner, optimizer, loss_fn=loss_fn, on_batch=on_batch,
                    autocast=precision.autocast, scaler=precision.scaler)
    total = distributed.all_reduce_sum(position.loss_sum)
    count = distributed.all_reduce_sum(float(position.samples))
    return total / max(count, 1.0), position.samples - samples_before


def _steps_per_epoch(data: Any, *, batch_size: int, world: int, limit: int) -> int:
    steps = data.num_train_batches(batch_size, world=world)
    return min(steps, limit) if limit else steps


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


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


def _check_labels(label: str, model: nn.Module, data: Any, device: torch.device) -> None:
    """Labels must index the model's outputs (cross-entropy would fail mid-epoch with a traceback)."""
    was_training = model.training
    with torch.no_grad():
        outputs = int(model.eval()(data.train_x[:1].to(device)).shape[-1])
    model.train(was_training)
    largest = int(max(data.train_y.max(), data.test_y.max()))
    if largest >= outputs:
        raise UserError(f"{label}: the data has label {largest} but the model has {outputs} outputs (labels 0..{outputs - 1})")
