"""GRIM block-based column-row (BCR) pruning (Niu et al., "GRIM", arXiv 2108.11033).

The GEMM view ``[out, in*kh*kw]`` is cut into ``r x c`` blocks. Inside each block independently,
the ``r - k_r`` rows with the smallest ``||W_b[row, :]||_2`` are pruned, then the ``c - k_c``
columns with the smallest ``||W_b[kept rows, col]||_2``; the kept entries of a block are the
cross product ``kept rows x kept columns``. ``(k_r, k_c)`` are chosen so that
``1 - k_r k_c / (r c)`` is closest to the target sparsity (ties: the most balanced row/column rates).
"""

from __future__ import annotations

import torch

from compress.prune.gemm import from_blocks, gemm_view, to_blocks
from compress.types import BlockShape


def bcr_keep_counts(*, block: BlockShape, sparsity_ratio: float) -> tuple[int, int]:
    """Rows and columns ``(k_r, k_c)`` kept per block for a target sparsity (at least one of each)."""
    if not 0.0 <= sparsity_ratio < 1.0:
        raise ValueError(f"BCR sparsity_ratio must be in [0, 1), got {sparsity_ratio}")
    candidates = [(kr, kc) for kr in range(1, block.rows + 1) for kc in range(1, block.cols + 1)]

    def cost(pair: tuple[int, int]) -> tuple[float, float]:
        kr, kc = pair
        error = abs(1.0 - kr * kc / (block.rows * block.cols) - sparsity_ratio)
        return round(error, 12), abs(kr / block.rows - kc / block.cols)

    return min(candidates, key=cost)


def _top_mask(scores: torch.Tensor, keep: int) -> torch.Tensor:
    top = scores.topk(keep, dim=-1).indices
    return torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, top, True)


@torch.no_grad()
def bcr_mask(weight: torch.Tensor, *, block: BlockShape, sparsity_ratio: float) -> torch.Tensor:
    """Boolean mask of ``weight``'s shape; each block keeps whole rows and whole columns only."""
    keep_rows, keep_cols = bcr_keep_counts(block=block, sparsity_ratio=sparsity_ratio)
    matrix = gemm_view(weight.detach()).float()
    blocks = to_blocks(matrix, block=block)  # [R, C, r, c]
    row_keep = _top_mask(blocks.pow(2).sum(dim=3), keep_rows)  # [R, C, r]
    col_scores = (blocks * row_keep[..., None]).pow(2).sum(dim=2)  # [R, C, c]
    col_keep = _top_mask(col_scores, keep_cols)
    keep = row_keep[..., :, None] & col_keep[..., None, :]
    return from_blocks(keep.to(matrix.dtype), shape=tuple(matrix.shape)).bool().reshape(weight.shape)
