"""Data-parallel training under ``torchrun``: process group, rank helpers, sync check.

Each rank streams its own shard of the data (``DistributedSampler`` in ``pipeline.data.loader``).

``torchrun --nproc_per_node N`` sets ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK``; without them (or with
``WORLD_SIZE=1``) every helper here is a no-op and a run behaves exactly as a plain single process.
All ranks run the same recipe in lock-step; only rank 0 writes into the run directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from pipeline.errors import StageError, UserError

SYNC_TOLERANCE = 1e-6


def world_size() -> int:
    """Number of processes of this run (1 outside torchrun)."""
    return _env_int("WORLD_SIZE", default=1)


def rank() -> int:
    """This process's global rank (0 outside torchrun)."""
    return _env_int("RANK", default=0)


def local_rank() -> int:
    """This process's rank on its machine (picks the GPU under nccl)."""
    return _env_int("LOCAL_RANK", default=0)


def is_distributed() -> bool:
    return world_size() > 1


def is_main() -> bool:
    """True on the one process that writes files and logs."""
    return rank() == 0


def setup(*, device: torch.device) -> None:
    """Join the torchrun process group once: gloo for CPU tensors, nccl for CUDA tensors."""
    import torch.distributed as dist

    if not is_distributed() or dist.is_initialized():
        return
    if not dist.is_available():
        raise UserError("this torch build has no torch.distributed; run without torchrun")
    if device.type == "cuda":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def shutdown() -> None:
    """Leave the process group (if this process joined one)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_object(value):
    """Rank 0's ``value`` on every rank (a picklable object); unchanged outside a process group."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(value: float) -> float:
    """The sum of ``value`` over all ranks."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(tensor)
    return float(tensor.item())


def wrap(model: nn.Module) -> nn.Module:
    """``model`` inside DistributedDataParallel (which copies rank 0's weights to every rank)."""
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    setup(device=device)
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def check_in_sync(model: nn.Module, *, what: str) -> None:
    """Raise if the parameters differ between ranks (compares per-tensor checksums via all_reduce)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    checksum = torch.stack([torch.stack([p.detach().double().sum(), p.detach().double().square().sum()]) for p in model.parameters()])
    checksum = checksum.flatten().to(_collective_device())
    high, low = checksum.clone(), checksum.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    spread = float((high - low).abs().max())
    if spread > SYNC_TOLERANCE * (1.0 + float(high.abs().max())):
        raise StageError(f"{what}: the weights differ between the {world_size()} processes (checksum spread {spread:.3g})")


@contextmanager
def rank_run_dir(run_dir: Path) -> Iterator[Path]:
    """The run directory this process writes to: ``run_dir`` on rank 0, a throw-away one elsewhere."""
    if is_main():
        yield run_dir
        return
    scratch = Path(tempfile.mkdtemp(prefix=f"compress-rank{rank()}-"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _collective_device() -> torch.device:
    import torch.distributed as dist

    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def _env_int(name: str, *, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"environment variable {name} must be an integer, got {raw!r}") from None
