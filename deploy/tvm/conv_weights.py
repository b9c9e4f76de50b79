"""Encode an OIHW convolution weight as the ``R x 1`` tap blocks of the direct convolution kernel.

Block ``b`` of block row ``i`` holds the weights ``W[i * R : (i + 1) * R, c, ky, kx]`` of one tap and
the tap's offset in the phase planes (:func:`deploy.tvm.kernels.direct_conv.tap_offset`). Blocks
whose ``R`` weights are all zero are dropped, so a dense weight keeps every tap and a block-sparse
one (any ``R' x 1`` pattern with ``R`` dividing ``R'``) skips its zero blocks. Exact: decoding gives
back the weight bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.direct_conv import tap_offset
from deploy.tvm.row_blocks import block_structure, nonzero_blocks, row_blocks

TILE_REGISTERS = 8  # accumulator vectors of the target's width: 8 of 16 AVX2 / 32 AVX-512 registers,
# 16 of NEON's 32 when a "vector" is two 128-bit registers
LATENCY_ROWS = 8  # fewer independent accumulators than this run below the FMA rate (measured: a ternary
# ResNet-20 ran 20% slower with 4-row tiles than with 8)


@dataclass(frozen=True)
class ConvTaps:
    """``data [nnz * R]``, ``offsets [nnz]`` (int32), ``indptr [ceil(O / R) + 1]`` (int32)."""

    data: np.ndarray
    offsets: np.ndarray
    indptr: np.ndarray
    block_rows: int
    zero_block_ratio: float

    @property
    def nnz_blocks(self) -> int:
        return int(self.offsets.shape[0])


def tile_rows(out_channels: int, *, vector: int, vector_floats: int) -> int:
    """Largest output channels per register tile: a power of two up to ``TILE_REGISTERS *
    vector_floats / vector`` (and 32), no larger than needed for ``out_channels``; narrower pixel
    vectors take more rows. The last tile may be partial (its missing channels are zero rows that
    are never stored)."""
    limit = min(32, max(1, TILE_REGISTERS * vector_floats // vector))
    return next(rows for rows in (32, 16, 8, 4, 2, 1) if rows <= limit and rows < 2 * out_channels)


def best_tile_rows(weight: np.ndarray, *, vector: int, vector_floats: int) -> int:
    """The tile height with the least estimated work for this weight's zero pattern.

    Work ~ (non-zero ``R x 1`` blocks) x max(R, LATENCY_ROWS): a block costs its ``R`` vector FMAs,
    but fewer than ``LATENCY_ROWS`` independent accumulators leave the FMA pipeline waiting on its
    latency. Block-sparse weights keep the largest tile; unstructured ones may take a smaller one,
    whose all-zero blocks are more frequent.
    """
    flat = weight.reshape(weight.shape[0], -1)
    largest = tile_rows(weight.shape[0], vector=vector, vector_floats=vector_floats)
    costs = {rows: nonzero_blocks(flat, rows) * max(rows, LATENCY_ROWS) for rows in (32, 16, 8, 4, 2, 1) if rows <= largest}
    return min(costs, key=lambda rows: (costs[rows], -rows))


def encode_conv_taps(weight: np.ndarray, *, geometry: ConvGeometry, vector: int, vector_floats: int,
                     rows: int | None = None) -> ConvTaps:
    """Encode ``weight [O, C, KH, KW]`` (float32) for ``geometry``, a ``vector``-pixel tile and a
    target whose vectors hold ``vector_floats`` floats, in ``rows x 1`` blocks (``None``: the
    height :func:`best_tile_rows` picks)."""
    out_channels, channels, kernel_h, kernel_w = weight.shape
    if rows is None:
        rows = best_tile_rows(weight, vector=vector, vector_floats=vector_floats)
    flat = weight.reshape(out_channels, -1)
    blocks = row_blocks(flat, rows)
    structure = block_structure(flat, rows)
    block_row, tap = np.repeat(np.arange(len(blocks)), np.diff(structure.indptr)), structure.indices
    table = np.array([tap_offset(geometry, c, ky, kx) for c in range(channels) for ky in range(kernel_h) for kx in range(kernel_w)],
                     dtype=np.int64)
    if int(table.max(initial=0)) >= 2**31:
        raise ValueError(f"convolution input of {geometry.phase_size} floats is too large for int32 offsets")
    data = blocks[block_row, :, tap].astype(np.float32)
    indptr = structure.indptr.astype(np.int32)
    offsets = table[tap].astype(np.int32)
    if len(offsets) == 0:  # an all-zero weight: one zero block keeps the buffers non-empty
        data, offsets, indptr = np.zeros((1, rows), np.float32), np.zeros(1, np.int32), indptr + np.int32(1)
        indptr[0] = 0
    return ConvTaps(np.ascontiguousarray(data.reshape(-1)), offsets, indptr, rows, float(1.0 - structure.indices.size / blocks[:, 0].size))


def decode_conv_taps(taps: ConvTaps, *, geometry: ConvGeometry, shape: tuple[int, int, int, int]) -> np.ndarray:
    """Inverse of :func:`encode_conv_taps` (for tests)."""
    out_channels, channels, kernel_h, kernel_w = shape
    index = {tap_offset(geometry, c, ky, kx): (c, ky, kx) for c in range(channels) for ky in range(kernel_h) for kx in range(kernel_w)}
    weight = np.zeros(((len(taps.indptr) - 1) * taps.block_rows, channels, kernel_h, kernel_w), np.float32)
    data = taps.data.reshape(-1, taps.block_rows)
    for row in range(len(taps.indptr) - 1):
        for b in range(taps.indptr[row], taps.indptr[row + 1]):
            c, ky, kx = index[int(taps.offsets[b])]
            weight[row * taps.block_rows : (row + 1) * taps.block_rows, c, ky, kx] += data[b]
    return weight[:out_channels]
