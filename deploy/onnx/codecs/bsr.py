"""Block sparse row (BSR) codec on the GEMM view ``[out, in*kh*kw]`` of a weight.

The GEMM view is zero-padded up to a multiple of the block shape ``r x c``; a block is stored when
any of its entries is non-zero (-0.0 counts as zero, NaN as non-zero). Storage: ``values`` ``[nblocks, r, c]``,
``col_indices`` (block column, narrowest uint) and ``row_ptrs`` (``ceil(rows / r) + 1``, narrowest
uint). The padding entries of stored blocks are +0.0 and are checked on decode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from deploy.onnx.codecs.common import (
    canonical_zeros,
    check_float,
    check_shape,
    gemm_shape,
    gemm_view,
    narrowest_uint,
    nonzero_mask,
)
from deploy.onnx.codecs.csr import csr_flat_indices
from deploy.onnx.codecs.row_arrays import RowCompressedArrays
from deploy.onnx.errors import OnnxFormatError


@dataclass(frozen=True)
class BsrArrays(RowCompressedArrays):
    """BSR arrays of one weight.

    Attributes:
        values: stored blocks, shape ``[nblocks, r, c]``.
        col_indices: block column of each stored block, shape ``[nblocks]``.
        row_ptrs: block-row pointers, shape ``[ceil(rows / r) + 1]``.
        shape: the weight's shape.
    """

    @property
    def block(self) -> tuple[int, int]:
        """Block rows and columns ``(r, c)``."""
        return int(self.values.shape[1]), int(self.values.shape[2])


def block_grid(shape: tuple[int, ...], block: tuple[int, int]) -> tuple[int, int]:
    """Number of block rows and block columns covering the (padded) GEMM view."""
    r, c = (int(v) for v in block)
    if r < 1 or c < 1:
        raise OnnxFormatError(f"block shape must be positive, got {r}x{c}")
    rows, cols = gemm_shape(shape)
    return -(-rows // r), -(-cols // c)


def to_blocks(matrix: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """Zero-pad a 2-D matrix and return it as ``[R, C, r, c]`` blocks."""
    r, c = block
    grid_rows, grid_cols = -(-matrix.shape[0] // r), -(-matrix.shape[1] // c)
    padded = np.zeros((grid_rows * r, grid_cols * c), dtype=matrix.dtype)
    padded[: matrix.shape[0], : matrix.shape[1]] = matrix
    return padded.reshape(grid_rows, r, grid_cols, c).transpose(0, 2, 1, 3)


def encode_bsr(weight: np.ndarray, *, block: tuple[int, int]) -> BsrArrays:
    """Encode a float32 / float16 weight as BSR with ``block = (r, c)`` on its GEMM view (block
    structure from ``scipy.sparse.bsr_array``).

    Args:
        weight: dense weight of rank >= 1.
        block: block rows and columns; dims that do not divide are zero-padded.
    """
    check_float(weight, role="weight")
    block = tuple(int(v) for v in block)
    grid_rows, grid_cols = block_grid(weight.shape, block)
    blocks = to_blocks(gemm_view(canonical_zeros(np.ascontiguousarray(weight))), block)
    padded_mask = nonzero_mask(blocks).transpose(0, 2, 1, 3).reshape(grid_rows * block[0], grid_cols * block[1])
    structure = scipy.sparse.bsr_array(padded_mask.astype(np.int8), blocksize=block)  # blocks holding a non-zero
    structure.sort_indices()
    block_rows = np.repeat(np.arange(grid_rows), np.diff(structure.indptr))
    return BsrArrays(
        values=blocks[block_rows, structure.indices].copy(),
        col_indices=structure.indices.astype(narrowest_uint(max(grid_cols - 1, 0))),
        row_ptrs=structure.indptr.astype(narrowest_uint(int(structure.indices.size))),
        shape=tuple(int(v) for v in weight.shape),
    )


def scatter_blocks(values: np.ndarray, flat_blocks: np.ndarray, *, shape: tuple[int, ...]) -> np.ndarray:
    """Place ``[nblocks, r, c]`` blocks at flat block indices and crop to ``shape``."""
    _, r, c = values.shape
    grid_rows, grid_cols = block_grid(shape, (r, c))
    grid = np.zeros((grid_rows * grid_cols, r, c), dtype=values.dtype)
    grid[flat_blocks] = values
    padded = grid.reshape(grid_rows, grid_cols, r, c).transpose(0, 2, 1, 3).reshape(grid_rows * r, grid_cols * c)
    rows, cols = gemm_shape(shape)
    if nonzero_mask(padded[rows:]).any() or nonzero_mask(padded[:, cols:]).any():
        raise OnnxFormatError(f"BSR padding outside the {rows}x{cols} GEMM view must be +0.0")
    return np.ascontiguousarray(padded[:rows, :cols]).reshape(shape)


def decode_bsr(arrays: BsrArrays) -> np.ndarray:
    """Decode BSR arrays back to the dense weight (bit-exact inverse of ``encode_bsr``).

    Raises:
        OnnxFormatError: malformed arrays, out-of-range or duplicate block columns, wrong lengths.
    """
    values = np.asarray(arrays.values)
    check_float(values, role="values")
    shape = check_shape(arrays.shape)
    if values.ndim != 3 or values.shape[1] < 1 or values.shape[2] < 1:
        raise OnnxFormatError(f"BSR values must have shape [nblocks, r, c] with r, c >= 1, got {values.shape}")
    grid_rows, grid_cols = block_grid(shape, arrays.block)
    flat = csr_flat_indices(arrays.col_indices, arrays.row_ptrs, shape=(grid_rows, grid_cols))
    if flat.shape[0] != values.shape[0]:
        raise OnnxFormatError(f"BSR values hold {values.shape[0]} blocks, col_indices {flat.shape[0]}")
    return scatter_blocks(values, flat, shape=shape)
