"""LeNet-5 (Caffe variant, 20-50-800-500) and LeNet-300-100 for 1x28x28 inputs."""

from __future__ import annotations

from torch import nn

from compress.models.registry import register_model


@register_model("lenet5", input_shape=(1, 28, 28))
def lenet5(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """LeNet-5-Caffe: conv5x5(20) - pool - conv5x5(50) - pool - fc800->500 - fc500->classes (431K weights)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 20, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(800, 500),
        nn.ReLU(),
        nn.Linear(500, num_classes),
    )


@register_model("lenet5-bn", input_shape=(1, 28, 28))
def lenet5_bn(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """LeNet-5-Caffe with batch norm after each conv (for network slimming)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 20, 5),
        nn.BatchNorm2d(20),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5),
        nn.BatchNorm2d(50),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(800, 500),
        nn.ReLU(),
        nn.Linear(500, num_classes),
    )


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
