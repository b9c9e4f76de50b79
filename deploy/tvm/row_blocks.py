"""Blocks of ``R`` consecutive rows of a matrix: the ``R x 1`` block view shared by our weight encoders."""

from __future__ import annotations

import numpy as np


def row_blocks(matrix: np.ndarray, rows: int) -> np.ndarray:
    """``matrix [N, K]`` as ``[ceil(N / rows), rows, K]``; a last partial block is padded with zero rows."""
    padding = (-matrix.shape[0]) % rows
    padded = np.concatenate([matrix, np.zeros((padding, matrix.shape[1]), matrix.dtype)]) if padding else matrix
    return padded.reshape(-1, rows, matrix.shape[1])


def nonzero_blocks(matrix: np.ndarray, rows: int) -> int:
    """How many ``rows x 1`` blocks of ``matrix`` hold a non-zero value."""
    return int(np.any(row_blocks(matrix != 0, rows), axis=1).sum())
