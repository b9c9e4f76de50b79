"""Block sparsity on the GEMM view: drop whole ``r x c`` blocks with the smallest L2 norm.

Group-sparsity pruning as in Wen et al., "Learning Structured Sparsity in Deep Neural Networks"
(NIPS 2016) and the BSR layout of Gray et al., "GPU Kernels for Block-Sparse Weights" (2017):
score ``||W_b||_2`` per block ``b``, keep the ``(1 - s) * #blocks`` largest.
"""

from __future__ import annotations

import torch

from compress.prune.gemm import from_blocks, gemm_view, to_blocks
from compress.prune.magnitude import smallest_mask
from compress.types import BlockShape


@torch.no_grad()
def block_mask(weight: torch.Tensor, *, block: BlockShape, sparsity_ratio: float) -> torch.Tensor:
    """Boolean mask of ``weight``'s shape keeping whole blocks; ``round(s * #blocks)`` blocks are dropped.

    Dims not divisible by the block are zero-padded logically; an edge block is kept or dropped
    as a whole (its padded part is cut away), so the weight sparsity can differ from ``s`` by
    less than one block's share.
    """
    if not 0.0 <= sparsity_ratio <= 1.0:
        raise ValueError(f"sparsity_ratio must be in [0, 1], got {sparsity_ratio}")
    matrix = gemm_view(weight.detach()).float()
    blocks = to_blocks(matrix, block=block)
    scores = blocks.pow(2).sum(dim=(2, 3))
    keep = smallest_mask(scores, prune_count=round(sparsity_ratio * scores.numel()))
    full = keep[:, :, None, None].expand(blocks.shape).to(matrix.dtype)
    return from_blocks(full, shape=tuple(matrix.shape)).bool().reshape(weight.shape)
