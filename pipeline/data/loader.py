"""Streaming batches on ``torch.utils.data``: a map-style dataset over raw samples and seeded loaders.

Training order is ``DistributedSampler``'s (one replica outside torchrun): the permutation of epoch
``e`` is ``randperm(n)`` seeded with ``seed * 1_000_003 + e``, each rank takes every ``world``-th
index, so a global batch is the same set of samples whatever the number of processes (when ``n``
is a multiple of the world size; otherwise the sampler pads the epoch with a few repeated samples,
PyTorch's rule). Augmentation draws from a generator seeded by ``(seed, epoch, sample)``, so a
batch does not depend on the number of DataLoader workers, and a resumed epoch skips its first
``start_step`` batches without decoding them.
"""

from __future__ import annotations

from itertools import islice
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from pipeline.data.preprocess import Preprocess
from pipeline.data.transforms import Augment
from pipeline.errors import UserError

ORDER_SEED = 1_000_003


class SampleDataset(torch.utils.data.Dataset):
    """Samples of one split through the preprocessing; a key is an index, or ``(index, epoch)`` to augment."""

    def __init__(self, split, preprocess: Preprocess, *, augment: Augment | None = None, seed: int = 0) -> None:
        self.split = split
        self.preprocess = preprocess
        self.augment = augment
        self.seed = seed

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, key) -> tuple[torch.Tensor, int]:
        index, epoch = key if isinstance(key, tuple) else (key, None)
        x = self.preprocess.scaled(self.split.samples.read(int(index)))
        if self.augment is not None and epoch is not None:
            x = self.augment(x, torch.Generator().manual_seed(sample_seed(self.seed, epoch, int(index))))
        else:
            x = self.preprocess.geometry(x)
        return self.preprocess.normalize(x), int(self.split.labels[int(index)])

    def __getitems__(self, keys: list) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch at once (DataLoader's batched fetch): one stacked tensor and its labels."""
        pairs = [self[key] for key in keys]
        return torch.stack([x for x, _ in pairs]).contiguous(), torch.tensor([y for _, y in pairs], dtype=torch.int64)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of one sample in one epoch (independent of workers and ranks)."""
    return ((seed * ORDER_SEED + epoch) * 2_654_435_761 + index) % (2**63 - 1)


class _EpochOrder(Sampler):
    """This rank's indices of one epoch (``DistributedSampler``), from ``skip`` on, tagged with the epoch when augmenting."""

    def __init__(self, size: int, *, seed: int, epoch: int, rank: int, world: int, skip: int, tag: bool) -> None:
        self.inner = DistributedSampler(range(size), num_replicas=world, rank=rank, shuffle=True, seed=seed * ORDER_SEED, drop_last=False)
        self.inner.set_epoch(epoch)
        self.epoch, self.skip, self.tag = epoch, skip, tag

    def __len__(self) -> int:
        return max(len(self.inner) - self.skip, 0)

    def __iter__(self) -> Iterator:
        indices = islice(iter(self.inner), self.skip, None)
        return ((index, self.epoch) for index in indices) if self.tag else indices


def _batch(batch):
    return batch


def make_loader(dataset: SampleDataset, *, batch_size: int, sampler=None, workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """A DataLoader whose workers (if any) fetch whole batches; its own generator leaves the global RNG alone."""
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=workers, collate_fn=_batch,
        pin_memory=pin_memory, generator=torch.Generator().manual_seed(0), persistent_workers=False,
        prefetch_factor=2 if workers else None,
    )


def train_loader(split, preprocess: Preprocess, *, batch_size: int, seed: int, epoch: int, augment: Augment | None,
                 workers: int = 0, rank: int = 0, world: int = 1, start_step: int = 0, pin_memory: bool = False) -> DataLoader:
    """This rank's batches (``batch_size / world`` samples each) of epoch ``epoch``, from batch ``start_step`` on."""
    local = local_batch_size(batch_size, world)
    sampler = _EpochOrder(len(split), seed=seed, epoch=epoch, rank=rank, world=world, skip=start_step * local, tag=augment is not None)
    dataset = SampleDataset(split, preprocess, augment=augment, seed=seed)
    return make_loader(dataset, batch_size=local, sampler=sampler, workers=workers, pin_memory=pin_memory)


def local_batch_size(batch_size: int, world: int) -> int:
    if batch_size % world:
        raise UserError(f"under torchrun with {world} processes the batch size must be a multiple of {world}, got {batch_size}")
    return batch_size // world


def batches_per_epoch(samples: int, *, batch_size: int, world: int = 1) -> int:
    """Batches per rank in one epoch (``DistributedSampler`` gives each rank ``ceil(samples / world)``)."""
    shard = -(-samples // world)
    return -(-shard // local_batch_size(batch_size, world))


def iterate(loader: DataLoader) -> Iterator[Any]:
    """The loader's batches; a ``UserError`` raised in a worker (an unreadable image) stays one line."""
    try:
        yield from loader
    except UserError as error:
        raise UserError(_worker_message(str(error))) from None


def _worker_message(text: str) -> str:
    """The original message of an error re-raised by a DataLoader worker (which prefixes its traceback)."""
    if "DataLoader worker" not in text:
        return text
    last = [line for line in text.strip().splitlines() if line.strip()][-1]
    return last.split("UserError: ", 1)[-1]


def labels_tensor(labels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(labels, dtype=np.int64))
