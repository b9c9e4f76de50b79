"""int8 weights of a QDQ graph as the int8 kernels read them: blocks of int32 weight quads.

A symmetric per-channel int8 weight ``W = diag(s_w) Q`` (``Q`` in ``[-127, 127]``) is stored as
*quads*: four consecutive input channels of one output channel at one tap in one int32 (channel
``4 c4 + t`` in byte ``t``, two's complement). Blocks are ``R`` output channels by one quad (at one
tap for a convolution); a block whose ``R x 4`` weights are all zero is not stored. Each output
channel also gets the compensation of the kernels' unsigned activation offset (see
:mod:`deploy.tvm.kernels.int8_dot`)::

    init[o] = -(128 + z_x) * sum_k Q[o, k]

and the float scale ``s_x * s_w[o]`` the epilogue multiplies the int32 sum by.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.direct_conv import tap_offset
from deploy.tvm.kernels.int8_dot import QUAD_OFFSET
from deploy.tvm.kernels.int8_pack import quad_channels


@dataclass(frozen=True)
class QuadBlocks:
    """Stored blocks: ``data [nnz * R]`` int32 quads (block ``b``'s ``R`` lanes), ``positions
    [nnz]`` (tap offset for a convolution, input quad for a linear layer), ``indptr`` over block rows."""

    data: np.ndarray
    positions: np.ndarray
    indptr: np.ndarray
    block_rows: int
    zero_block_ratio: float

    @property
    def nnz_blocks(self) -> int:
        return int(self.positions.shape[0])

    @property
    def payload_bytes(self) -> int:
        return int(self.data.nbytes + self.positions.nbytes + self.indptr.nbytes)


def weight_quads(codes: np.ndarray, *, rows: int) -> np.ndarray:
    """``codes [O, C, ...]`` (int8) as int32 quads ``[ceil(O / rows) * rows, ceil(C / 4), ...]``
    (zero rows and channels appended)."""
    out, channels = codes.shape[:2]
    padded = np.zeros((-(-out // rows) * rows, quad_channels(channels) * 4, *codes.shape[2:]), np.int8)
    padded[:out, :channels] = codes
    grouped = padded.reshape(padded.shape[0], -1, 4, *codes.shape[2:])
    moved = np.ascontiguousarray(np.moveaxis(grouped, 2, -1))  # [O, C4, ..., 4]
    return moved.view(np.int32)[..., 0]


def compensation(codes: np.ndarray, *, zero_point: int, length: int) -> np.ndarray:
    """``init[o] = -(128 + z) * sum_k Q[o, k]``, zero-padded to ``length`` (int32)."""
    init = np.zeros(length, np.int32)
    init[: codes.shape[0]] = -(QUAD_OFFSET + zero_point) * codes.reshape(codes.shape[0], -1).astype(np.int64).sum(axis=1)
    return init


def pack_conv_quads(codes: np.ndarray, *, geometry: ConvGeometry, block_rows: int) -> QuadBlocks:
    """Blocks of a convolution weight ``codes [O, C, KH, KW]``, taps in input order within a block row."""
    quads = weight_quads(codes, rows=block_rows)  # [O_pad, C4, KH, KW]
    rows, c_quads, k_h, k_w = quads.shape[0] // block_rows, quads.shape[1], quads.shape[2], quads.shape[3]
    blocks = quads.reshape(rows, block_rows, c_quads, k_h, k_w).transpose(0, 2, 3, 4, 1)  # [rows, C4, KH, KW, R]
    taps = np.array([[[tap_offset(geometry, c4, ky, kx) for kx in range(k_w)] for ky in range(k_h)] for c4 in range(c_quads)],
                    np.int32)
    kept = blocks.any(axis=-1)  # [rows, C4, KH, KW]
    data = blocks[kept]  # row-major: block rows in order, taps in input order
    indptr = np.concatenate([[0], np.cumsum(kept.reshape(rows, -1).sum(axis=1))]).astype(np.int32)
    positions = np.broadcast_to(taps, kept.shape)[kept].astype(np.int32)
    return _with_one_block(data, positions, indptr, block_rows, 1.0 - kept.mean())


def pack_linear_quads(codes: np.ndarray, *, block_rows: int, unroll: int) -> QuadBlocks:
    """Blocks of a linear weight ``codes [O, K]``; each block row padded with zero blocks (input
    quad 0) to a multiple of ``unroll``."""
    quads = weight_quads(codes, rows=block_rows)  # [O_pad, K4]
    rows = quads.shape[0] // block_rows
    blocks = quads.reshape(rows, block_rows, -1).transpose(0, 2, 1)  # [rows, K4, R]
    kept = blocks.any(axis=-1)
    data, positions, indptr = [], [], [0]
    for row in range(rows):
        columns = np.flatnonzero(kept[row])
        padding = (-len(columns)) % unroll
        data.append(np.concatenate([blocks[row, columns], np.zeros((padding, block_rows), np.int32)]))
        positions.append(np.concatenate([columns, np.zeros(padding, np.int64)]))
        indptr.append(indptr[-1] + len(columns) + padding)
    return _with_one_block(np.concatenate(data), np.concatenate(positions).astype(np.int32), np.asarray(indptr, np.int32),
                           block_rows, 1.0 - kept.mean())


def _with_one_block(data, positions, indptr, block_rows: int, zero_ratio: float) -> QuadBlocks:
    """At least one stored block (buffers cannot be empty); an all-zero weight keeps one zero block."""
    if positions.size == 0:
        data, positions = np.zeros((1, block_rows), np.int32), np.zeros(1, np.int32)
    return QuadBlocks(np.ascontiguousarray(data, np.int32).reshape(-1), positions, indptr, block_rows, float(zero_ratio))
