"""A small Inception network for 3x32x32 inputs (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015).

Each Inception module runs four branches (1x1; 1x1-3x3; 1x1-3x3-3x3; 3x3 max-pool-1x1) and
concatenates them along channels, so channel pruning must map concatenation offsets.
"""

from __future__ import annotations

import torch
from torch import nn

from compress.models.registry import register_model


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int, *, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class InceptionBlock(nn.Module):
    """``y = cat([b1(x), b3(x), b5(x), bpool(x)], dim=1)``."""

    def __init__(self, in_channels: int, *, b1: int, b3: tuple[int, int], b5: tuple[int, int], pool: int) -> None:
        super().__init__()
        self.branch1 = _conv_bn_relu(in_channels, b1, 1)
        self.branch3 = nn.Sequential(_conv_bn_relu(in_channels, b3[0], 1), _conv_bn_relu(b3[0], b3[1], 3))
        self.branch5 = nn.Sequential(
            _conv_bn_relu(in_channels, b5[0], 1), _conv_bn_relu(b5[0], b5[1], 3), _conv_bn_relu(b5[1], b5[1], 3)
        )
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), _conv_bn_relu(in_channels, pool, 1))
        self.out_channels = b1 + b3[1] + b5[1] + pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], dim=1)


class InceptionSmall(nn.Module):
    """Stem conv(32) - inception - inception - max-pool - inception - global pool - linear."""

    def __init__(self, *, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.stem = _conv_bn_relu(in_channels, 32, 3)
        self.block1 = InceptionBlock(32, b1=16, b3=(16, 24), b5=(8, 8), pool=8)
        self.block2 = InceptionBlock(self.block1.out_channels, b1=24, b3=(24, 32), b5=(8, 16), pool=16)
        self.downsample = nn.MaxPool2d(2)
        self.block3 = InceptionBlock(self.block2.out_channels, b1=32, b3=(32, 48), b5=(16, 24), pool=24)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.block3.out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(self.stem(x)))
        x = self.block3(self.downsample(x))
        return self.fc(torch.flatten(self.pool(x), 1))


@register_model("inception-small", input_shape=(3, 32, 32))
def inception_small(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """Three Inception modules (widths 56, 88, 128) on a 32-channel stem (about 55K parameters)."""
    return InceptionSmall(num_classes=num_classes, in_channels=in_channels)
