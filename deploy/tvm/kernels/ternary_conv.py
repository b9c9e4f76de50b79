"""Fused ternary / binary direct convolution with the codes (2 or 1 bits per kept weight) in the library.

Same structure as :func:`deploy.tvm.kernels.direct_conv.direct_conv_func` (phase-plane input, ``R x 1``
tap blocks, ``R`` accumulators of ``V`` pixels, fused epilogue), but a block is one unsigned word
(bit ``r``: +1 at output ``r``; bit ``R + r``: -1; binary: bit ``r`` set = -1, clear = +1) and
the tap offsets are int16 where the input allows. A thread first expands its block row's words to
floats ``pos[o]`` / ``-neg[o]`` / 0 in a small buffer (once per image: ``1 / (H_out * W_out / V)`` of
the work), then runs the float inner loop on them: with the pixels as the vector axis a +-1 weight
costs the same single FMA as an add or subtract, so the inner loop stays exactly as vectorised as
the float kernel while the weights stored are 16x (ternary) or 32x (binary) smaller::

    w[b, r] = pos[o] if code = +1, -neg[o] if code = -1, else 0          (o = i * R + r, once per block row)
    acc[r, v] = bias[o] + sum_b w[b, r] * xq[n, offsets[b] + oy * Wq + ox0 + v]
    y[n, o, oy, ox0 + v] = act(acc[r, v] + residual[n, o, oy, ox0 + v])

Symmetric int8 weights (``scheme="int8"``, ``W = diag(scale) Q``) use the same kernel with ``R`` int8
codes per block, expanded as ``scale[o] * Q``. Dense weights (no zero block) store no offsets: block ``b`` of a row is tap ``b`` and its offset
comes from the geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.direct_conv import ConvTile, Epilogue, broadcast, epilogue_function, ramp, vector_type

CONV_CODE_DTYPES = {1: "uint8", 2: "uint8", 4: "uint8", 8: "uint16", 16: "uint32", 32: "uint64"}
CONV_BINARY_CODE_DTYPES = {1: "uint8", 2: "uint8", 4: "uint8", 8: "uint8", 16: "uint16", 32: "uint32"}


@dataclass(frozen=True)
class TernaryConvLayout:
    """How the codes of one convolution are stored.

    Attributes:
        nnz_blocks: stored blocks (all taps of every block row when ``dense``).
        max_row_blocks: most blocks in one block row (the size of the expansion buffer).
        scheme: ``"ternary"``, ``"binary"`` or ``"int8"``.
        dense: no zero block: no ``offsets`` / ``indptr`` operands.
        offset_dtype: ``"int16"`` or ``"int32"``.
    """

    nnz_blocks: int
    max_row_blocks: int
    scheme: str = "ternary"
    dense: bool = False
    offset_dtype: str = "int32"


def conv_code_dtype(block_rows: int, scheme: str) -> str:
    if scheme == "int8":
        return "int8"
    return (CONV_BINARY_CODE_DTYPES if scheme == "binary" else CONV_CODE_DTYPES)[block_rows]


def ternary_conv_func(*, geometry: ConvGeometry, tile: ConvTile, layout: TernaryConvLayout, epilogue: Epilogue,
                      parallel: bool = False):
    """Build ``(xq, codes, [offsets, indptr,] pos_scale, neg_scale, bias, residual) -> y``.

    ``codes`` holds one word per block (``[O / R, taps]`` row-major when dense); scales and bias have
    ``O`` entries.
    """
    from tvm.script import tirx as T

    g = geometry
    n_b, c_out, h_out, w_out = g.batch, g.out_channels, g.out_height, g.out_width
    w_q, plane = g.phase_width, g.phase_size
    r_rows, v_len = tile.block_rows, tile.vector
    if w_out % v_len:
        raise ValueError(f"the pixel vector {v_len} must divide the output width {w_out}")
    n_rows, n_tiles, nnz = -(-c_out // r_rows), w_out // v_len, max(layout.nnz_blocks, 1)
    taps, row_cap = g.channels * g.kernel_h * g.kernel_w, max(layout.max_row_blocks, 1)
    vtype, code_dtype = vector_type(v_len), conv_code_dtype(r_rows, layout.scheme)
    binary = layout.scheme == "binary"
    finish = epilogue_function(epilogue, v_len)
    res_shape = (n_b, c_out, h_out, w_out) if epilogue.residual else (1, 1, 1, 1)
    rows_loop = T.parallel if parallel else T.serial
    offsets_len, indptr_len = (1, 1) if layout.dense else (nnz, n_rows + 1)
    offset_dtype = layout.offset_dtype
    code_len = nnz * r_rows if layout.scheme == "int8" else nnz  # int8: one code per weight, else one word per block

    def bit(word, position):
        return T.Cast("float32", T.bitwise_and(T.shift_right(word, T.Cast(code_dtype, position)), T.Cast(code_dtype, 1)))

    def weight(codes, b, r, pos, neg):
        if layout.scheme == "int8":
            return T.Cast("float32", codes[b * r_rows + r]) * pos
        word = codes[b]
        if binary:
            return neg - T.float32(2) * neg * bit(word, r)
        return pos * bit(word, r) - neg * bit(word, r_rows + r)

    def tap_offset(tap):
        channel, ky, kx = tap // (g.kernel_h * g.kernel_w), tap // g.kernel_w % g.kernel_h, tap % g.kernel_w
        dy, dx = ky * g.dilation[0], kx * g.dilation[1]
        p_h, p_w = g.phases
        return ((((channel * p_h + dy % g.stride[0]) * p_w + dx % g.stride[1]) * g.phase_height + dy // g.stride[0])
                * g.phase_width + dx // g.stride[1])

    def row_begin(indptr, i):
        return i * taps if layout.dense else indptr[i]

    def row_end(indptr, i):
        return (i + 1) * taps if layout.dense else indptr[i + 1]

    def block_offset(offsets, i, b):
        return tap_offset(b - i * taps) if layout.dense else T.Cast("int32", offsets[b])

    @T.prim_func(private=True)
    def ternary_conv(xq: T.Buffer((n_b, plane), "float32"), codes: T.Buffer((code_len,), code_dtype),
                     offsets: T.Buffer((offsets_len,), offset_dtype), indptr: T.Buffer((indptr_len,), "int32"),
                     pos_scale: T.Buffer((c_out,), "float32"), neg_scale: T.Buffer((c_out,), "float32"),
                     bias: T.Buffer((c_out,), "float32"), residual: T.Buffer(res_shape, "float32"),
                     y: T.Buffer((n_b, c_out, h_out, w_out), "float32")):
        T.func_attr({"tir.noalias": True, "tirx.is_scheduled": True})
        for n in T.serial(n_b):
            for i in rows_loop(n_rows):
                weights = T.alloc_buffer((row_cap * r_rows,), "float32", scope="global")
                where = T.alloc_buffer((row_cap,), "int32", scope="global")
                for b in T.serial(row_end(indptr, i) - row_begin(indptr, i)):
                    where[b] = block_offset(offsets, i, row_begin(indptr, i) + b)
                    for r in T.unroll(r_rows):
                        weights[b * r_rows + r] = weight(codes, row_begin(indptr, i) + b, r,
                                                         pos_scale[T.min(i * r_rows + r, c_out - 1)],
                                                         neg_scale[T.min(i * r_rows + r, c_out - 1)])
                for oy, t in T.grid(h_out, n_tiles):
                    acc = T.alloc_buffer((r_rows,), vtype, scope="global")
                    for r in T.unroll(r_rows):
                        acc[r] = broadcast(bias[T.min(i * r_rows + r, c_out - 1)], v_len)
                    for b in T.serial(row_end(indptr, i) - row_begin(indptr, i)):
                        for r in T.unroll(r_rows):
                            acc[r] = acc[r] + broadcast(weights[b * r_rows + r], v_len) * xq[
                                n, ramp(where[b] + oy * w_q + t * v_len, v_len)]
                    for r in T.unroll(r_rows):
                        if i * r_rows + r < c_out:  # the last tile may be partial
                            y[n, i * r_rows + r, oy, ramp(t * v_len, v_len)] = finish(
                                acc[r], residual[n, i * r_rows + r, oy, ramp(t * v_len, v_len)])

    return ternary_conv
