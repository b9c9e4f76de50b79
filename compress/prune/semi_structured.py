"""Model-level weight pruning: one pattern for every selected conv / linear weight, with layouts."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from compress.prune.bcr import bcr_mask
from compress.prune.block import block_mask
from compress.prune.magnitude import magnitude_masks
from compress.prune.masks import Masks, mask_layouts
from compress.prune.nm import nm_mask
from compress.selection import ALL_LAYERS, ParamSelector
from compress.types import BlockShape, SparsityLayout

PATTERNS = ("unstructured", "block", "n:m", "bcr")


@dataclass(frozen=True)
class WeightPruneResult:
    """Masks to attach (or bake) and the layout of each pruned weight for export / compile."""

    masks: Masks
    layouts: list[SparsityLayout]


def prune_weights(
    model: nn.Module,
    *,
    pattern: str,
    sparsity_ratio: float = 0.5,
    block: BlockShape = BlockShape(1, 1),
    n: int = 2,
    m: int = 4,
    scope: str = "layer",
    layers: ParamSelector = ALL_LAYERS,
    layer_sparsity: dict[str, float] | None = None,
) -> WeightPruneResult:
    """Masks of one sparsity pattern over the conv / linear weights of ``model`` (weights untouched).

    Args:
        model: the model to score.
        pattern: ``"unstructured"`` (magnitude, ``scope`` layer/global), ``"block"`` (``block``
            r x c, rows = output channels, L2 block scores), ``"n:m"`` (``n`` of every ``m`` along
            the input dimension; ``sparsity_ratio`` is ignored) or ``"bcr"`` (GRIM column-row
            inside ``block``).
        sparsity_ratio: target fraction of zero weights per layer (global for unstructured+global).
        block: block shape for ``"block"`` and ``"bcr"``.
        n: kept entries per group for ``"n:m"``.
        m: group size for ``"n:m"``.
        scope: ``"layer"`` or ``"global"`` (unstructured only).
        layers: the weights to prune (the rest stays dense).
        layer_sparsity: ``{fqn: ratio}`` replacing ``sparsity_ratio`` for those weights (per-layer
            ratios, e.g. the zeros a sparse-training method left), with ``scope="layer"``.
    """
    if pattern not in PATTERNS:
        raise ValueError(f"unknown sparsity pattern {pattern!r}; allowed: {', '.join(PATTERNS)}")
    ratios = dict(layer_sparsity or {})
    if ratios and scope != "layer":
        raise ValueError(f"per-layer ratios need scope 'layer', got {scope!r}")
    if pattern == "unstructured":
        masks = magnitude_masks(model, sparsity_ratio=sparsity_ratio, scope=scope, layers=layers, layer_sparsity=ratios)
        return WeightPruneResult(masks, mask_layouts(model, masks, pattern=pattern, block=BlockShape(1, 1)))
    if scope != "layer":
        raise ValueError(f"pattern {pattern!r} supports scope 'layer' only, got {scope!r}")
    weights = dict(layers.weights(model))
    if pattern == "n:m":
        masks = {fqn: nm_mask(w, n=n, m=m) for fqn, w in weights.items()}
        return WeightPruneResult(masks, mask_layouts(model, masks, pattern=pattern, block=BlockShape(1, m)))
    make = block_mask if pattern == "block" else bcr_mask
    masks = {fqn: make(w, block=block, sparsity_ratio=ratios.get(fqn, sparsity_ratio)) for fqn, w in weights.items()}
    return WeightPruneResult(masks, mask_layouts(model, masks, pattern=pattern, block=block))


def layer_sparsity(masks: Masks) -> dict[str, float]:
    """``{fqn: 1 - kept / numel}`` per mask."""
    return {fqn: 1.0 - int(mask.sum()) / max(mask.numel(), 1) for fqn, mask in masks.items()}


__all__ = ["PATTERNS", "WeightPruneResult", "layer_sparsity", "prune_weights"]
