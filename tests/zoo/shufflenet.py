"""ShuffleNetV2 1.0x (Ma et al., 2018): channel split, depthwise convs, concat and channel shuffle."""

import torch
from torch import nn

from tests.zoo.common import conv_bn, repeats, scaled

_STAGES = ((116, 4), (232, 8), (464, 4))


def channel_shuffle(x, groups: int = 2):
    """Reshape to (N, g, C/g, H, W), swap the group axes, flatten back. Written as torchvision writes it,
    sizes from ``x.size()``: exported with a static input the exporter folds them into constant
    ``Reshape`` targets; with ``dynamic_axes`` they stay ``Shape`` / ``Gather`` / ``Div`` chains, which
    the compile stage folds for its static input shape."""
    n, c, h, w = x.size()
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        half = out_channels // 2
        self.stride = stride
        branch_in = in_channels if stride > 1 else half
        if stride > 1:
            self.left = nn.Sequential(conv_bn(in_channels, in_channels, 3, stride=2, groups=in_channels, activation=None),
                                      conv_bn(in_channels, half, 1))
        self.right = nn.Sequential(conv_bn(branch_in, half, 1),
                                   conv_bn(half, half, 3, stride=stride, groups=half, activation=None),
                                   conv_bn(half, half, 1))

    def forward(self, x):
        if self.stride == 1:
            left, right = x.split(x.size(1) // 2, dim=1)
            out = torch.cat((left, self.right(right)), dim=1)
        else:
            out = torch.cat((self.left(x), self.right(x)), dim=1)
        return channel_shuffle(out)


def shufflenet_v2(*, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000, image_size: int = 224) -> nn.Module:
    """ShuffleNetV2 1.0x: 3x3/2 stem, 3x3/2 max pool, stages of (116, 232, 464) x width, 1024-channel conv5."""
    channels = scaled(24, width)
    layers = [conv_bn(3, channels, 3, stride=2), nn.MaxPool2d(3, 2, 1)]
    for out, count in _STAGES:
        out = scaled(out, width, divisor=16)
        for index in range(repeats(count, depth)):
            layers.append(ShuffleUnit(channels, out, 2 if index == 0 else 1))
            channels = out
    last = scaled(1024, width)
    layers += [conv_bn(channels, last, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(last, num_classes)]
    return nn.Sequential(*layers)
