"""N:M fine-grained structured sparsity (Mishra et al., "Accelerating Sparse Deep Neural Networks", arXiv 2104.08378).

In every group of ``M`` consecutive weights along the input dimension of the GEMM view, keep the
``N`` largest ``|w|`` (2:4 is the Ampere sparse-tensor-core pattern).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from compress.prune.gemm import gemm_view


@torch.no_grad()
def nm_mask(weight: torch.Tensor, *, n: int, m: int) -> torch.Tensor:
    """Boolean mask with exactly ``n`` kept entries in every full group of ``m`` input positions.

    A trailing partial group (input size not divisible by ``m``) keeps ``min(n, size)`` entries.
    """
    if not 1 <= n <= m:
        raise ValueError(f"N:M needs 1 <= n <= m, got {n}:{m}")
    matrix = gemm_view(weight.detach()).float()
    rows, cols = matrix.shape
    pad = -cols % m
    scores = F.pad(matrix.abs(), (0, pad), value=-1.0).reshape(rows, -1, m)
    top = scores.topk(n, dim=2).indices
    keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(2, top, True)
    return keep.reshape(rows, -1)[:, :cols].reshape(weight.shape)
