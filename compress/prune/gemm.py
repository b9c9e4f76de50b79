"""The GEMM view ``[out, in*kh*kw]`` of a conv / linear weight, padded logically to whole blocks."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from compress.types import BlockShape


def gemm_view(weight: torch.Tensor) -> torch.Tensor:
    """``weight.reshape(out, -1)``: rows are output channels, columns input*kernel positions."""
    if weight.dim() < 2:
        raise ValueError(f"a GEMM view needs a weight with >= 2 dims, got shape {tuple(weight.shape)}")
    return weight.reshape(weight.shape[0], -1)


def to_blocks(matrix: torch.Tensor, *, block: BlockShape, pad_value: float = 0.0) -> torch.Tensor:
    """``[R*r, C*c]`` matrix (zero-padded up to whole blocks) as ``[R, C, r, c]`` blocks."""
    rows, cols = matrix.shape
    pad_rows = -rows % block.rows
    pad_cols = -cols % block.cols
    padded = F.pad(matrix, (0, pad_cols, 0, pad_rows), value=pad_value)
    grid_rows, grid_cols = padded.shape[0] // block.rows, padded.shape[1] // block.cols
    return padded.reshape(grid_rows, block.rows, grid_cols, block.cols).permute(0, 2, 1, 3)


def from_blocks(blocks: torch.Tensor, *, shape: tuple[int, int]) -> torch.Tensor:
    """Inverse of ``to_blocks``: ``[R, C, r, c]`` back to the un-padded ``shape`` matrix."""
    grid_rows, grid_cols, rows, cols = blocks.shape
    matrix = blocks.permute(0, 2, 1, 3).reshape(grid_rows * rows, grid_cols * cols)
    return matrix[: shape[0], : shape[1]]
