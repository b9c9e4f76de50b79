"""ImageNet-size models for ``benchmarks/data_scaling.py`` (importable as ``benchmarks.data_scaling_models:<factory>``).

ResNet-18: He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), Table 1: a 7x7/2
stem, max-pool, four stages of two basic blocks (64, 128, 256, 512 channels), global pool, linear.
MobileNetV2: Sandler et al., "MobileNetV2" (CVPR 2018), Table 2, width 1.0, at 224 px; its inverted
residual block is ``compress.models.mobilenet.InvertedResidual``.
"""

from __future__ import annotations

import torch
from torch import nn

from compress.models.mobilenet import InvertedResidual

_MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class BasicBlock(nn.Module):
    """``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``, the shortcut a strided 1x1 conv when shapes change."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn1(self.conv1(x)).relu()
        return (self.bn2(self.conv2(y)) + self.shortcut(x)).relu()


def resnet18(num_classes: int = 10) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    channels = 64
    for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(channels, width, stride=stride), BasicBlock(width, width, stride=1)]
        channels = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes))


def mobilenet_v2(num_classes: int = 10) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU6()]
    channels = 32
    for expansion, width, repeats, stride in _MOBILENET_V2:
        for index in range(repeats):
            layers.append(InvertedResidual(channels, width, stride=stride if index == 0 else 1, expansion=expansion))
            channels = width
    layers += [nn.Conv2d(channels, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, num_classes))


MODELS = {"resnet18": resnet18, "mobilenetv2": mobilenet_v2}
