"""im2col kernel: NCHW input to the GEMM view used by the sparse and ternary matmuls.

``cols[p, k]`` with ``p = (n * Ho + oy) * Wo + ox`` and ``k = (c * KH + ky) * KW + kx`` (the
order of an OIHW weight reshaped to ``[O, C * KH * KW]``)::

    cols[p, k] = x[n, c, oy * sh - pt + ky * dh, ox * sw - pl + kx * dw]   (0 outside)

so a convolution becomes ``y[p, o] = cols @ W.T``. Parallel over output pixels. The body sits in a
root block because Relax's reshape detection inspects every single-input ``call_tir`` callee.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConvGeometry:
    """Static geometry of a 2-D convolution (NCHW input, OIHW weight, groups = 1)."""

    batch: int
    channels: int
    height: int
    width: int
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
    def gemm_rows(self) -> int:
        return self.batch * self.out_height * self.out_width

    @property
    def gemm_depth(self) -> int:
        return self.channels * self.kernel_h * self.kernel_w


def im2col_func(*, geometry: ConvGeometry):
    """Build the im2col PrimFunc ``(x[N, C, H, W]) -> cols[P, K]`` for one convolution."""
    from tvm.script import tirx as T

    g = geometry
    n_b, c_in, h_in, w_in = g.batch, g.channels, g.height, g.width
    k_h, k_w, h_out, w_out = g.kernel_h, g.kernel_w, g.out_height, g.out_width
    s_h, s_w = g.stride
    p_top, p_left = g.padding[0], g.padding[1]
    d_h, d_w = g.dilation
    rows, depth = g.gemm_rows, g.gemm_depth

    @T.prim_func(private=True, check_well_formed=False)
    def im2col(x: T.Buffer((n_b, c_in, h_in, w_in), "float32"), cols: T.Buffer((rows, depth), "float32")):
        T.func_attr({"tir.noalias": True, "tirx.is_scheduled": True})
        with T.sblock("root"):
            for p in T.parallel(rows):
                for k in T.serial(depth):
                    cols[p, k] = T.if_then_else(
                        (p // w_out % h_out) * s_h - p_top + (k // k_w % k_h) * d_h >= 0
                        and (p // w_out % h_out) * s_h - p_top + (k // k_w % k_h) * d_h < h_in
                        and (p % w_out) * s_w - p_left + (k % k_w) * d_w >= 0
                        and (p % w_out) * s_w - p_left + (k % k_w) * d_w < w_in,
                        x[p // (w_out * h_out), k // (k_w * k_h),
                          T.min(T.max((p // w_out % h_out) * s_h - p_top + (k // k_w % k_h) * d_h, 0), h_in - 1),
                          T.min(T.max((p % w_out) * s_w - p_left + (k % k_w) * d_w, 0), w_in - 1)],
                        T.float32(0))

    return im2col
