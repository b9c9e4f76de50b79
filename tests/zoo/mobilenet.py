"""MobileNetV2 (Sandler et al., 2018) and MobileNetV3-Small (Howard et al., 2019)."""

from torch import nn

from tests.zoo.common import SqueezeExcite, conv_bn, repeats, scaled

# MobileNetV2: expansion t, output channels c, repeats n, first stride s.
_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
# MobileNetV3-Small: kernel, expanded, out, squeeze-excite, hardswish, stride.
_V3_SMALL = ((3, 16, 16, True, False, 2), (3, 72, 24, False, False, 2), (3, 88, 24, False, False, 1),
             (5, 96, 40, True, True, 2), (5, 240, 40, True, True, 1), (5, 240, 40, True, True, 1),
             (5, 120, 48, True, True, 1), (5, 144, 48, True, True, 1), (5, 288, 96, True, True, 2),
             (5, 576, 96, True, True, 1), (5, 576, 96, True, True, 1))


class InvertedResidual(nn.Module):
    """1x1 expand -> depthwise kxk -> [squeeze-excite] -> 1x1 project (linear), residual when shapes match."""

    def __init__(self, in_channels: int, expanded: int, out_channels: int, *, kernel: int = 3, stride: int = 1,
                 activation=nn.ReLU6, squeeze: int = 0, se_gate=nn.Hardsigmoid):
        super().__init__()
        layers = [] if expanded == in_channels else [conv_bn(in_channels, expanded, 1, activation=activation)]
        layers.append(conv_bn(expanded, expanded, kernel, stride=stride, groups=expanded, activation=activation))
        if squeeze:
            layers.append(SqueezeExcite(expanded, squeeze, gate=se_gate))
        layers.append(conv_bn(expanded, out_channels, 1, activation=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


def mobilenet_v2(*, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000, image_size: int = 224) -> nn.Module:
    """MobileNetV2: inverted residual blocks with ReLU6, 1280-channel head."""
    channels = scaled(32, width)
    layers = [conv_bn(3, channels, 3, stride=2, activation=nn.ReLU6)]
    for expansion, out, count, stride in _V2:
        out = scaled(out, width)
        for index in range(repeats(count, depth)):
            layers.append(InvertedResidual(channels, channels * expansion, out, stride=stride if index == 0 else 1))
            channels = out
    head = scaled(1280, max(width, 1.0))
    layers += [conv_bn(channels, head, 1, activation=nn.ReLU6), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Dropout(0.2), nn.Linear(head, num_classes)]
    return nn.Sequential(*layers)


def mobilenet_v3_small(*, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000, image_size: int = 224) -> nn.Module:
    """MobileNetV3-Small: hardswish, squeeze-excite with a hard-sigmoid gate, 1024-unit head."""
    channels = scaled(16, width)
    layers = [conv_bn(3, channels, 3, stride=2, activation=nn.Hardswish)]
    for kernel, expanded, out, use_se, hardswish, stride in _v3_small_rows(depth):
        expanded, out = scaled(expanded, width), scaled(out, width)
        layers.append(InvertedResidual(channels, expanded, out, kernel=kernel, stride=stride,
                                       activation=nn.Hardswish if hardswish else nn.ReLU,
                                       squeeze=scaled(expanded // 4, 1.0) if use_se else 0))
        channels = out
    last = 6 * channels
    hidden = scaled(1024, width)
    layers += [conv_bn(channels, last, 1, activation=nn.Hardswish), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(last, hidden), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(hidden, num_classes)]
    return nn.Sequential(*layers)


def _v3_small_rows(depth: float) -> list[tuple]:
    """The table's rows, each stage (the rows from one strided block to the next) cut to
    ``ceil(len * depth)`` rows, its first rows kept."""
    stages: list[list[tuple]] = []
    for row in _V3_SMALL:
        if row[-1] > 1 or not stages:
            stages.append([])
        stages[-1].append(row)
    return [row for stage in stages for row in stage[: repeats(len(stage), depth)]]
