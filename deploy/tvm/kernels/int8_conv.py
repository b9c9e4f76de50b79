"""int8 direct convolution over flat output pixels: u8 x s8 -> s32 dot products, float QDQ epilogue.

The int8 counterpart of :mod:`deploy.tvm.kernels.tiled_conv` for a QDQ graph's
``DequantizeLinear -> Conv -> QuantizeLinear ...`` chain. The input arrives packed by
:mod:`deploy.tvm.kernels.int8_pack` (phase planes of unsigned byte quads, four channels per int32),
the weight as blocks of ``R`` output channels by one quad of four input channels at one tap, each
block an ``R``-vector of int32 weight quads with its tap offset; all-zero blocks are not stored
(block sparsity at the granularity of the dot product, the ``4 x 1``-along-input blocks of
SparseML's ``block4`` and Intel's sparse int8 kernels, arXiv 2306.16601). A register tile is
``R`` output channels by ``P`` vectors of 16 consecutive flat pixels ``q = oy * Wq + ox``::

    acc[r, j] = -comp[o] + sum_b dot(xq[n, offsets[b] + q0 + 16 j + (0..15)], broadcast(data[b, r]))
    y[n, o, q] = steps(float(acc[r, j]) * scale[o] + bias[o])          (o = block row * R + r)

``dot`` is :func:`deploy.tvm.kernels.int8_dot.dot_function` (``vpdpbusd`` on AVX-512 VNNI: 64
multiply-adds per instruction; each step loads ``P`` input vectors and broadcasts ``R`` weight quads
for ``R * P`` dot instructions), ``comp`` the zero-point / offset compensation, ``scale[o] =
s_x * s_w[o]`` and ``steps`` the QDQ graph's epilogue (:func:`deploy.tvm.kernels.int8_dot.apply_steps`).
Grid columns past the output width are not stored (AVX-512 masked stores, as in ``tiled_conv``).
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.int8_dot import apply_steps, dot_function
from deploy.tvm.kernels.int8_pack import packed_size
from deploy.tvm.kernels.tiled_conv import flat_pixels, row_segments

LANES = 16
ACC_CHUNKS = 4  # accumulator buffers: LLVM keeps stack buffers under 1024 bytes in registers


@dataclass(frozen=True)
class Int8ConvShape:
    """Tile and storage of one int8 convolution: ``block_rows`` (a multiple of 4) output channels by
    ``vectors`` vectors of 16 flat pixels, ``nnz_blocks`` stored ``R x quad`` blocks."""

    block_rows: int
    vectors: int
    nnz_blocks: int


def int8_conv_func(*, geometry: ConvGeometry, shape: Int8ConvShape, steps: tuple, residual: bool, flavour: str,
                   parallel: bool = False):
    """Build ``(xq, data, offsets, indptr, init, scale, bias, residual) -> y`` (float32 NCHW).

    ``data [nnz * R]`` int32 weight quads, ``offsets [nnz]`` / ``indptr [O / R + 1]`` the blocks'
    tap offsets and block-row pointers, ``init``, ``scale``, ``bias`` per output channel padded to
    whole block rows (``init`` int32: the compensation).

    Raises:
        ValueError: ``R`` not a multiple of 4, or the tile wider than the image's flat pixels.
    """
    from tvm.script import tirx as T

    g = geometry
    n_b, c_out, h_out, w_out = g.batch, g.out_channels, g.out_height, g.out_width
    w_q, plane = g.phase_width, packed_size(g)
    r_rows, p_vec, v_len = shape.block_rows, shape.vectors, LANES
    span, total = p_vec * v_len, flat_pixels(g)
    if r_rows % ACC_CHUNKS or span > total:
        raise ValueError(f"int8 tile {r_rows} x {p_vec} x {v_len} does not fit {c_out} channels / {total} flat pixels")
    n_rows, n_tiles, nnz = -(-c_out // r_rows), -(-total // span), max(shape.nnz_blocks, 1)
    hw, gap, segments = h_out * w_out, w_q - w_out, row_segments(g, v_len)
    chunk = r_rows // ACC_CHUNKS
    dot = dot_function(flavour, v_len)
    res_shape = (n_b, c_out, h_out, w_out) if residual else (1, 1, 1, 1)
    res_size = n_b * c_out * hw if residual else 1
    tasks_loop = T.parallel if parallel else T.serial

    def lanes_from(base):
        return T.Ramp(base, 1, v_len)

    def fbroadcast(value):
        return T.Broadcast(value, v_len)

    def tile_start(task):
        return T.min(task % n_tiles * span, total - span)

    def grid_row(q0, j, s):
        return (q0 + j * v_len) // w_q + s

    def grid_column(q0, j, s):
        return q0 + j * v_len - grid_row(q0, j, s) * w_q

    def row_mask(q0, j, s):
        column = lanes_from(grid_column(q0, j, s))
        return T.And(column >= T.Broadcast(0, v_len), column < T.Broadcast(w_out, v_len))

    def row_out(n, channel, q0, j, s):
        return (n * c_out + channel) * hw + grid_row(q0, j, s) * w_out + grid_column(q0, j, s)

    def masked_load(address, mask):
        return T.call_llvm_intrin("float32x16", "llvm.masked.load", address, mask, fbroadcast(T.float32(0)))

    def masked_store(value, address, mask):
        return T.evaluate(T.call_llvm_intrin("void", "llvm.masked.store", value, address, mask))

    def finish(acc_value, scale, bias, channel, residual_value):
        value = T.Cast("float32x16", acc_value) * fbroadcast(scale[channel]) + fbroadcast(bias[channel])
        return apply_steps(value, steps, v_len, residual_value)

    @T.macro
    def store(acc, y_flat, res_flat, scale, bias, n, first, q0):
        for r in T.unroll(chunk):
            if first + r < c_out:
                for j in T.unroll(p_vec):
                    if gap == 0:
                        if residual:
                            y_flat[lanes_from((n * c_out + first + r) * hw + q0 + j * v_len)] = finish(
                                acc[r * p_vec + j], scale, bias, first + r, res_flat[lanes_from((n * c_out + first + r) * hw + q0 + j * v_len)])
                        else:
                            y_flat[lanes_from((n * c_out + first + r) * hw + q0 + j * v_len)] = finish(
                                acc[r * p_vec + j], scale, bias, first + r, None)
                    else:
                        for s in T.unroll(segments):
                            if grid_row(q0, j, s) < h_out:
                                if residual:
                                    masked_store(finish(acc[r * p_vec + j], scale, bias, first + r, masked_load(
                                        T.address_of(res_flat[row_out(n, first + r, q0, j, s)]), row_mask(q0, j, s))),
                                        T.address_of(y_flat[row_out(n, first + r, q0, j, s)]), row_mask(q0, j, s))
                                else:
                                    masked_store(finish(acc[r * p_vec + j], scale, bias, first + r, None),
                                                 T.address_of(y_flat[row_out(n, first + r, q0, j, s)]), row_mask(q0, j, s))

    @T.macro
    def accumulate(acc, xq, data, offsets, n, b, first_row, task):
        for r in T.unroll(chunk):
            for j in T.unroll(p_vec):
                acc[r * p_vec + j] = dot(acc[r * p_vec + j], xq[n, lanes_from(offsets[b] + tile_start(task) + j * v_len)],
                                         T.Broadcast(data[b * r_rows + first_row + r], v_len))

    @T.macro
    def start(acc, init, first):
        for r in T.unroll(chunk):
            for j in T.unroll(p_vec):
                acc[r * p_vec + j] = T.Broadcast(init[first + r], v_len)

    @T.prim_func(private=True)
    def int8_conv(xq: T.Buffer((n_b, plane), "int32"), data: T.Buffer((nnz * r_rows,), "int32"),
                  offsets: T.Buffer((nnz,), "int32"), indptr: T.Buffer((n_rows + 1,), "int32"),
                  init: T.Buffer((n_rows * r_rows,), "int32"), scale: T.Buffer((n_rows * r_rows,), "float32"),
                  bias: T.Buffer((n_rows * r_rows,), "float32"), res: T.Buffer(res_shape, "float32"),
                  y: T.Buffer((n_b, c_out, h_out, w_out), "float32")):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        y_flat = T.decl_buffer((n_b * c_out * hw,), "float32", data=y.data)
        res_flat = T.decl_buffer((res_size,), "float32", data=res.data)
        for n in T.serial(n_b):
            for task in tasks_loop(n_rows * n_tiles):
                acc0 = T.alloc_buffer((chunk * p_vec,), "int32x16", scope="global")
                acc1 = T.alloc_buffer((chunk * p_vec,), "int32x16", scope="global")
                acc2 = T.alloc_buffer((chunk * p_vec,), "int32x16", scope="global")
                acc3 = T.alloc_buffer((chunk * p_vec,), "int32x16", scope="global")
                start(acc0, init, task // n_tiles * r_rows)
                start(acc1, init, task // n_tiles * r_rows + chunk)
                start(acc2, init, task // n_tiles * r_rows + 2 * chunk)
                start(acc3, init, task // n_tiles * r_rows + 3 * chunk)
                for b in T.serial(indptr[task // n_tiles], indptr[task // n_tiles + 1]):
                    accumulate(acc0, xq, data, offsets, n, b, 0, task)
                    accumulate(acc1, xq, data, offsets, n, b, chunk, task)
                    accumulate(acc2, xq, data, offsets, n, b, 2 * chunk, task)
                    accumulate(acc3, xq, data, offsets, n, b, 3 * chunk, task)
                store(acc0, y_flat, res_flat, scale, bias, n, task // n_tiles * r_rows, tile_start(task))
                store(acc1, y_flat, res_flat, scale, bias, n, task // n_tiles * r_rows + chunk, tile_start(task))
                store(acc2, y_flat, res_flat, scale, bias, n, task // n_tiles * r_rows + 2 * chunk, tile_start(task))
                store(acc3, y_flat, res_flat, scale, bias, n, task // n_tiles * r_rows + 3 * chunk, tile_start(task))

    return int8_conv
