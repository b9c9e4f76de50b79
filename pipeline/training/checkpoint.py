"""Training checkpoints at epoch ends and every N steps, so a killed run resumes at the step it reached.

A checkpoint holds the model, method and optimizer state, the history, the position ``(epoch,
step)`` (``epoch`` finished epochs, ``step`` batches of the next one), the running loss of that
epoch and the global RNG state: resuming replays the rest of the epoch exactly (the data order and
augmentation depend only on ``(seed, epoch, sample)``; see ``pipeline.data.loader``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pipeline.atomic import save_torch
from pipeline.training import distributed

CHECKPOINT_NAME = "epoch-checkpoint.pt"


@dataclass
class Position:
    """Where training stands: finished epochs, steps into the next one, and that epoch's running loss."""

    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    samples: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    rng: torch.Tensor | None = None


def save(path: Path, stage_id: str, position: Position, *, model, method, optimizer) -> None:
    """Write the checkpoint (rank 0 only; atomically, so a kill never leaves half a file)."""
    if not distributed.is_main():
        return
    save_torch(
        path,
        {
            "stage_id": stage_id,
            "epoch": position.epoch,
            "step": position.step,
            "loss_sum": position.loss_sum,
            "samples": position.samples,
            "rng": torch.get_rng_state() if position.step else None,
            "model": model.state_dict(),
            "method": method.state_dict(),
            "optimizer": optimizer.state_dict(),
            "history": position.history,
        },
    )


def resume(path: Path, stage_id: str, *, model, method, optimizer, device: torch.device) -> Position:
    """The position of this stage's checkpoint (its state loaded into model, method, optimizer), or the start."""
    state = distributed.broadcast_object(_read(path, stage_id) if distributed.is_main() else None)
    if state is None:
        return Position()
    model.load_state_dict(state["model"])
    method.load_state_dict(_to(state["method"], device))  # a method replaces its tensors with the loaded ones
    optimizer.load_state_dict(state["optimizer"])
    _optimizer_to(optimizer, device)
    return Position(
        epoch=int(state["epoch"]), step=int(state.get("step") or 0), loss_sum=float(state.get("loss_sum") or 0.0),
        samples=int(state.get("samples") or 0), history=list(state["history"]), rng=state.get("rng"),
    )


def _to(value: Any, device: torch.device) -> Any:
    """``value`` (nested dicts / lists of tensors) with every tensor on ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {key: _to(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to(item, device) for item in value)
    return value


def _optimizer_to(optimizer, device: torch.device) -> None:
    """``Optimizer.load_state_dict`` casts state to the parameters' device, except a method's own tensors: move them too."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.device != device and key != "step":
                state[key] = value.to(device)


def _read(path: Path, stage_id: str) -> dict[str, Any] | None:
    """The checkpoint of this stage, or None (missing, cut by a crash, or of another stage id)."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a checkpoint cut by a crash is simply ignored
        return None
    return state if state.get("stage_id") == stage_id else None
