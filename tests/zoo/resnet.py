"""ResNet-18 and ResNet-50 (He et al., 2016, "Deep Residual Learning for Image Recognition")."""

import torch
from torch import nn

from tests.zoo.common import conv_bn, repeats, scaled


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(in_channels, channels, 3, stride=stride),
                                  conv_bn(channels, channels, 3, activation=None))
        self.shortcut = _shortcut(in_channels, channels, stride)

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(in_channels, channels, 1), conv_bn(channels, channels, 3, stride=stride),
                                  conv_bn(channels, channels * 4, 1, activation=None))
        self.shortcut = _shortcut(in_channels, channels * 4, stride)

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return conv_bn(in_channels, out_channels, 1, stride=stride, activation=None)


class ResNet(nn.Module):
    """ImageNet ResNet: 7x7/2 stem, 3x3/2 max pool (padding 1), four stages, global mean, linear."""

    def __init__(self, block, depths, *, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000):
        super().__init__()
        channels = scaled(64, width)
        self.stem = nn.Sequential(conv_bn(3, channels, 7, stride=2), nn.MaxPool2d(3, 2, 1))
        stages, in_channels = [], channels
        for index, count in enumerate(depths):
            planes = scaled(64 * 2**index, width)
            for repeat in range(repeats(count, depth)):
                stages.append(block(in_channels, planes, 2 if repeat == 0 and index > 0 else 1))
                in_channels = planes * block.expansion
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, num_classes))

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


def resnet18(*, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000, image_size: int = 224) -> nn.Module:
    """ResNet-18: basic blocks (2, 2, 2, 2)."""
    return ResNet(BasicBlock, (2, 2, 2, 2), width=width, depth=depth, num_classes=num_classes)


def resnet50(*, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000, image_size: int = 224) -> nn.Module:
    """ResNet-50: bottleneck blocks (3, 4, 6, 3)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), width=width, depth=depth, num_classes=num_classes)
