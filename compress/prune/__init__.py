"""Pruning: masks, unstructured / block / N:M / BCR weight patterns, and structured channel removal.

Typical prune-stage use::

    result = prune_weights(model, pattern="bcr", block=BlockShape(4, 4), sparsity_ratio=0.5)
    attach_masks(model, result.masks)        # masked fine-tuning ...
    bake_masks(model)                        # ... then write zeros and drop the masks
    pruned = prune_channels(model, example_inputs=(x,), channel_ratio=0.3)
    # save pruned.model.state_dict() and pruned.plan.to_dict(); replay with
    # apply_channel_plan(fresh, ChannelPlan.from_dict(saved))
"""

from compress.prune.bcr import bcr_keep_counts, bcr_mask
from compress.prune.block import block_mask
from compress.prune.channel_graph import ChannelGraph, trace_channels
from compress.prune.channel_importance import IMPORTANCES
from compress.prune.channel_plan import plan_channel_pruning
from compress.prune.channel_prune import (
    ChannelPruneResult,
    ChannelRemovalMismatch,
    check_channel_equivalence,
    max_output_difference,
    prune_channels,
    removable_channel_ratio,
)
from compress.prune.channel_surgery import (
    apply_channel_plan,
    mask_channels_,
    plan_masks,
)
from compress.prune.compute import ComputeCount, count_compute
from compress.prune.magnitude import SCOPES, magnitude_masks, threshold_masks
from compress.prune.masks import (
    Masks,
    WeightMask,
    apply_masks_,
    attach_masks,
    attached_masks,
    bake_masks,
    mask_gradients_,
    mask_layouts,
    mask_sparsity,
    masks_from_weights,
)
from compress.prune.nm import nm_mask
from compress.prune.plan_record import (
    PLAN_FORMAT,
    ChannelPlan,
    ChannelPlanError,
    MaskedChannels,
    ModuleChannels,
)
from compress.prune.schedule import agp_sparsity
from compress.prune.semi_structured import (
    PATTERNS,
    WeightPruneResult,
    layer_sparsity,
    prune_weights,
)

__all__ = [
    "IMPORTANCES",
    "PATTERNS",
    "PLAN_FORMAT",
    "SCOPES",
    "ChannelGraph",
    "ChannelPlan",
    "ChannelPlanError",
    "ChannelPruneResult",
    "ChannelRemovalMismatch",
    "ComputeCount",
    "MaskedChannels",
    "Masks",
    "ModuleChannels",
    "WeightMask",
    "WeightPruneResult",
    "agp_sparsity",
    "apply_channel_plan",
    "apply_masks_",
    "attach_masks",
    "attached_masks",
    "bake_masks",
    "bcr_keep_counts",
    "bcr_mask",
    "block_mask",
    "check_channel_equivalence",
    "count_compute",
    "layer_sparsity",
    "magnitude_masks",
    "mask_channels_",
    "mask_gradients_",
    "mask_layouts",
    "mask_sparsity",
    "masks_from_weights",
    "max_output_difference",
    "nm_mask",
    "plan_channel_pruning",
    "plan_masks",
    "prune_channels",
    "removable_channel_ratio",
    "prune_weights",
    "threshold_masks",
    "trace_channels",
]  # fmt: skip
