"""Per-sample image transforms on C x H x W float tensors, written with torch ops.

torchvision is not a dependency of this project, so the few transforms the pipeline needs are here:
the evaluation transform (resize, then centre-crop: what a device repeats, recorded in the
preprocessing record) and the training augmentation of Szegedy et al., "Going deeper with
convolutions" (CVPR 2015): a random crop of 8%-100% of the area with aspect ratio in [3/4, 4/3],
resized to the model's input, and a horizontal flip with probability 1/2. Random draws come from a
``torch.Generator`` seeded per sample and epoch, so the result does not depend on which DataLoader
worker decodes the sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional


@dataclass(frozen=True)
class Augment:
    """Training augmentation: random-resized-crop to ``size`` and a horizontal flip."""

    size: tuple[int, int]
    area: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_probability: float = 0.5

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        top, left, height, width = crop_box(x.shape[-2:], area=self.area, ratio=self.ratio, generator=generator)
        x = resize(x[..., top : top + height, left : left + width], self.size)
        if float(torch.rand((), generator=generator)) < self.flip_probability:
            x = x.flip(-1)
        return x

    def to_dict(self) -> dict:
        return {
            "random_resized_crop": {"size": list(self.size), "area": list(self.area), "ratio": [round(v, 6) for v in self.ratio]},
            "horizontal_flip": self.flip_probability,
        }


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with antialiasing (no overshoot: values stay within the input's range)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return functional.interpolate(x[None], size=tuple(size), mode="bilinear", align_corners=False, antialias=True)[0]


def resize_shorter(x: torch.Tensor, side: int) -> torch.Tensor:
    """Resize so the shorter side is ``side``, keeping the aspect ratio."""
    height, width = x.shape[-2:]
    scale = side / min(height, width)
    return resize(x, (max(1, round(height * scale)), max(1, round(width * scale))))


def center_crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The central ``size`` window (the input must be at least that large)."""
    height, width = x.shape[-2:]
    top, left = int(round((height - size[0]) / 2)), int(round((width - size[1]) / 2))
    return x[..., top : top + size[0], left : left + size[1]]


def crop_box(shape, *, area: tuple[float, float], ratio: tuple[float, float], generator: torch.Generator) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of a random crop with area fraction in ``area`` and aspect in
    ``ratio`` (log-uniform); after 10 misses, the largest central crop with an allowed aspect."""
    height, width = int(shape[0]), int(shape[1])
    total = height * width
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        draws = torch.rand(4, generator=generator, dtype=torch.float64).tolist()
        target = total * (area[0] + (area[1] - area[0]) * draws[0])
        aspect = math.exp(log_low + (log_high - log_low) * draws[1])
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(draws[2] * (height - h + 1)), int(draws[3] * (width - w + 1)), h, w
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif aspect > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w
