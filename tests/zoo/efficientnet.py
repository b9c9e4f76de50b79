"""EfficientNet-B0 (Tan & Le, 2019): MBConv blocks with SiLU (swish) and squeeze-excite."""

import torch
from torch import nn

from tests.zoo.common import conv_bn, repeats, scaled
from tests.zoo.mobilenet import InvertedResidual

# expansion, kernel, stride, output channels, repeats
_B0 = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
       (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))


class SiLU(nn.Module):
    """``x * sigmoid(x)`` written out, as exporters of TF-style EfficientNets emit it (Sigmoid, Mul)."""

    def forward(self, x):
        return x * torch.sigmoid(x)


def efficientnet_b0(*, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000, image_size: int = 224) -> nn.Module:
    """EfficientNet-B0: MBConv1/MBConv6 stages, SE ratio 0.25 of the block input, 1280-channel head."""
    channels = scaled(32, width)
    layers = [conv_bn(3, channels, 3, stride=2, activation=SiLU)]
    for expansion, kernel, stride, out, count in _B0:
        out = scaled(out, width)
        for index in range(repeats(count, depth)):
            layers.append(InvertedResidual(channels, channels * expansion, out, kernel=kernel,
                                           stride=stride if index == 0 else 1, activation=SiLU,
                                           squeeze=max(1, channels // 4), se_gate=nn.Sigmoid))
            channels = out
    head = scaled(1280, width)
    layers += [conv_bn(channels, head, 1, activation=SiLU), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(head, num_classes)]
    return nn.Sequential(*layers)
