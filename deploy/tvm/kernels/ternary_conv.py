"""Fused ternary / binary direct convolution with the codes (2 or 1 bits per kept weight) in the library.

Same structure as :func:`deploy.tvm.kernels.direct_conv.direct_conv_func` (phase-plane input, ``R x 1``
tap blocks, ``R`` accumulators of ``V`` pixels, fused epilogue), but a block is one unsigned word
(bit ``r``: +1 at output ``r``; bit ``R + r``: -1; binary: bit ``r`` set = -1, clear = +1) and
the tap offsets are int16 where the input allows. The kernel first expands the words to float
weights ``pos[o]`` / ``-neg[o]`` / 0 in a buffer, ``R`` lanes at a time (lane masks as in
:mod:`deploy.tvm.kernels.ternary_linear`), once per call: a few vector operations per block against
``H_out * W_out / V`` FMAs per block weight in the convolution. The convolution then runs the float
kernel's inner loop on them: with the pixels as the vector axis a +-1 weight costs the same single
FMA as an add or subtract, so the inner loop is exactly as vectorised as the float one while the
library stores 16x (ternary) or 32x (binary) fewer weight bytes::

    w[b, r] = pos[o] if code = +1, -neg[o] if code = -1, else 0          (o = i * R + r, once per call)
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
from deploy.tvm.kernels.ternary_linear import lane_masks

CONV_CODE_DTYPES = {1: "uint8", 2: "uint8", 4: "uint8", 8: "uint16", 16: "uint32", 32: "uint64"}
CONV_BINARY_CODE_DTYPES = {1: "uint8", 2: "uint8", 4: "uint8", 8: "uint8", 16: "uint16", 32: "uint32"}


@dataclass(frozen=True)
class TernaryConvLayout:
    """How the codes of one convolution are stored.

    Attributes:
        nnz_blocks: stored blocks (all taps of every block row when ``dense``).
        max_row_blocks: most blocks in one block row.
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

    ``codes`` holds one word per block (``[O / R, taps]`` row-major when dense; int8: ``R`` codes per
    block); scales are padded to whole block rows (``O / R * R``), bias has ``O`` entries.
    """
    from tvm.script import tirx as T

    g = geometry
    n_b, c_out, h_out, w_out = g.batch, g.out_channels, g.out_height, g.out_width
    w_q, plane = g.phase_width, g.phase_size
    r_rows, v_len = tile.block_rows, tile.vector
    if w_out % v_len:
        raise ValueError(f"the pixel vector {v_len} must divide the output width {w_out}")
    n_rows, n_tiles, nnz = -(-c_out // r_rows), w_out // v_len, max(layout.nnz_blocks, 1)
    taps = g.channels * g.kernel_h * g.kernel_w
    vtype, code_dtype = vector_type(v_len), conv_code_dtype(r_rows, layout.scheme)
    finish = epilogue_function(epilogue, v_len)
    res_shape = (n_b, c_out, h_out, w_out) if epilogue.residual else (1, 1, 1, 1)
    rows_loop = T.parallel if parallel else T.serial
    offsets_len, indptr_len = (1, 1) if layout.dense else (nnz, n_rows + 1)
    offset_dtype, scheme = layout.offset_dtype, layout.scheme
    code_len = nnz * r_rows if scheme == "int8" else nnz  # int8: one code per weight, else one word per block
    where_len = taps if layout.dense else 1

    def expand(codes, b, pos, neg):
        """The ``R`` float weights of block ``b`` (``pos`` / ``neg``: its row's scale vectors)."""
        if scheme == "int8":
            return T.Cast(vector_type(r_rows), codes[ramp(b * r_rows, r_rows)]) * pos
        word, zero = codes[b], broadcast(T.float32(0), r_rows)
        if scheme == "binary":
            return T.Select(lane_masks(word, lanes=r_rows, dtype=code_dtype, shift=0), zero - neg, neg)
        return (T.Select(lane_masks(word, lanes=r_rows, dtype=code_dtype, shift=0), pos, zero)
                - T.Select(lane_masks(T.shift_right(word, T.Cast(code_dtype, r_rows)), lanes=r_rows, dtype=code_dtype, shift=0),
                           neg, zero))

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

    def block_offset(offsets, where, first, b):
        """Tap offset of block ``first + b`` (``b``: its place in its row)."""
        return where[b] if layout.dense else T.Cast("int32", offsets[first + b])

    @T.prim_func(private=True)
    def ternary_conv(xq: T.Buffer((n_b, plane), "float32"), codes: T.Buffer((code_len,), code_dtype),
                     offsets: T.Buffer((offsets_len,), offset_dtype), indptr: T.Buffer((indptr_len,), "int32"),
                     pos_scale: T.Buffer((n_rows * r_rows,), "float32"), neg_scale: T.Buffer((n_rows * r_rows,), "float32"),
                     bias: T.Buffer((c_out,), "float32"), residual: T.Buffer(res_shape, "float32"),
                     y: T.Buffer((n_b, c_out, h_out, w_out), "float32")):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        weights = T.alloc_buffer((nnz * r_rows,), "float32", scope="global")
        where = T.alloc_buffer((where_len,), "int32", scope="global")
        for tap in T.serial(where_len):
            where[tap] = tap_offset(tap)
        for i in T.serial(n_rows):  # codes -> float weights, once per call, R lanes at a time
            for b in T.serial(row_end(indptr, i) - row_begin(indptr, i)):
                weights[ramp((row_begin(indptr, i) + b) * r_rows, r_rows)] = expand(
                    codes, row_begin(indptr, i) + b, pos_scale[ramp(i * r_rows, r_rows)], neg_scale[ramp(i * r_rows, r_rows)])
        for n in T.serial(n_b):
            for task in rows_loop(n_rows * h_out):
                for t in T.serial(n_tiles):
                    acc = T.alloc_buffer((r_rows,), vtype, scope="global")
                    for r in T.unroll(r_rows):
                        acc[r] = broadcast(bias[T.min(task // h_out * r_rows + r, c_out - 1)], v_len)
                    for b in T.serial(row_end(indptr, task // h_out) - row_begin(indptr, task // h_out)):
                        for r in T.unroll(r_rows):
                            acc[r] = acc[r] + broadcast(weights[(row_begin(indptr, task // h_out) + b) * r_rows + r], v_len) * xq[
                                n, ramp(block_offset(offsets, where, row_begin(indptr, task // h_out), b) + task % h_out * w_q
                                        + t * v_len, v_len)]
                    for r in T.unroll(r_rows):
                        if task // h_out * r_rows + r < c_out:  # the last tile may be partial
                            y[n, task // h_out * r_rows + r, task % h_out, ramp(t * v_len, v_len)] = finish(
                                acc[r], residual[n, task // h_out * r_rows + r, task % h_out, ramp(t * v_len, v_len)])

    return ternary_conv
