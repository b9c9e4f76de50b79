"""SqueezeNet 1.1 (Iandola et al., 2016) and VGG-11 with BatchNorm (Simonyan & Zisserman, 2015)."""

import torch
from torch import nn

from tests.zoo.common import scaled

_VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
_FIRES = ((16, 64), (16, 64), "M", (32, 128), (32, 128), "M", (48, 192), (48, 192), (64, 256), (64, 256))


class Fire(nn.Module):
    """1x1 squeeze -> ReLU -> concat(1x1 expand, 3x3 expand) -> ReLU."""

    def __init__(self, in_channels: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(in_channels, squeeze, 1), nn.ReLU())
        self.expand1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU())
        self.expand3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU())

    def forward(self, x):
        x = self.squeeze(x)
        return torch.cat((self.expand1(x), self.expand3(x)), dim=1)


def squeezenet1_1(*, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000, image_size: int = 224) -> nn.Module:
    """SqueezeNet 1.1: 3x3/2 stem, ceil-mode 3x3/2 max pools, fire modules, conv classifier, global mean
    (a fixed layer list: ``depth`` is accepted for a uniform factory signature and ignored)."""
    channels = scaled(64, width)
    layers = [nn.Conv2d(3, channels, 3, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True)]
    for entry in _FIRES:
        if entry == "M":
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            continue
        squeeze, expand = scaled(entry[0], width), scaled(entry[1], width)
        layers.append(Fire(channels, squeeze, expand))
        channels = 2 * expand
    layers += [nn.Dropout(0.5), nn.Conv2d(channels, num_classes, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
               nn.Flatten()]
    return nn.Sequential(*layers)


def vgg11_bn(*, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000, image_size: int = 224) -> nn.Module:
    """VGG-11-BN: 3x3 conv-BN-ReLU stacks and 2x2 max pools, average pool to image/32, three linear layers
    (hidden 4096 x width; a fixed layer list, ``depth`` ignored)."""
    layers, channels = [], 3
    for entry in _VGG11:
        if entry == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        out = scaled(entry, width)
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
        channels = out
    pooled, hidden = max(1, image_size // 32), scaled(4096, width)
    layers += [nn.AdaptiveAvgPool2d(pooled), nn.Flatten(), nn.Linear(channels * pooled * pooled, hidden), nn.ReLU(),
               nn.Dropout(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(), nn.Linear(hidden, num_classes)]
    return nn.Sequential(*layers)
