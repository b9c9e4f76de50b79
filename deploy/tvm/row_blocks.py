"""Blocks of ``R`` consecutive rows of a matrix: the ``R x 1`` block view shared by our weight encoders.

The block structure (which ``R x 1`` blocks hold a non-zero, per block row, in column order) is
``scipy.sparse.bsr_array`` with ``blocksize=(R, 1)``; the kernels then lay the kept blocks out their
own way (tap offsets, padded rows), which scipy does not do.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse


def row_blocks(matrix: np.ndarray, rows: int) -> np.ndarray:
    """``matrix [N, K]`` as ``[ceil(N / rows), rows, K]``; a last partial block is padded with zero rows."""
    padding = (-matrix.shape[0]) % rows
    padded = np.concatenate([matrix, np.zeros((padding, matrix.shape[1]), matrix.dtype)]) if padding else matrix
    return padded.reshape(-1, rows, matrix.shape[1])


def block_structure(matrix: np.ndarray, rows: int) -> scipy.sparse.bsr_array:
    """The ``rows x 1`` blocks of ``matrix`` that hold a non-zero (``indptr`` per block row, ``indices``
    = column of each kept block, sorted)."""
    mask = row_blocks(matrix != 0, rows).reshape(-1, matrix.shape[1]).astype(np.int8)
    structure = scipy.sparse.bsr_array(mask, blocksize=(rows, 1))
    structure.sort_indices()
    return structure


def nonzero_blocks(matrix: np.ndarray, rows: int) -> int:
    """How many ``rows x 1`` blocks of ``matrix`` hold a non-zero value."""
    return int(block_structure(matrix, rows).indices.size)
