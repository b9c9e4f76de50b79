"""A split, lazily read data set with its preprocessing, streamed in seeded mini-batches."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Iterator

import torch

from pipeline.data import loader
from pipeline.data.arrays import value_range
from pipeline.data.preprocess import Preprocess
from pipeline.data.sources import RawData, Split, load_source
from pipeline.data.transforms import Augment
from pipeline.errors import UserError

AUGMENT_MODES = ("auto", "on", "off")
CROP_RATIO = 0.875  # evaluation: resize the shorter side to size / 0.875, centre-crop size (224 <- 256)


class SampleView:
    """``data.test_x[a:b]``: the preprocessed samples of a slice, decoded on access (never all at once)."""

    def __init__(self, split: Split, preprocess: Preprocess, input_shape: tuple[int, ...]) -> None:
        self._dataset = loader.SampleDataset(split, preprocess)
        self.shape = (len(split), *input_shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, slice):
            indices = range(*key.indices(len(self)))
            if not indices:
                return torch.zeros((0, *self.shape[1:]))
            return self._dataset.__getitems__(list(indices))[0]
        return self._dataset[int(key) % len(self)][0]


@dataclass(frozen=True)
class Dataset:
    """Both splits (undecoded), the evaluation preprocessing, and how batches are streamed."""

    name: str
    train: Split
    test: Split
    preprocess: Preprocess
    input_shape: tuple[int, ...]
    pixel_range: tuple[float, float] = (0.0, 1.0)
    images: bool = False
    workers: int = 0
    pin_memory: bool = False

    @property
    def num_classes(self) -> int:
        return int(max(self.train.labels.max(initial=0), self.test.labels.max(initial=0))) + 1

    @property
    def train_y(self) -> torch.Tensor:
        return loader.labels_tensor(self.train.labels)

    @property
    def test_y(self) -> torch.Tensor:
        return loader.labels_tensor(self.test.labels)

    @property
    def train_x(self) -> SampleView:
        return SampleView(self.train, self.preprocess, self.input_shape)

    @property
    def test_x(self) -> SampleView:
        return SampleView(self.test, self.preprocess, self.input_shape)

    def augmentation(self, mode: str = "auto") -> Augment | None:
        """The training augmentation of ``mode``: ``auto`` is on for RGB image folders, off otherwise."""
        if mode not in AUGMENT_MODES:
            raise UserError(f"augment must be one of {', '.join(AUGMENT_MODES)}, got {mode!r}")
        on = mode == "on" or (mode == "auto" and self.images and self.input_shape[0] == 3)
        return Augment(size=tuple(self.input_shape[1:])) if on else None

    def preprocessing_record(self) -> dict:
        """What a device must do to a raw input (the evaluation transform), recorded in the manifest,
        every stage's bundle, the ONNX metadata and the arm64 bundle's ``preprocess.json``."""
        prep = self.preprocess
        channels = int(self.input_shape[0])
        return {
            **prep.to_dict(),
            "formula": "x = (crop(resize(convert(raw))) * scale - mean[c]) / std[c]",
            "steps": self._steps(),
            "layout": "NCHW",
            "dtype": "float32",
            "channels": channels,
            "input_size": list(self.input_shape[1:]),
            "pixel_range": list(self.pixel_range),
            "input_range": list(_input_range(self.pixel_range, prep, channels)),
        }

    def _steps(self) -> list[str]:
        prep, steps = self.preprocess, []
        if prep.color:
            steps.append(f"decode the image and convert it to {prep.color} ({self.input_shape[0]} channel(s))")
        if prep.resize:
            steps.append(f"resize to {list(prep.resize)} (bilinear, antialiased)")
        if prep.resize_shorter:
            steps.append(f"resize the shorter side to {prep.resize_shorter} (bilinear, antialiased, aspect kept)")
        if prep.crop:
            steps.append(f"centre-crop {list(prep.crop)}")
        steps.append(f"multiply by {prep.scale:.6g}")
        if prep.mean:
            steps.append(f"subtract mean {list(prep.mean)} per channel")
        if prep.std:
            steps.append(f"divide by std {list(prep.std)} per channel")
        return steps

    def train_batches(self, *, batch_size: int, seed: int, epoch: int, augment: Augment | None = None, start_step: int = 0,
                      rank: int = 0, world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's shuffled batches of ``epoch``; they depend only on ``(seed, epoch)``, so a resumed epoch replays exactly."""
        stream = loader.train_loader(self.train, self.preprocess, batch_size=batch_size, seed=seed, epoch=epoch, augment=augment,
                                     workers=self.workers, rank=rank, world=world, start_step=start_step, pin_memory=self.pin_memory)
        return loader.iterate(stream)

    def test_batches(self, *, batch_size: int = 256) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The test split in order, evaluation transform, decoded batch by batch."""
        dataset = loader.SampleDataset(self.test, self.preprocess)
        return loader.iterate(loader.make_loader(dataset, batch_size=batch_size, workers=self.workers, pin_memory=self.pin_memory))

    def num_train_batches(self, batch_size: int, *, world: int = 1) -> int:
        return loader.batches_per_epoch(len(self.train), batch_size=batch_size, world=world)


def load_dataset(
    spec: str,
    *,
    preprocess: Preprocess | None = None,
    model_input_shape: tuple[int, ...] | None = None,
    train_limit: int = 0,
    test_limit: int = 0,
    seed: int = 0,
    workers: int | None = 0,
    pin_memory: bool = False,
) -> Dataset:
    """Open, limit and describe a data set so its samples come out as ``model_input_shape`` (C, H, W).

    Nothing is decoded here: limits apply to the file / row lists. Image files are converted to the
    model's channels; samples of another spatial size are resized (arrays, grayscale images) or
    resized and centre-cropped (RGB images), recorded in the returned ``preprocess``.
    ``workers=None``: 2 DataLoader workers for image folders, none for arrays.
    """
    channels = model_input_shape[0] if model_input_shape else None
    raw = load_source(spec, seed=seed, channels=channels if channels in (1, 3) else None)
    prep = preprocess or Preprocess(scale=raw.unit_scale)
    if prep.scale is None:  # --mean/--std without --scale: the source's own scale
        prep = replace(prep, scale=raw.unit_scale)
    train, test = raw.train.limited(train_limit), raw.test.limited(test_limit)
    sample_channels = train.samples.channels
    if model_input_shape is not None and sample_channels != channels:
        raise UserError(
            f"data {raw.name} has {sample_channels} channel(s) but the model expects {channels} "
            f"(input shape {list(model_input_shape)})"
        )
    for name, values in (("mean", prep.mean), ("std", prep.std)):
        if len(values) not in (0, 1, sample_channels):
            allowed = "1 value" if sample_channels == 1 else f"1 or {sample_channels} values"
            raise UserError(f"--{name} has {len(values)} values but data {raw.name} has {sample_channels} channel(s): give {allowed}")
    spatial = tuple(model_input_shape[1:]) if model_input_shape else (train.samples.spatial or _first_size(train))
    prep = _geometry(prep, raw, train, spatial)
    return Dataset(
        name=raw.name, train=train, test=test, preprocess=prep, input_shape=(sample_channels, *spatial),
        pixel_range=_pixel_range(raw, prep.scale, (train, test)), images=raw.images,
        workers=default_workers(images=raw.images) if workers is None else workers, pin_memory=pin_memory,
    )


def _geometry(prep: Preprocess, raw: RawData, train: Split, spatial: tuple[int, ...]) -> Preprocess:
    """The resize / crop that brings the samples to ``spatial``."""
    if raw.images:
        prep = replace(prep, color=train.samples.color)
    if prep.resize:
        resized = tuple(prep.resize)
        if resized == spatial:
            return prep
        if any(r < s for r, s in zip(resized, spatial)):
            raise UserError(f"--resize {list(resized)} is smaller than the model's input {list(spatial)}")
        return replace(prep, crop=spatial)
    size = train.samples.spatial or _first_size(train)
    if size == spatial:
        return prep
    if raw.images and train.samples.channels == 3:
        return replace(prep, resize_shorter=int(round(min(spatial) / CROP_RATIO)), crop=spatial)
    return replace(prep, resize=spatial)


def _first_size(split: Split) -> tuple[int, int]:
    """H, W of the first sample (read from its header for an image file)."""
    return tuple(split.samples.read(0).shape[1:]) if split.samples.spatial is None else split.samples.spatial


def _pixel_range(raw: RawData, scale: float, splits) -> tuple[float, float]:
    """The valid range of inputs after scaling, before mean / std (where attacks clip): ``[0, full
    scale]`` for pixel data with a known full scale (8-bit images: ``[0, 255 * scale]``), otherwise
    the range the data spans (read in chunks)."""
    if raw.unit_scale != 1.0:
        ends = (0.0, scale / raw.unit_scale)
    else:
        spans = [value_range(split.samples.array) for split in splits if len(split)]
        ends = (min(s[0] for s in spans) * scale, max(s[1] for s in spans) * scale) if spans else (0.0, 1.0)
    low, high = min(ends), max(ends)
    return (low, high) if high > low else (low, low + 1.0)


def _input_range(pixel_range: tuple[float, float], prep: Preprocess, channels: int) -> tuple[float, float]:
    """Bounds of the preprocessed inputs (bilinear antialiased resizing never leaves the pixel range)."""
    mean = list(prep.mean) * channels if len(prep.mean) == 1 else list(prep.mean) or [0.0] * channels
    std = list(prep.std) * channels if len(prep.std) == 1 else list(prep.std) or [1.0] * channels
    ends = [(value - m) / s for m, s in zip(mean, std) for value in pixel_range]
    return (min(ends), max(ends)) if ends and all(math.isfinite(v) for v in ends) else (0.0, 0.0)


def default_workers(*, images: bool) -> int:
    """DataLoader workers when the user names none: up to 2 for image folders (decoding pays for a
    process), none for arrays; never more than the CPUs this process may run on (TVM's thread pool
    pins the main thread, and a loader with more workers than CPUs only adds contention)."""
    return min(2, len(os.sched_getaffinity(0))) if images else 0
