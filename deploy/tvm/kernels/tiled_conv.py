"""Block-sparse direct convolution over *flattened* output pixels: full vectors at any image width.

The row kernel of :mod:`deploy.tvm.kernels.direct_conv` needs its pixel vector to divide the output
width, so ImageNet widths (112, 56, 28, 14, 7) run at 8, 4, 2 or 1 lanes. This kernel instead
numbers the output pixels on the phase planes' grid, ``q = oy * Wq + ox`` (``Wq`` = phase-plane
width >= output width), where the input of tap ``b`` under pixel ``q`` is ``xq[offsets[b] + q]``
for every stride: consecutive ``q`` are consecutive floats, across row ends too. A register tile is
``R`` output channels (one ``R x 1`` weight block row) by ``P`` vectors of ``V`` consecutive ``q``::

    acc[r, j] = bias[o] + sum_b data[b, r] * xq[n, offsets[b] + q0 + j * V + (0 .. V-1)]

Each step loads ``R`` weights (broadcast) and ``P`` input vectors for ``R * P`` FMAs, the register
blocking of MLAS's NCHWc kernels (``(R + P) / (R * P)`` loads per FMA: 0.46 for 8 x 3). Columns
``ox >= W_out`` of the grid are not outputs: the store masks them out with AVX-512 / AVX2 masked
stores (``llvm.masked.store``; NEON scalarises it), one store per output row a vector touches, so
no lane is written outside its pixel. The last tile is moved back to end at the last pixel
(``q0 = L - P * V``, ``L = (H_out - 1) * Wq + W_out``), recomputing a few pixels instead of reading
past the input planes. Tiles of one block row are consecutive tasks, so a parallel loop over tasks
keeps each thread on a few weight block rows.

Masked memory operations are LLVM intrinsics called through ``T.call_llvm_intrin`` because TVM
0.27's TIR has no predicated buffer store.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.direct_conv import Epilogue, broadcast, epilogue_function


@dataclass(frozen=True)
class PixelTile:
    """Register tile: ``block_rows`` output channels by ``vectors`` vectors of ``lanes`` flat pixels."""

    block_rows: int
    vectors: int
    lanes: int

    @property
    def pixels(self) -> int:
        return self.vectors * self.lanes


def flat_pixels(geometry: ConvGeometry) -> int:
    """``L``: grid positions from the first output pixel to the last, ``(H_out - 1) * Wq + W_out``."""
    return (geometry.out_height - 1) * geometry.phase_width + geometry.out_width


def row_segments(geometry: ConvGeometry, lanes: int) -> int:
    """Output rows one vector of ``lanes`` grid positions can touch (1 when the grid has no gap columns)."""
    if geometry.phase_width == geometry.out_width:
        return 1
    return min(geometry.out_height, 1 + -(-(lanes - 1) // geometry.phase_width))


def tiled_conv_func(*, geometry: ConvGeometry, tile: PixelTile, nnz_blocks: int, epilogue: Epilogue, parallel: bool = False):
    """Build ``(xq, data, offsets, indptr, bias, residual) -> y`` (operands as in
    :func:`deploy.tvm.kernels.direct_conv.direct_conv_func`).

    Raises:
        ValueError: the tile is wider than the image's flat pixel range, or has fewer than 2 lanes.
    """
    from tvm.script import tirx as T

    g = geometry
    n_b, c_out, h_out, w_out = g.batch, g.out_channels, g.out_height, g.out_width
    w_q, plane = g.phase_width, g.phase_size
    r_rows, p_vec, v_len = tile.block_rows, tile.vectors, tile.lanes
    span, total = tile.pixels, flat_pixels(g)
    if v_len < 2 or span > total:
        raise ValueError(f"tile of {p_vec} x {v_len} pixels does not fit {total} flat output pixels")
    n_rows, n_tiles = -(-c_out // r_rows), -(-total // span)
    hw, gap, segments = h_out * w_out, w_q - w_out, row_segments(g, v_len)
    vtype, nnz = f"float32x{v_len}", max(nnz_blocks, 1)
    finish = epilogue_function(epilogue, v_len)
    res_shape = (n_b, c_out, h_out, w_out) if epilogue.residual else (1, 1, 1, 1)
    res_size = n_b * c_out * hw if epilogue.residual else 1
    tasks_loop = T.parallel if parallel else T.serial
    with_residual = epilogue.residual

    def lanes_from(base):
        return T.Ramp(base, 1, v_len)

    def masked_store(value, address, mask):
        return T.evaluate(T.call_llvm_intrin("void", "llvm.masked.store", value, address, mask))

    def tile_start(task):
        return T.min(task % n_tiles * span, total - span)

    def grid_row(q0, j, s):  # expressions, not let bindings: TVM keeps those in stack memory
        return (q0 + j * v_len) // w_q + s

    def grid_column(q0, j, s):
        """Column of lane 0 of vector ``j`` in grid row ``grid_row(q0, j, s)`` (negative past the row start)."""
        return q0 + j * v_len - grid_row(q0, j, s) * w_q

    def row_mask(q0, j, s):
        column = lanes_from(grid_column(q0, j, s))
        return T.And(column >= broadcast(0, v_len), column < broadcast(w_out, v_len))

    def row_out(n, channel, q0, j, s):
        return (n * c_out + channel) * hw + grid_row(q0, j, s) * w_out + grid_column(q0, j, s)

    def masked_load(address, mask):
        return T.call_llvm_intrin(vtype, "llvm.masked.load", address, mask, broadcast(T.float32(0), v_len))

    rows_lo = r_rows - r_rows // 2  # two accumulator buffers: TVM moves a stack buffer of 1024 bytes or
    rows_hi = r_rows // 2            # more to a heap workspace, and LLVM keeps only stack ones in registers

    @T.macro
    def store(acc, y_flat, res_flat, n, first, rows, q0):
        for r in T.unroll(rows):
            if first + r < c_out:  # the last block row may be partial
                for j in T.unroll(p_vec):
                    if gap == 0:
                        if with_residual:
                            y_flat[lanes_from((n * c_out + first + r) * hw + q0 + j * v_len)] = finish(
                                acc[r * p_vec + j], res_flat[lanes_from((n * c_out + first + r) * hw + q0 + j * v_len)])
                        else:
                            y_flat[lanes_from((n * c_out + first + r) * hw + q0 + j * v_len)] = finish(acc[r * p_vec + j], None)
                    else:
                        for s in T.unroll(segments):
                            if grid_row(q0, j, s) < h_out:
                                if with_residual:
                                    masked_store(finish(acc[r * p_vec + j], masked_load(
                                        T.address_of(res_flat[row_out(n, first + r, q0, j, s)]), row_mask(q0, j, s))),
                                        T.address_of(y_flat[row_out(n, first + r, q0, j, s)]), row_mask(q0, j, s))
                                else:
                                    masked_store(finish(acc[r * p_vec + j], None),
                                                 T.address_of(y_flat[row_out(n, first + r, q0, j, s)]), row_mask(q0, j, s))

    @T.prim_func(private=True)
    def tiled_conv(xq: T.Buffer((n_b, plane), "float32"), data: T.Buffer((nnz * r_rows,), "float32"),
                   offsets: T.Buffer((nnz,), "int32"), indptr: T.Buffer((n_rows + 1,), "int32"),
                   bias: T.Buffer((c_out,), "float32"), residual: T.Buffer(res_shape, "float32"),
                   y: T.Buffer((n_b, c_out, h_out, w_out), "float32")):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        y_flat = T.decl_buffer((n_b * c_out * hw,), "float32", data=y.data)
        res_flat = T.decl_buffer((res_size,), "float32", data=residual.data)
        for n in T.serial(n_b):
            for task in tasks_loop(n_rows * n_tiles):
                acc_lo = T.alloc_buffer((rows_lo * p_vec,), vtype, scope="global")
                acc_hi = T.alloc_buffer((max(rows_hi, 1) * p_vec,), vtype, scope="global")
                for r in T.unroll(rows_lo):
                    for j in T.unroll(p_vec):
                        acc_lo[r * p_vec + j] = broadcast(bias[T.min(task // n_tiles * r_rows + r, c_out - 1)], v_len)
                for r in T.unroll(rows_hi):
                    for j in T.unroll(p_vec):
                        acc_hi[r * p_vec + j] = broadcast(bias[T.min(task // n_tiles * r_rows + rows_lo + r, c_out - 1)], v_len)
                for b in T.serial(indptr[task // n_tiles], indptr[task // n_tiles + 1]):
                    for r in T.unroll(rows_lo):
                        for j in T.unroll(p_vec):
                            acc_lo[r * p_vec + j] = acc_lo[r * p_vec + j] + broadcast(data[b * r_rows + r], v_len) * xq[
                                n, lanes_from(offsets[b] + tile_start(task) + j * v_len)]
                    for r in T.unroll(rows_hi):
                        for j in T.unroll(p_vec):
                            acc_hi[r * p_vec + j] = acc_hi[r * p_vec + j] + broadcast(data[b * r_rows + rows_lo + r], v_len) * xq[
                                n, lanes_from(offsets[b] + tile_start(task) + j * v_len)]
                store(acc_lo, y_flat, res_flat, n, task // n_tiles * r_rows, rows_lo, tile_start(task))
                store(acc_hi, y_flat, res_flat, n, task // n_tiles * r_rows + rows_lo, rows_hi, tile_start(task))

    return tiled_conv
