"""Direct NCHW convolution kernels with a fused epilogue: no im2col, dense and block-sparse alike.

The input is first rearranged by :func:`phase_pad_func` into *phase planes*: the zero-padded
image split by stride phase, ``xq[n, c, a, b, i, j] = xpad[n, c, i * s + a, j * s + b]`` (only the
``P = min(s, k)`` phases some tap reads, so a strided 1x1 convolution keeps one). Then the input
pixel of tap ``(c, ky, kx)`` under output pixel ``(oy, ox)`` is::

    xq[n, offset(c, ky, kx) + oy * Wq + ox],
    offset(c, ky, kx) = ((c * P + ky % s) * P + kx % s) * Hq * Wq + (ky // s) * Wq + kx // s

so for every stride the pixels of one output row are *contiguous* and load as one vector. The
weight is stored as blocks of ``R`` output channels by one tap (the ``R x 1`` layout of XNNPACK's
sparse kernels and of Elsen et al., "Fast Sparse ConvNets", CVPR 2020), each block with its tap
offset; all-zero blocks are not stored, so a dense weight is simply the case where none is zero.
The kernel keeps ``R`` vector accumulators of ``V`` pixels in registers::

    acc[r, v] = bias[o] + sum_b data[b, r] * xq[n, offsets[b] + oy * Wq + ox0 + v]
    y[n, o, oy, ox0 + v] = act(acc[r, v] + residual[n, o, oy, ox0 + v])      (o = i * R + r)

The epilogue (bias, residual add, ReLU / clip / sigmoid / SiLU / HardSwish) is applied in registers before
the only store; the sigmoid is :func:`fast_sigmoid`, a rational approximation in vector arithmetic.
Depthwise convolutions (groups = channels) get :func:`depthwise_conv_func`, the same structure with
the ``K x K`` taps of one channel unrolled over ``DEPTHWISE_ROWS`` output rows at once (independent
accumulators: one chain of ``K * K`` dependent FMAs would wait on the FMA latency).

Hand-written because TVM 0.27 has no scheduled CPU convolution (its default CPU build is unscheduled
loops) and no sparse convolution at all. Accumulators are vector-typed buffers in ``global`` scope
(a stack ``alloca`` that LLVM promotes to registers; ``local`` scope becomes a heap workspace).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from deploy.tvm.kernels.conv_geometry import ConvGeometry


DEPTHWISE_ROWS = (4, 2, 1)


@dataclass(frozen=True)
class Epilogue:
    """What the kernel applies to ``acc`` before storing: optional residual add, then activation.

    ``activation`` is ``"none"``, ``"relu"``, ``"clip"`` (``clip_min`` / ``clip_max``, e.g. ReLU6),
    ``"sigmoid"``, ``"silu"`` (``x * sigmoid(x)``, swish) or ``"hardswish"``
    (``x * clip(gate_scale * x + gate_offset, 0, 1)``; HardSwish is 1/6 and 1/2).
    """

    residual: bool = False
    activation: str = "none"
    clip_min: float = 0.0
    clip_max: float = 6.0
    gate_scale: float = 1.0 / 6.0
    gate_offset: float = 0.5


@dataclass(frozen=True)
class ConvTile:
    """Register tile: ``block_rows`` output channels by ``vector`` output pixels of one row."""

    block_rows: int
    vector: int


def phase_pad_func(*, geometry: ConvGeometry):
    """``x[N, C, H, W] -> xq[N, C * P_h * P_w * Hq * Wq]``: zero padding and stride-phase planes."""
    from tvm.script import tirx as T

    g = geometry
    n_b, c_in, h_in, w_in = g.batch, g.channels, g.height, g.width
    s_h, s_w = g.stride
    p_top, p_left = g.padding[0], g.padding[1]
    h_q, w_q = g.phase_height, g.phase_width
    p_h, p_w = g.phases
    plane = g.phase_size

    @T.prim_func(private=True, check_well_formed=False)
    def phase_pad(x: T.Buffer((n_b, c_in, h_in, w_in), "float32"), xq: T.Buffer((n_b, plane), "float32")):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        with T.sblock("root"):  # Relax's reshape detection inspects every single-input call_tir callee
            for n, c, a, b, i in T.grid(n_b, c_in, p_h, p_w, h_q):
                # columns j with an input pixel: p_left <= j * s_w + b < w_in + p_left
                j_begin = T.min(T.max(T.floordiv(p_left - b + s_w - 1, s_w), 0), w_q)
                j_end = T.max(T.min(T.floordiv(w_in + p_left - b + s_w - 1, s_w), w_q), j_begin)
                row = (((c * p_h + a) * p_w + b) * h_q + i) * w_q
                if i * s_h + a >= p_top and i * s_h + a < h_in + p_top:
                    for j in T.serial(j_begin):
                        xq[n, row + j] = T.float32(0)
                    for j in T.serial(j_end - j_begin):
                        xq[n, row + j_begin + j] = x[n, c, i * s_h + a - p_top, (j_begin + j) * s_w + b - p_left]
                    for j in T.serial(w_q - j_end):
                        xq[n, row + j_end + j] = T.float32(0)
                else:
                    for j in T.serial(w_q):
                        xq[n, row + j] = T.float32(0)

    return phase_pad


def tap_offset(geometry: ConvGeometry, channel: int, ky: int, kx: int) -> int:
    """Offset of tap ``(channel, ky, kx)`` in one image's phase planes (see the module docstring)."""
    g = geometry
    s_h, s_w = g.stride
    p_h, p_w = g.phases
    dy, dx = ky * g.dilation[0], kx * g.dilation[1]
    return (((channel * p_h + dy % s_h) * p_w + dx % s_w) * g.phase_height + dy // s_h) * g.phase_width + dx // s_w


def direct_conv_func(*, geometry: ConvGeometry, tile: ConvTile, nnz_blocks: int, epilogue: Epilogue, parallel: bool = False):
    """Build the fused block-sparse direct convolution ``(xq, data, offsets, indptr, bias[, res]) -> y``.

    ``data`` is ``[nnz_blocks * R]`` (block ``b``'s ``R`` weights), ``offsets[b]`` its tap offset,
    ``indptr`` over the ``O / R`` block rows (CSR of blocks).
    """
    from tvm.script import tirx as T

    g = geometry
    n_b, c_out, h_out, w_out = g.batch, g.out_channels, g.out_height, g.out_width
    w_q, plane = g.phase_width, g.phase_size
    r_rows, v_len = tile.block_rows, tile.vector
    if w_out % v_len:
        raise ValueError(f"the pixel vector {v_len} must divide the output width {w_out}")
    n_rows, n_tiles = -(-c_out // r_rows), w_out // v_len
    vtype = vector_type(v_len)
    nnz = max(nnz_blocks, 1)
    finish = epilogue_function(epilogue, v_len)
    res_shape = (n_b, c_out, h_out, w_out) if epilogue.residual else (1, 1, 1, 1)
    rows_loop = T.parallel if parallel else T.serial

    @T.prim_func(private=True)
    def direct_conv(xq: T.Buffer((n_b, plane), "float32"), data: T.Buffer((nnz * r_rows,), "float32"),
                    offsets: T.Buffer((nnz,), "int32"), indptr: T.Buffer((n_rows + 1,), "int32"),
                    bias: T.Buffer((c_out,), "float32"), residual: T.Buffer(res_shape, "float32"),
                    y: T.Buffer((n_b, c_out, h_out, w_out), "float32")):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        for n in T.serial(n_b):
            for task in rows_loop(n_rows * h_out):
                for t in T.serial(n_tiles):
                    acc = T.alloc_buffer((r_rows,), vtype, scope="global")
                    for r in T.unroll(r_rows):
                        acc[r] = broadcast(bias[T.min(task // h_out * r_rows + r, c_out - 1)], v_len)
                    for b in T.serial(indptr[task // h_out], indptr[task // h_out + 1]):
                        for r in T.unroll(r_rows):
                            acc[r] = acc[r] + broadcast(data[b * r_rows + r], v_len) * xq[
                                n, ramp(offsets[b] + task % h_out * w_q + t * v_len, v_len)]
                    for r in T.unroll(r_rows):
                        if task // h_out * r_rows + r < c_out:  # the last tile may be partial
                            y[n, task // h_out * r_rows + r, task % h_out, ramp(t * v_len, v_len)] = finish(
                                acc[r], residual[n, task // h_out * r_rows + r, task % h_out, ramp(t * v_len, v_len)])

    return direct_conv


def depthwise_conv_func(*, geometry: ConvGeometry, vector: int, epilogue: Epilogue, parallel: bool = False):
    """Build the fused depthwise convolution ``(xq, weight[C * KH * KW], bias[, res]) -> y``."""
    from tvm.script import tirx as T

    g = geometry
    n_b, channels, h_out, w_out = g.batch, g.channels, g.out_height, g.out_width
    k_h, k_w = g.kernel_h, g.kernel_w
    s_h, s_w = g.stride
    d_h, d_w = g.dilation
    h_q, w_q, plane = g.phase_height, g.phase_width, g.phase_size
    p_h, p_w = g.phases
    if w_out % vector:
        raise ValueError(f"the pixel vector {vector} must divide the output width {w_out}")
    v_len, n_tiles = vector, w_out // vector
    y_rows = next(rows for rows in DEPTHWISE_ROWS if h_out % rows == 0)
    vtype = vector_type(v_len)
    finish = epilogue_function(epilogue, v_len)
    res_shape = (n_b, channels, h_out, w_out) if epilogue.residual else (1, 1, 1, 1)
    channels_loop = T.parallel if parallel else T.serial

    @T.prim_func(private=True)
    def depthwise_conv(xq: T.Buffer((n_b, plane), "float32"), weight: T.Buffer((channels * k_h * k_w,), "float32"),
                       bias: T.Buffer((channels,), "float32"), residual: T.Buffer(res_shape, "float32"),
                       y_out: T.Buffer((n_b, channels, h_out, w_out), "float32")):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        for n in T.serial(n_b):
            for c in channels_loop(channels):
                for row_block, t in T.grid(h_out // y_rows, n_tiles):
                    acc = T.alloc_buffer((y_rows,), vtype, scope="global")
                    for y in T.unroll(y_rows):
                        acc[y] = broadcast(bias[c], v_len)
                    for ky in T.unroll(k_h):
                        for kx in T.unroll(k_w):
                            for y in T.unroll(y_rows):
                                acc[y] = acc[y] + broadcast(weight[(c * k_h + ky) * k_w + kx], v_len) * xq[n, ramp(
                                    (((c * p_h + ky * d_h % s_h) * p_w + kx * d_w % s_w) * h_q + ky * d_h // s_h
                                     + row_block * y_rows + y) * w_q + kx * d_w // s_w + t * v_len, v_len)]
                    for y in T.unroll(y_rows):
                        y_out[n, c, row_block * y_rows + y, ramp(t * v_len, v_len)] = finish(
                            acc[y], residual[n, c, row_block * y_rows + y, ramp(t * v_len, v_len)])

    return depthwise_conv


def broadcast(value, lanes: int):
    """``value`` in every lane (the scalar itself for one lane: TIR has no 1-lane vectors)."""
    from tvm.script import tirx as T

    return value if lanes == 1 else T.Broadcast(value, lanes)


def ramp(base, lanes: int):
    """Index of ``lanes`` consecutive elements from ``base`` (``base`` itself for one lane)."""
    from tvm.script import tirx as T

    return base if lanes == 1 else T.Ramp(base, 1, lanes)


def vector_type(lanes: int) -> str:
    return "float32" if lanes == 1 else f"float32x{lanes}"


def epilogue_function(epilogue: Epilogue, lanes: int):
    """``finish(acc, residual) -> stored vector`` for ``epilogue`` (a Python function the parser inlines)."""
    from tvm.script import tirx as T

    def finish(value, residual_value):
        if epilogue.residual:
            value = value + residual_value
        if epilogue.activation == "relu":
            return T.max(value, broadcast(T.float32(0), lanes))
        if epilogue.activation == "clip":
            value = T.max(value, broadcast(T.float32(epilogue.clip_min), lanes))
            return value if math.isinf(epilogue.clip_max) else T.min(value, broadcast(T.float32(epilogue.clip_max), lanes))
        if epilogue.activation == "sigmoid":
            return fast_sigmoid(value, lanes)
        if epilogue.activation == "silu":
            return value * fast_sigmoid(value, lanes)
        if epilogue.activation == "hardswish":
            gate = value * broadcast(T.float32(epilogue.gate_scale), lanes) + broadcast(T.float32(epilogue.gate_offset), lanes)
            return value * T.min(T.max(gate, broadcast(T.float32(0), lanes)), broadcast(T.float32(1), lanes))
        return value

    return finish


# MLAS's logistic (onnxruntime's own sigmoid, as in Eigen): an odd degree-9 over an even degree-10
# polynomial on [-18, 18], about 2e-7 absolute error.
SIGMOID_RANGE = 18.0
SIGMOID_NUMERATOR = (4.37031012579801e-11, 1.15627324459942e-07, 6.08574864600143e-05, 8.51377133304701e-03,
                     2.48287947061529e-01)
SIGMOID_DENOMINATOR = (6.10247389755681e-13, 5.76102136993427e-09, 6.29106785017040e-06, 1.70198817374094e-03,
                       1.16817656904453e-01, 9.93151921023180e-01)


def fast_sigmoid(value, lanes: int):
    """``sigmoid(value)`` as plain vector arithmetic: a rational approximation, no ``exp``.

    LLVM lowers a vector ``exp`` to one scalar ``expf`` call per lane when no vector math library is
    linked; this form also takes fewer instructions than ``1 / (1 + fast_exp(-x))``.
    """
    from tvm.script import tirx as T

    def const(c):
        return broadcast(T.float32(c), lanes)

    x = T.min(T.max(value, const(-SIGMOID_RANGE)), const(SIGMOID_RANGE))
    square = x * x
    numerator = _polynomial(square, SIGMOID_NUMERATOR, const) * x
    denominator = _polynomial(square, SIGMOID_DENOMINATOR, const)
    ratio = numerator / denominator + const(0.5)
    return T.min(T.max(ratio, const(0.0)), const(1.0))


def _polynomial(x, coefficients, const):
    """Horner's rule, highest power first."""
    result = const(coefficients[0])
    for c in coefficients[1:]:
        result = result * x + const(c)
    return result
