"""ImageNet-size models for ``benchmarks/data_scaling.py`` (importable as ``benchmarks.data_scaling_models:<factory>``).

ResNet-18: He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), Table 1: a 7x7/2
stem, max-pool, four stages of two basic blocks (64, 128, 256, 512 channels), global pool, linear.
MobileNetV2: Sandler et al., "MobileNetV2" (CVPR 2018), Table 2, width 1.0, at 224 px; its inverted
residual block is ``compress.models.mobilenet.InvertedResidual``, ResNet-18's basic block
``compress.models.resnet.BasicBlock``.
"""

from __future__ import annotations

from torch import nn

from compress.models.mobilenet import InvertedResidual
from compress.models.resnet import BasicBlock

_MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


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
