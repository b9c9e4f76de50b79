"""Depthwise "same" convolution (stride 1) over flat pixels, reading the unpadded input: no pad copy.

The depthwise kernel of :mod:`deploy.tvm.kernels.direct_conv` reads a zero-padded copy of its input
(one more kernel call and buffer per layer, which at 32 px costs about as much as the convolution)
and vectorises along one output row, so 14- and 7-wide images run at 2 or 1 lanes. Here output pixel
``q = oy * W + ox`` of channel ``c`` reads tap ``(ky, kx)`` at ``x[c, q + (ky - top) * W + kx - left]``,
so ``V`` consecutive ``q`` (across row ends too) are one vector load. Lanes whose tap falls outside
the image (the padding) are masked off (``llvm.masked.load`` with zero fill), the mask being the
AND of a row test and a column test per lane, both computed from ``q`` once per tile and shared by
all taps. A tile is one channel by ``P`` vectors; the last tile of a channel is moved back to end
at its last pixel. Only for targets with mask registers (AVX-512): NEON and AVX2 would emulate the
masked loads lane by lane.
"""

from __future__ import annotations

from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.direct_conv import Epilogue, broadcast, epilogue_function


def flat_depthwise_fits(geometry: ConvGeometry, *, lanes: int, vectors: int) -> bool:
    """Stride 1, no dilation, output as large as the input, and at least one tile of pixels."""
    g = geometry
    return (g.stride == (1, 1) and g.dilation == (1, 1) and g.out_height == g.height and g.out_width == g.width
            and g.height * g.width >= lanes * vectors)


def flat_depthwise_func(*, geometry: ConvGeometry, lanes: int, vectors: int, epilogue: Epilogue, parallel: bool = False):
    """Build ``(x, weight[C * KH * KW], bias, residual) -> y`` on the unpadded input ``x``.

    Raises:
        ValueError: the geometry does not fit (see :func:`flat_depthwise_fits`).
    """
    from tvm.script import tirx as T

    g = geometry
    if not flat_depthwise_fits(g, lanes=lanes, vectors=vectors):
        raise ValueError(f"flat depthwise kernel needs a stride-1 'same' convolution of at least {lanes * vectors} pixels")
    n_b, channels, height, width = g.batch, g.channels, g.height, g.width
    k_h, k_w, top, left = g.kernel_h, g.kernel_w, g.padding[0], g.padding[1]
    hw, span = height * width, lanes * vectors
    n_tiles = -(-hw // span)
    vtype = f"float32x{lanes}"
    finish = epilogue_function(epilogue, lanes)
    res_shape = (n_b, channels, height, width) if epilogue.residual else (1, 1, 1, 1)
    res_size = n_b * channels * hw if epilogue.residual else 1
    tasks_loop = T.parallel if parallel else T.serial
    with_residual = epilogue.residual

    def tile_start(task):
        return T.min(task % n_tiles * span, hw - span)

    def pixels(task, j):
        return T.Ramp(tile_start(task) + j * lanes, 1, lanes)

    def tap_mask(task, j, ky, kx):  # inline expressions (TVM keeps let-bound values in stack memory)
        row = T.floordiv(pixels(task, j), broadcast(width, lanes)) + broadcast(ky - top, lanes)
        column = T.floormod(pixels(task, j), broadcast(width, lanes)) + broadcast(kx - left, lanes)
        inside_rows = T.And(row >= broadcast(0, lanes), row < broadcast(height, lanes))
        return T.And(inside_rows, T.And(column >= broadcast(0, lanes), column < broadcast(width, lanes)))

    def masked_load(address, mask):
        return T.call_llvm_intrin(vtype, "llvm.masked.load", address, mask, broadcast(T.float32(0), lanes))

    @T.prim_func(private=True)
    def flat_depthwise(x: T.Buffer((n_b, channels, height, width), "float32"), weight: T.Buffer((channels * k_h * k_w,), "float32"),
                       bias: T.Buffer((channels,), "float32"), residual: T.Buffer(res_shape, "float32"),
                       y: T.Buffer((n_b, channels, height, width), "float32")):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        x_flat = T.decl_buffer((n_b * channels * hw,), "float32", data=x.data)
        y_flat = T.decl_buffer((n_b * channels * hw,), "float32", data=y.data)
        res_flat = T.decl_buffer((res_size,), "float32", data=residual.data)
        for n in T.serial(n_b):
            for task in tasks_loop(channels * n_tiles):
                acc = T.alloc_buffer((vectors,), vtype, scope="global")
                for j in T.unroll(vectors):
                    acc[j] = broadcast(bias[task // n_tiles], lanes)
                for ky in T.unroll(k_h):
                    for kx in T.unroll(k_w):
                        for j in T.unroll(vectors):
                            acc[j] = acc[j] + broadcast(weight[(task // n_tiles * k_h + ky) * k_w + kx], lanes) * masked_load(
                                T.address_of(x_flat[(n * channels + task // n_tiles) * hw + tile_start(task) + j * lanes
                                                    + (ky - top) * width + kx - left]), tap_mask(task, j, ky, kx))
                for j in T.unroll(vectors):
                    if with_residual:
                        y_flat[T.Ramp((n * channels + task // n_tiles) * hw + tile_start(task) + j * lanes, 1, lanes)] = finish(
                            acc[j], res_flat[T.Ramp((n * channels + task // n_tiles) * hw + tile_start(task) + j * lanes, 1, lanes)])
                    else:
                        y_flat[T.Ramp((n * channels + task // n_tiles) * hw + tile_start(task) + j * lanes, 1, lanes)] = finish(
                            acc[j], None)

    return flat_depthwise
