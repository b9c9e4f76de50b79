"""Support masks shared by the projections: which entries may be non-zero.

Sparsity preservation: an entry outside the mask (a weight already pruned to zero) is projected to
exactly zero and is excluded from every scale statistic (``alpha``, ``Delta``, ``max|w|``), so
quantizing a pruned model keeps its zeros and the ternary zero set can only grow.
"""

from __future__ import annotations

import torch

from compress.quant.quantized import group_rows


def check_mask(weight: torch.Tensor, mask: torch.Tensor | None) -> None:
    """Raise unless ``mask`` is ``None`` or a boolean tensor of the weight's shape."""
    if mask is None:
        return
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got dtype {mask.dtype}")
    if mask.shape != weight.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} differs from weight shape {tuple(weight.shape)}")


def masked_magnitude(
    weight: torch.Tensor, *, mask: torch.Tensor | None, per_channel: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(|w| * mask, mask)`` grouped as ``[groups, n]`` (an all-true mask when ``mask`` is ``None``)."""
    check_mask(weight, mask)
    active = torch.ones_like(weight, dtype=torch.bool) if mask is None else mask
    magnitude = weight.detach().abs() * active
    return group_rows(magnitude, per_channel=per_channel), group_rows(active, per_channel=per_channel)


def nonzero_mask(weight: torch.Tensor) -> torch.Tensor:
    """The support of a (possibly pruned) weight: ``w != 0``."""
    return weight.detach() != 0
