"""QuantizeLinear into the int8 kernels' input: float NCHW -> unsigned byte quads on phase planes.

``x [N, C, H, W]`` (float32) becomes ``xq [N, ceil(C / 4) * P_h * P_w * Hq * Wq]`` (int32), the
zero-padded stride-phase planes of :func:`deploy.tvm.kernels.direct_conv.phase_pad_func` with four
consecutive channels ``4 c4 .. 4 c4 + 3`` packed in one int32 (channel ``4 c4 + t`` in byte ``t``)::

    q = clamp(round_half_even(x / s) + z, -128, 127)         (ONNX QuantizeLinear, int8)
    byte = q + 128                                            (the dot's unsigned operand)

Padding (and the channels past ``C`` of the last quad) hold ``z + 128``, the code of 0.0, so the
kernels need no bounds checks. One pass over the input replaces both the float pad copy and the
QuantizeLinear; the planes are a quarter of the float planes' bytes. A linear layer's input
``[M, K]`` is the 1x1 case (``H = W = 1``): ``xq [M, ceil(K / 4)]``.
"""

from __future__ import annotations

from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.int8_dot import QUAD_OFFSET

PACK_VECTOR = 16


def quad_channels(channels: int) -> int:
    """Quads of four channels covering ``channels``."""
    return -(-channels // 4)


def packed_size(geometry: ConvGeometry) -> int:
    """int32 words of one image's packed phase planes."""
    g = geometry
    return quad_channels(g.channels) * g.phases[0] * g.phases[1] * g.phase_height * g.phase_width


def quantize_pack_func(*, geometry: ConvGeometry, scale: float, zero_point: int):
    """Build ``x [N, C, H, W] (float32) -> xq [N, packed_size] (int32)`` (see the module docstring)."""
    from tvm.script import tirx as T

    g = geometry
    n_b, c_in, h_in, w_in = g.batch, g.channels, g.height, g.width
    s_h, s_w = g.stride
    p_top, p_left = g.padding[0], g.padding[1]
    h_q, w_q = g.phase_height, g.phase_width
    p_h, p_w = g.phases
    c_quads, size = quad_channels(c_in), packed_size(g)
    pad_byte = zero_point + QUAD_OFFSET
    pad_word = _signed32(pad_byte | (pad_byte << 8) | (pad_byte << 16) | (pad_byte << 24))

    def byte(x, n, channel, row, column, t, lanes=1):
        def const(value, dtype="float32"):
            scalar = T.float32(value) if dtype == "float32" else T.int32(value)
            return T.Broadcast(scalar, lanes) if lanes > 1 else scalar

        level = T.nearbyint(x[n, channel, row, column] / const(scale)) + const(float(zero_point))
        clamped = T.min(T.max(level, const(-128.0)), const(127.0))
        code = T.Cast("int32x16" if lanes > 1 else "int32", clamped) + const(QUAD_OFFSET, "int32")
        return T.shift_left(code, const(8 * t, "int32"))

    def word(x, n, c4, row, column, lanes=1):  # the last quad may hold fewer than four channels
        pad = T.Broadcast(T.int32(0), lanes) if lanes > 1 else T.int32(0)
        total = byte(x, n, T.min(c4 * 4, c_in - 1), row, column, 0, lanes)
        for t in range(1, 4):
            filler = T.int32(_signed32(pad_byte << (8 * t)))
            total = total | T.if_then_else(c4 * 4 + t < c_in, byte(x, n, T.min(c4 * 4 + t, c_in - 1), row, column, t, lanes),
                                           pad + (T.Broadcast(filler, lanes) if lanes > 1 else filler))
        return total

    def full_word(x, n, c4, row, column, lanes=1):  # all four channels exist: no select
        total = byte(x, n, c4 * 4, row, column, 0, lanes)
        for t in range(1, 4):
            total = total | byte(x, n, c4 * 4 + t, row, column, t, lanes)
        return total

    if s_w == 1:
        return _unit_stride_pack(geometry, word, full_word, pad_word)

    @T.prim_func(private=True, check_well_formed=False)
    def quantize_pack(x: T.Buffer((n_b, c_in, h_in, w_in), "float32"), xq: T.Buffer((n_b, size), "int32")):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        with T.sblock("root"):
            for n, c4, a, b, i in T.grid(n_b, c_quads, p_h, p_w, h_q):
                j_begin = T.min(T.max(T.floordiv(p_left - b + s_w - 1, s_w), 0), w_q)
                j_end = T.max(T.min(T.floordiv(w_in + p_left - b + s_w - 1, s_w), w_q), j_begin)
                row = (((c4 * p_h + a) * p_w + b) * h_q + i) * w_q
                if i * s_h + a >= p_top and i * s_h + a < h_in + p_top:
                    for j in T.serial(j_begin):
                        xq[n, row + j] = T.int32(pad_word)
                    if c4 * 4 + 3 < c_in:
                        for j in T.serial(j_end - j_begin):
                            xq[n, row + j_begin + j] = full_word(x, n, c4, i * s_h + a - p_top, (j_begin + j) * s_w + b - p_left)
                    else:
                        for j in T.serial(j_end - j_begin):
                            xq[n, row + j_begin + j] = word(x, n, c4, i * s_h + a - p_top, (j_begin + j) * s_w + b - p_left)
                    for j in T.serial(w_q - j_end):
                        xq[n, row + j_end + j] = T.int32(pad_word)
                else:
                    for j in T.serial(w_q):
                        xq[n, row + j] = T.int32(pad_word)

    return quantize_pack


def _unit_stride_pack(geometry: ConvGeometry, word, full_word, pad_word: int):
    """:func:`quantize_pack_func` for column stride 1: the columns with an input pixel are known
    when the kernel is built, so the row loop is vectorised by 16 (LLVM left the general loop scalar)."""
    from tvm.script import tirx as T

    g = geometry
    n_b, c_in, h_in, w_in = g.batch, g.channels, g.height, g.width
    s_h, p_top = g.stride[0], g.padding[0]
    h_q, w_q, p_h = g.phase_height, g.phase_width, g.phases[0]
    c_quads, size = quad_channels(c_in), packed_size(g)
    j_begin = min(g.padding[1], w_q)
    inner = max(min(w_in + g.padding[1], w_q) - j_begin, 0)
    right = w_q - j_begin - inner
    vec = PACK_VECTOR
    full, rest = inner // vec, inner % vec

    @T.prim_func(private=True, check_well_formed=False)
    def quantize_pack(x: T.Buffer((n_b, c_in, h_in, w_in), "float32"), xq: T.Buffer((n_b, size), "int32")):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        with T.sblock("root"):
            for n, c4, a, i in T.grid(n_b, c_quads, p_h, h_q):
                row = ((c4 * p_h + a) * h_q + i) * w_q
                if i * s_h + a >= p_top and i * s_h + a < h_in + p_top:
                    for j in T.serial(j_begin):
                        xq[n, row + j] = T.int32(pad_word)
                    if c4 * 4 + 3 < c_in:
                        for jo in T.serial(full):  # explicit vectors: TVM's VectorizeLoop scalarises nearbyint
                            xq[n, T.Ramp(row + j_begin + jo * vec, 1, vec)] = full_word(
                                x, n, c4, i * s_h + a - p_top, T.Ramp(jo * vec, 1, vec), vec)
                        for j in T.serial(rest):
                            xq[n, row + j_begin + full * vec + j] = full_word(x, n, c4, i * s_h + a - p_top, full * vec + j)
                    else:
                        for jo in T.serial(full):
                            xq[n, T.Ramp(row + j_begin + jo * vec, 1, vec)] = word(
                                x, n, c4, i * s_h + a - p_top, T.Ramp(jo * vec, 1, vec), vec)
                        for j in T.serial(rest):
                            xq[n, row + j_begin + full * vec + j] = word(x, n, c4, i * s_h + a - p_top, full * vec + j)
                    for j in T.serial(right):
                        xq[n, row + j_begin + inner + j] = T.int32(pad_word)
                else:
                    for j in T.serial(w_q):
                        xq[n, row + j] = T.int32(pad_word)

    return quantize_pack


def _signed32(value: int) -> int:
    """An unsigned 32-bit pattern as the int32 with the same bits."""
    return value - (1 << 32) if value >= 1 << 31 else value
