"""A preprocessed, split data set with seeded mini-batches."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Iterator

import numpy as np
import torch

from pipeline.data.preprocess import Preprocess
from pipeline.data.sources import load_source
from pipeline.errors import UserError


@dataclass(frozen=True)
class Dataset:
    """Float32 NCHW tensors after preprocessing, plus what produced them."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    preprocess: Preprocess
    pixel_range: tuple[float, float] = (0.0, 1.0)

    @property
    def num_classes(self) -> int:
        return int(max(self.train_y.max(), self.test_y.max())) + 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def preprocessing_record(self) -> dict:
        """The full input preprocessing a device must apply (recorded in the manifest, every stage's
        bundle, the ONNX metadata and the arm64 bundle's ``preprocess.json``): scale, mean, std,
        resize, layout, dtype, channels, the valid pixel range and the range of the preprocessed
        test inputs."""
        x = self.test_x
        return {
            **self.preprocess.to_dict(),
            "formula": "x = (resize(raw) * scale - mean[c]) / std[c]",
            "layout": "NCHW",
            "dtype": "float32",
            "channels": int(x.shape[1]),
            "pixel_range": list(self.pixel_range),
            "input_range": [float(x.min()), float(x.max())] if x.numel() else [],
        }

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for tensor in (self.train_x, self.train_y, self.test_x, self.test_y):
            digest.update(tensor.numpy().tobytes())
        return digest.hexdigest()

    def train_batches(self, *, batch_size: int, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled batches; the order depends only on ``(seed, epoch)`` so a resumed epoch replays exactly."""
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.train_y), generator=generator)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            yield self.train_x[index], self.train_y[index]

    def test_batches(self, *, batch_size: int = 1000) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.test_y), batch_size):
            yield self.test_x[start : start + batch_size], self.test_y[start : start + batch_size]

    def num_train_batches(self, batch_size: int) -> int:
        return -(-len(self.train_y) // batch_size)


def load_dataset(
    spec: str,
    *,
    preprocess: Preprocess | None = None,
    model_input_shape: tuple[int, ...] | None = None,
    train_limit: int = 0,
    test_limit: int = 0,
    seed: int = 0,
) -> Dataset:
    """Load, limit and preprocess a data set so its samples match ``model_input_shape`` (C, H, W).

    When ``preprocess.resize`` is empty and the spatial size differs from the model's, the images are
    resized to the model's size (recorded in the returned ``preprocess``).
    """
    raw = load_source(spec, seed=seed)
    prep = preprocess or Preprocess(scale=raw.unit_scale)
    if preprocess is not None and preprocess.scale is None:  # --mean/--std without --scale: the source's own scale
        prep = replace(prep, scale=raw.unit_scale)
    if model_input_shape is not None:
        channels, spatial = model_input_shape[0], tuple(model_input_shape[1:])
        if raw.train_x.shape[1] != channels:
            raise UserError(
                f"data {raw.name} has {raw.train_x.shape[1]} channel(s) but the model expects {channels} "
                f"(input shape {list(model_input_shape)})"
            )
        if not prep.resize and tuple(raw.train_x.shape[2:]) != spatial:
            prep = replace(prep, resize=spatial)
    channels = raw.train_x.shape[1]
    for name, values in (("mean", prep.mean), ("std", prep.std)):
        if len(values) not in (0, 1, channels):
            allowed = "1 value" if channels == 1 else f"1 or {channels} values"
            raise UserError(f"--{name} has {len(values)} values but data {raw.name} has {channels} channel(s): give {allowed}")
    train_x, train_y = _limit(raw.train_x, raw.train_y, train_limit)
    test_x, test_y = _limit(raw.test_x, raw.test_y, test_limit)
    train_x_raw, test_x_raw = train_x, test_x
    train_x, test_x = prep.apply(train_x), prep.apply(test_x)
    for split, x in (("training", train_x), ("test", test_x)):
        if not bool(torch.isfinite(x).all()):
            raise UserError(f"data {raw.name}: the {split} inputs hold NaN or Inf after preprocessing (check the data and --scale/--mean/--std)")
    return Dataset(
        name=raw.name,
        train_x=train_x,
        train_y=torch.from_numpy(np.asarray(train_y, dtype=np.int64)),
        test_x=test_x,
        test_y=torch.from_numpy(np.asarray(test_y, dtype=np.int64)),
        preprocess=prep,
        pixel_range=_pixel_range(raw, prep.scale, (train_x_raw, test_x_raw)),
    )


def _pixel_range(raw, scale: float, arrays) -> tuple[float, float]:
    """The valid range of inputs after scaling, before mean / std (where attacks clip): ``[0, full
    scale]`` for pixel data with a known full scale (8-bit images: ``[0, 255 * scale]``), otherwise
    the range the data spans."""
    if raw.unit_scale != 1.0:
        ends = (0.0, scale / raw.unit_scale)
    else:
        values = [a for a in arrays if a.size]
        ends = (min(float(a.min()) for a in values) * scale, max(float(a.max()) for a in values) * scale) if values else (0.0, 1.0)
    low, high = min(ends), max(ends)
    return (low, high) if high > low else (low, low + 1.0)


def _limit(x: np.ndarray, y: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    if limit < 0:
        raise UserError(f"sample limits must be >= 0, got {limit}")
    return (x[:limit], y[:limit]) if limit else (x, y)
