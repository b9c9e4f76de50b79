"""Small image folders and an RGB model for the data tests (importable as ``tests.pipeline.data_fixtures:rgb_cnn``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from compress.models import list_models
from compress.models.registry import register_model
from pipeline.model.bundle import ModelBundle, save_bundle

RGB_FACTORY = "tests.pipeline.data_fixtures:rgb_cnn"
RGB_ARCH = "tests-rgb-cnn"
RGB_SHAPE = (3, 16, 16)


def rgb_cnn(num_classes: int = 2) -> nn.Module:
    """A 3x16x16 CNN: conv, pool, linear."""
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64, num_classes))


if RGB_ARCH not in list_models():
    register_model(RGB_ARCH, input_shape=RGB_SHAPE)(rgb_cnn)


def save_rgb_bundle(path: Path, *, arch: str = RGB_ARCH) -> Path:
    torch.manual_seed(0)
    return save_bundle(path, ModelBundle(arch=arch, input_shape=RGB_SHAPE, state_dict=rgb_cnn().state_dict()))


def image_folder(root: Path, *, per_class: int = 6, classes: tuple[str, ...] = ("cat", "dog"), mode: str = "RGB",
                 sizes: tuple[tuple[int, int], ...] = ((20, 24), (24, 20), (22, 22))) -> Path:
    """``root/<class>/<n>.png``: coloured noise of a few sizes (width, height), one class per tint."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            width, height = sizes[index % len(sizes)]
            pixels = rng.integers(0, 120, (height, width, 3), dtype=np.uint8) + np.uint8(100 * label)
            Image.fromarray(pixels).convert(mode).save(root / name / f"{index}.png")
    return root
