"""ResNet-20 for CIFAR-sized inputs (He et al., "Deep Residual Learning", CVPR 2016, §4.2).

Three stages of ``depth`` basic blocks (3x3 conv-BN-ReLU-3x3 conv-BN + shortcut) with widths
16-32-64. Downsampling shortcuts are 1x1 conv + BN (option B), so every residual addition couples
the channels of two convolutions — the case channel pruning must handle.
"""

from __future__ import annotations

import torch
from torch import nn

from compress.models.registry import register_model


class BasicBlock(nn.Module):
    """``y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """Stem conv(16) - 3 stages x ``depth`` blocks (16, 32, 64) - global pool - linear."""

    def __init__(self, *, depth: int, num_classes: int, in_channels: int, widths: tuple[int, int, int]) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        blocks = []
        channels = widths[0]
        for stage, width in enumerate(widths):
            for index in range(depth):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlock(channels, width, stride=stride))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.blocks(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


@register_model("resnet20", input_shape=(3, 32, 32))
def resnet20(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """ResNet-20 (3 x 3 basic blocks, widths 16-32-64, about 0.27M parameters)."""
    return CifarResNet(depth=3, num_classes=num_classes, in_channels=in_channels, widths=(16, 32, 64))
