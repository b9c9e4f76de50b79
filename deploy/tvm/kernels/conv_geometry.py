"""Static geometry of a 2-D convolution (NCHW input, OIHW weight) and of its stride-phase planes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConvGeometry:
    """Shapes of one convolution; ``padding`` is (top, left, bottom, right)."""

    batch: int
    channels: int
    height: int
    width: int
    out_channels: int
    kernel_h: int
    kernel_w: int
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    dilation: tuple[int, int]

    @property
    def out_height(self) -> int:
        span = self.dilation[0] * (self.kernel_h - 1) + 1
        return (self.height + self.padding[0] + self.padding[2] - span) // self.stride[0] + 1

    @property
    def out_width(self) -> int:
        span = self.dilation[1] * (self.kernel_w - 1) + 1
        return (self.width + self.padding[1] + self.padding[3] - span) // self.stride[1] + 1

    @property
    def phase_height(self) -> int:
        """Rows of one stride-phase plane: enough for every tap of every output row."""
        return self.out_height + (self.dilation[0] * (self.kernel_h - 1)) // self.stride[0]

    @property
    def phase_width(self) -> int:
        return self.out_width + (self.dilation[1] * (self.kernel_w - 1)) // self.stride[1]

    @property
    def phases(self) -> tuple[int, int]:
        """Stride phases some tap reads, per axis: ``min(s, d * (k - 1) + 1)`` (1 for a strided 1x1)."""
        return (min(self.stride[0], self.dilation[0] * (self.kernel_h - 1) + 1),
                min(self.stride[1], self.dilation[1] * (self.kernel_w - 1) + 1))

    @property
    def phase_size(self) -> int:
        """Floats of one image's phase planes: ``C * P_h * P_w * Hq * Wq``."""
        return self.channels * self.phases[0] * self.phases[1] * self.phase_height * self.phase_width

    @property
    def macs(self) -> int:
        """Multiply-adds of the dense convolution (groups = 1)."""
        return self.batch * self.out_channels * self.out_height * self.out_width * self.channels * self.kernel_h * self.kernel_w
