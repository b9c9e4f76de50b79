"""LeNet-5 (Caffe variant, 20-50-800-500) and LeNet-300-100 for 1x28x28 inputs."""

from __future__ import annotations

from torch import nn

from compress.models.registry import register_model


def _conv_stage(in_channels: int, out_channels: int, *, batch_norm: bool) -> list[nn.Module]:
    """conv5x5 - [batch norm] - ReLU - maxpool2."""
    norm = [nn.BatchNorm2d(out_channels)] if batch_norm else []
    return [nn.Conv2d(in_channels, out_channels, 5), *norm, nn.ReLU(), nn.MaxPool2d(2)]


def build_lenet5(*, num_classes: int, in_channels: int, batch_norm: bool) -> nn.Sequential:
    """LeNet-5-Caffe, with a ``BatchNorm2d`` after each conv when ``batch_norm``."""
    return nn.Sequential(
        *_conv_stage(in_channels, 20, batch_norm=batch_norm),
        *_conv_stage(20, 50, batch_norm=batch_norm),
        nn.Flatten(),
        nn.Linear(800, 500),
        nn.ReLU(),
        nn.Linear(500, num_classes),
    )


@register_model("lenet5", input_shape=(1, 28, 28))
def lenet5(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """LeNet-5-Caffe: conv5x5(20) - pool - conv5x5(50) - pool - fc800->500 - fc500->classes (431K weights)."""
    return build_lenet5(num_classes=num_classes, in_channels=in_channels, batch_norm=False)


@register_model("lenet5-bn", input_shape=(1, 28, 28))
def lenet5_bn(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """LeNet-5-Caffe with batch norm after each conv (for network slimming)."""
    return build_lenet5(num_classes=num_classes, in_channels=in_channels, batch_norm=True)


@register_model("lenet300", input_shape=(1, 28, 28))
def lenet300(num_classes: int = 10) -> nn.Module:
    """LeNet-300-100: fc784->300 - fc300->100 - fc100->classes (266K weights)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 300),
        nn.ReLU(),
        nn.Linear(300, 100),
        nn.ReLU(),
        nn.Linear(100, num_classes),
    )
