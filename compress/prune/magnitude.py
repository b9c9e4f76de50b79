"""Unstructured magnitude and threshold pruning (Han et al., "Learning both Weights and Connections", NIPS 2015)."""

from __future__ import annotations

import torch
from torch import nn

from compress.prune.masks import Masks
from compress.selection import ALL_LAYERS, ParamSelector

SCOPES = ("layer", "global")


def _check_ratio(sparsity_ratio: float) -> None:
    if not 0.0 <= sparsity_ratio <= 1.0:
        raise ValueError(f"sparsity_ratio must be in [0, 1], got {sparsity_ratio}")


def smallest_mask(scores: torch.Tensor, *, prune_count: int) -> torch.Tensor:
    """Boolean mask that drops exactly the ``prune_count`` lowest scores (ties broken by position)."""
    flat = scores.reshape(-1)
    keep = torch.ones(flat.numel(), dtype=torch.bool)
    if prune_count > 0:
        order = torch.argsort(flat, stable=True)
        keep[order[:prune_count]] = False
    return keep.reshape(scores.shape)


@torch.no_grad()
def magnitude_masks(
    model: nn.Module,
    *,
    sparsity_ratio: float,
    scope: str = "layer",
    layers: ParamSelector = ALL_LAYERS,
    layer_sparsity: dict[str, float] | None = None,
) -> Masks:
    """Keep the largest ``|w|``: ``m = 1[|w| > kth smallest |w|]`` with ``k = round(s * #w)``.

    Args:
        model: model whose conv / linear weights are pruned.
        sparsity_ratio: fraction of weights to drop, per layer (``scope="layer"``) or over all
            selected weights together (``scope="global"``).
        scope: ``"layer"`` or ``"global"``.
        layers: the weights to prune (the rest stays dense).
        layer_sparsity: ``{fqn: ratio}`` replacing ``sparsity_ratio`` for those weights (layer scope).
    """
    _check_ratio(sparsity_ratio)
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; allowed: {', '.join(SCOPES)}")
    weights = dict(layers.weights(model))
    if scope == "layer":
        ratios = layer_sparsity or {}
        for ratio in ratios.values():
            _check_ratio(ratio)
        return {
            fqn: smallest_mask(w.abs(), prune_count=round(ratios.get(fqn, sparsity_ratio) * w.numel()))
            for fqn, w in weights.items()
        }
    flat = torch.cat([w.abs().reshape(-1) for w in weights.values()]) if weights else torch.zeros(0)
    keep = smallest_mask(flat, prune_count=round(sparsity_ratio * flat.numel()))
    masks, offset = {}, 0
    for fqn, w in weights.items():
        masks[fqn] = keep[offset : offset + w.numel()].reshape(w.shape)
        offset += w.numel()
    return masks


@torch.no_grad()
def threshold_masks(model: nn.Module, *, threshold: float, layers: ParamSelector = ALL_LAYERS) -> Masks:
    """Hard threshold (the l0 prox): ``m = 1[|w| > threshold]`` for every selected weight."""
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    return {fqn: w.abs() > threshold for fqn, w in layers.weights(model)}
