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


class TinyResidual(nn.Module):
    """A 1x8x8 CNN with batch norm and a residual add (for TorchScript / .pt2 / pickle inputs)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        y = self.bn1(self.conv1(x)).relu()
        y = (y + self.bn2(self.conv2(y))).relu()
        return self.fc(self.pool(y).flatten(1))
