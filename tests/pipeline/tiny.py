"""Tiny models for fast pipeline tests (importable as ``tests.pipeline.tiny:<factory>``)."""

from __future__ import annotations

from torch import nn


def tiny_cnn(num_classes: int = 10) -> nn.Module:
    """A 1x8x8 CNN (scikit-learn digits) with a conv, a pool and two linear layers."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 32),
        nn.ReLU(),
        nn.Linear(32, num_classes),
    )
