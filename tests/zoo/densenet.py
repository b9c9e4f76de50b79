"""A DenseNet-style network (Huang et al., 2017): pre-activation BN-ReLU-conv layers whose outputs are
concatenated onto their input, transitions with 2x2 average pooling."""

import torch
from torch import nn

from tests.zoo.common import repeats, scaled


class DenseLayer(nn.Module):
    """BN -> ReLU -> 1x1 conv (4 x growth) -> BN -> ReLU -> 3x3 conv (growth), concatenated to the input."""

    def __init__(self, in_channels: int, growth: int):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, 4 * growth, 1, bias=False),
                                  nn.BatchNorm2d(4 * growth), nn.ReLU(), nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False))

    def forward(self, x):
        return torch.cat((x, self.body(x)), dim=1)


def densenet_style(*, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000, image_size: int = 224,
                   blocks: tuple[int, ...] = (6, 12, 24, 16)) -> nn.Module:
    """DenseNet-121's layout (growth 32 x width, compression 0.5); ``blocks`` sets the layers per block."""
    growth, channels = scaled(32, width), scaled(64, width)
    layers = [nn.Conv2d(3, channels, 7, 2, 3, bias=False), nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    for index, count in enumerate(blocks):
        for _ in range(repeats(count, depth)):
            layers.append(DenseLayer(channels, growth))
            channels += growth
        if index < len(blocks) - 1:
            layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels // 2, 1, bias=False),
                       nn.AvgPool2d(2, 2)]
            channels //= 2
    layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)
