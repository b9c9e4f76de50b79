"""Building blocks shared by the zoo models."""

import math

from torch import nn


def scaled(channels: int, width: float, *, divisor: int = 8) -> int:
    """``channels * width`` rounded to a multiple of ``divisor`` (at least ``divisor``), as MobileNet's
    ``_make_divisible`` does (never more than 10% below the exact value)."""
    value = max(divisor, int(channels * width + divisor / 2) // divisor * divisor)
    return value + divisor if value < 0.9 * channels * width else value


def repeats(count: int, depth: float) -> int:
    """EfficientNet's depth scaling (Tan & Le, 2019): ``ceil(count * depth)`` blocks, at least one."""
    return max(1, math.ceil(count * depth))


def conv_bn(in_channels: int, out_channels: int, kernel: int, *, stride: int = 1, groups: int = 1,
            activation: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """Conv (no bias, same padding) -> BatchNorm -> activation."""
    layers = [nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(out_channels)]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al., 2018): global mean -> 1x1 reduce -> act -> 1x1 expand -> gate."""

    def __init__(self, channels: int, squeeze: int, *, activation=nn.ReLU, gate=nn.Sigmoid):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.activation = activation()
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.gate = gate()

    def forward(self, x):
        return x * self.gate(self.expand(self.activation(self.reduce(self.pool(x)))))
