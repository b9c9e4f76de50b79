"""Input preprocessing recorded in the manifest and shipped with the artifact."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class Preprocess:
    """``x = (resize(raw) * scale - mean[c]) / std[c]`` on NCHW float32.

    Attributes:
        scale: multiplies raw pixel values (1/255 for uint8 images gives [0, 1]); ``None``: the data
            source's unit scale (1/255 for integer pixels, 1 for float data), filled in by ``load_dataset``.
        mean: per-channel mean subtracted after scaling (empty: none).
        std: per-channel std divided after the mean (empty: none).
        resize: target ``[H, W]`` (bilinear), or empty to keep the data's size.
    """

    scale: float | None = 1.0 / 255.0
    mean: tuple[float, ...] = field(default_factory=tuple)
    std: tuple[float, ...] = field(default_factory=tuple)
    resize: tuple[int, ...] = field(default_factory=tuple)

    def apply(self, raw: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(raw, dtype=np.float32)) * self.scale
        if self.resize and tuple(x.shape[-2:]) != tuple(self.resize):
            x = torch.nn.functional.interpolate(x, size=tuple(self.resize), mode="bilinear", align_corners=False)
        if self.mean:
            x = x - torch.tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1)
        if self.std:
            x = x / torch.tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1)
        return x.contiguous()

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}
