"""A small MobileNetV2 for 3x32x32 inputs (Sandler et al., "MobileNetV2", CVPR 2018).

Inverted residual: 1x1 expand conv-BN-ReLU6, 3x3 depthwise conv-BN-ReLU6, 1x1 linear projection
conv-BN, plus an identity residual when stride is 1 and widths match. Depthwise convolutions
couple their input and output channels; the residuals couple the projections of a stage.
"""

from __future__ import annotations

import torch
from torch import nn

from compress.models.registry import register_model

# (expansion t, output channels c, repeats n, first stride s) as in the paper's Table 2, shrunk.
_SMALL_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 2, 2))


def _conv_bn(in_channels: int, out_channels: int, kernel: int, *, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False)
    return [conv, nn.BatchNorm2d(out_channels)]


class InvertedResidual(nn.Module):
    """``y = x + project(depthwise(expand(x)))`` (residual only when shapes match)."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += _conv_bn(in_channels, hidden, 1) + [nn.ReLU6()]
        layers += _conv_bn(hidden, hidden, 3, stride=stride, groups=hidden) + [nn.ReLU6()]
        layers += _conv_bn(hidden, out_channels, 1)
        self.body = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.use_residual else out


class MobileNetV2Small(nn.Module):
    """Stem conv(16) - inverted residual stages - 1x1 conv(128) - global pool - linear."""

    def __init__(self, *, num_classes: int, in_channels: int, last_channels: int) -> None:
        super().__init__()
        channels = 16
        layers: list[nn.Module] = _conv_bn(in_channels, channels, 3) + [nn.ReLU6()]
        for expansion, width, repeats, stride in _SMALL_SETTINGS:
            for index in range(repeats):
                layers.append(InvertedResidual(channels, width, stride=stride if index == 0 else 1, expansion=expansion))
                channels = width
        layers += _conv_bn(channels, last_channels, 1) + [nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last_channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


@register_model("mobilenetv2-small", input_shape=(3, 32, 32))
def mobilenetv2_small(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """MobileNetV2 shrunk for CIFAR (widths 16-24-32-64, last 128; about 0.12M parameters)."""
    return MobileNetV2Small(num_classes=num_classes, in_channels=in_channels, last_channels=128)
