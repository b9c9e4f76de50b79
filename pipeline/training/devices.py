"""The training device (``--train-device auto|cpu|cuda``) and mixed precision (``--amp``).

Training, its optimizer state and adversarial attacks run on this device; export, compile and
report stay on the CPU. Mixed precision follows PyTorch's recipe: ``torch.autocast`` around the
forward pass (float16 on CUDA, bfloat16 on the CPU) and, for float16, a ``GradScaler`` that scales
the loss before ``backward`` and unscales the gradients before the method's step.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable

import torch

from pipeline.errors import UserError

TRAIN_DEVICES = ("auto", "cpu", "cuda")


def resolve_train_device(name: str, *, local_rank: int = 0) -> torch.device:
    """``auto``: CUDA when available, else the CPU; ``cuda`` without a GPU is a one-line error.
    Under torchrun each process takes the GPU of its ``LOCAL_RANK``."""
    if name not in TRAIN_DEVICES:
        raise UserError(f"--train-device must be one of {', '.join(TRAIN_DEVICES)}, got {name!r}")
    available = torch.cuda.is_available()
    if name == "cuda" and not available:
        raise UserError("--train-device cuda: no CUDA GPU is available to this process (use --train-device cpu or auto)")
    if name == "cpu" or not available:
        return torch.device("cpu")
    if local_rank >= torch.cuda.device_count():
        raise UserError(f"LOCAL_RANK {local_rank} has no GPU: this machine has {torch.cuda.device_count()}")
    return torch.device("cuda", local_rank)


@dataclass(frozen=True)
class Precision:
    """How one training step runs: ``autocast`` (a context factory, or None) and ``scaler`` (or None)."""

    autocast: Callable[[], Any] | None = None
    scaler: Any = None

    @staticmethod
    def of(device: torch.device, *, amp: bool) -> "Precision":
        if not amp:
            return Precision()
        dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" else None
        return Precision(autocast=lambda: torch.autocast(device.type, dtype=dtype), scaler=scaler)

    def context(self):
        return self.autocast() if self.autocast is not None else nullcontext()

    def describe(self) -> str:
        return "mixed precision" if self.autocast is not None else "float32"
