"""Encode a ``[out, in]`` weight as the padded ``R x 1`` block lists of the fused linear kernel.

``data[b * R : (b + 1) * R] = W[i * R : (i + 1) * R, indices[b]]`` for the blocks ``b`` of block row
``i``; all-zero blocks are dropped, then every row's list is padded with zero blocks (index 0) to a
multiple of ``unroll``. Exact: decoding gives back the weight bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deploy.tvm.row_blocks import block_structure, nonzero_blocks, row_blocks

LINEAR_UNROLL = 4
# Nanoseconds per stored block by block height R, measured on a 500x800 weight at batch 1
# (x86-64 AVX-512, the block linear kernel alone): taller blocks load more zeros, shorter ones use
# narrower vectors; only the ratios matter for the choice.
BLOCK_COST_NS = {1: 0.40, 2: 0.35, 4: 0.38, 8: 0.48, 16: 0.80}


@dataclass(frozen=True)
class LinearBlocks:
    """``data [nnz * R]``, ``indices [nnz]`` and ``indptr [ceil(N / R) + 1]`` (int32, counting blocks)."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    block_rows: int
    zero_block_ratio: float

    @property
    def nnz_blocks(self) -> int:
        return int(self.indices.shape[0])


def linear_block_rows(out_features: int, *, vector_floats: int) -> int:
    """Outputs per vector: a power of two up to ``vector_floats``, no larger than needed; the last
    block row may be partial (zero rows, never stored)."""
    return next(r for r in (16, 8, 4, 2, 1) if r <= vector_floats and r < 2 * out_features)


def best_linear_block_rows(weight: np.ndarray, *, vector_floats: int) -> int:
    """The block height up to ``vector_floats`` with the least estimated time for this zero pattern:
    (stored blocks) x ``BLOCK_COST_NS[R]``. Dense and block-sparse weights keep tall blocks;
    unstructured sparse ones take short blocks, which also store fewer zeros."""
    largest = linear_block_rows(weight.shape[0], vector_floats=vector_floats)
    costs = {rows: nonzero_blocks(weight, rows) * cost for rows, cost in BLOCK_COST_NS.items() if rows <= largest}
    return min(costs, key=lambda rows: (costs[rows], -rows))


def encode_linear_blocks(weight: np.ndarray, *, block_rows: int, unroll: int = LINEAR_UNROLL) -> LinearBlocks:
    blocks = row_blocks(weight, block_rows)
    structure = block_structure(weight, block_rows)
    data, indices, indptr = [], [], [0]
    for row in range(blocks.shape[0]):
        columns = structure.indices[structure.indptr[row] : structure.indptr[row + 1]].astype(np.int64)
        padding = (-len(columns)) % unroll
        indices.append(np.concatenate([columns, np.zeros(padding, np.int64)]))
        data.append(np.concatenate([blocks[row][:, columns].T, np.zeros((padding, block_rows), np.float32)]))
        indptr.append(indptr[-1] + len(columns) + padding)
    all_data = np.concatenate(data).astype(np.float32) if indptr[-1] else np.zeros((1, block_rows), np.float32)
    all_indices = np.concatenate(indices).astype(np.int32) if indptr[-1] else np.zeros(1, np.int32)
    return LinearBlocks(np.ascontiguousarray(all_data.reshape(-1)), all_indices, np.array(indptr, np.int32),
                        block_rows, float(1.0 - structure.indices.size / blocks[:, 0].size))


def decode_linear_blocks(blocks: LinearBlocks, *, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`encode_linear_blocks` (for tests)."""
    weight = np.zeros(((len(blocks.indptr) - 1) * blocks.block_rows, shape[1]), np.float32)
    data = blocks.data.reshape(-1, blocks.block_rows)
    for row in range(len(blocks.indptr) - 1):
        for b in range(blocks.indptr[row], blocks.indptr[row + 1]):
            weight[row * blocks.block_rows : (row + 1) * blocks.block_rows, blocks.indices[b]] += data[b]
    return weight[: shape[0]]
