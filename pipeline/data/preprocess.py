"""Input preprocessing (the evaluation transform) recorded in the manifest and shipped with the artifact."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from pipeline.data.transforms import center_crop, resize, resize_shorter


@dataclass(frozen=True)
class Preprocess:
    """``x = (crop(resize(convert(raw))) * scale - mean[c]) / std[c]`` per C x H x W float32 sample.

    Attributes:
        scale: multiplies raw pixel values (1/255 for uint8 images gives [0, 1]); ``None``: the data
            source's unit scale (1/255 for integer pixels, 1 for float data), filled in by ``load_dataset``.
        mean: per-channel mean subtracted after scaling (empty: none).
        std: per-channel std divided after the mean (empty: none).
        resize: target ``[H, W]`` (bilinear, antialiased), or empty.
        resize_shorter: resize so the shorter side is this many pixels, keeping the aspect (0: no).
        crop: the central ``[H, W]`` window taken after resizing (empty: none).
        color: what image files are converted to (``"L"`` or ``"RGB"``; empty for array data).
    """

    scale: float | None = 1.0 / 255.0
    mean: tuple[float, ...] = field(default_factory=tuple)
    std: tuple[float, ...] = field(default_factory=tuple)
    resize: tuple[int, ...] = field(default_factory=tuple)
    resize_shorter: int = 0
    crop: tuple[int, ...] = field(default_factory=tuple)
    color: str = ""

    def geometry(self, x: torch.Tensor) -> torch.Tensor:
        """The resize and crop steps on one C x H x W sample."""
        if self.resize:
            x = resize(x, tuple(self.resize))
        if self.resize_shorter:
            x = resize_shorter(x, self.resize_shorter)
        if self.crop:
            x = center_crop(x, tuple(self.crop))
        return x

    def scaled(self, raw: np.ndarray) -> torch.Tensor:
        """Raw values as float32 times ``scale``."""
        return torch.from_numpy(np.array(raw, dtype=np.float32)) * self.scale  # a copy: mapped rows are read-only

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Subtract the mean and divide by the std, per channel (leading dimensions broadcast)."""
        if self.mean:
            x = x - torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        if self.std:
            x = x / torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return x

    def apply(self, raw: np.ndarray) -> torch.Tensor:
        """The evaluation transform on an N x C x H x W batch of raw values."""
        return torch.stack([self.normalize(self.geometry(self.scaled(sample))) for sample in raw]).contiguous()

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}
