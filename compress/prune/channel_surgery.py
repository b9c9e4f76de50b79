"""Replay a channel plan: zero the planned channels (masked model) or physically remove them.

``apply_channel_plan`` rebuilds narrower modules from the original architecture: it works on a
deep copy, slices every listed module's parameters and buffers and updates its size attributes,
so a fresh ``create_model(arch)`` + ``apply_channel_plan`` + ``load_state_dict`` restores a
pruned checkpoint without pickling modules.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from compress.prune import channel_ops as ops
from compress.prune.masks import Masks
from compress.prune.plan_record import ChannelPlan, ChannelPlanError, ModuleChannels

_KIND_TYPES = {"conv": ops.CONVS, "depthwise": ops.CONVS, "linear": (nn.Linear,), "batchnorm": ops.BATCHNORMS}


def _sizes(module: nn.Module, kind: str) -> tuple[int, int]:
    if kind == "linear":
        return module.in_features, module.out_features
    if kind == "batchnorm":
        return module.num_features, module.num_features
    return module.in_channels, module.out_channels


def _module_for(model: nn.Module, fqn: str, entry: ModuleChannels) -> nn.Module:
    try:
        module = model.get_submodule(fqn)
    except AttributeError:
        raise ChannelPlanError(f"channel plan names module {fqn!r}, which the model does not have") from None
    if not isinstance(module, _KIND_TYPES[entry.kind]):
        raise ChannelPlanError(f"channel plan expects {fqn!r} to be a {entry.kind}, the model has {type(module).__name__}")
    if _sizes(module, entry.kind) != (entry.in_size, entry.out_size):
        raise ChannelPlanError(
            f"channel plan expects {fqn!r} with (in, out) = ({entry.in_size}, {entry.out_size}), "
            f"the model has {_sizes(module, entry.kind)}; replay the plan on the original architecture"
        )
    return module


def _slice_(module: nn.Module, name: str, index: torch.Tensor, dim: int) -> None:
    tensor = getattr(module, name, None)
    if tensor is None:
        return
    sliced = tensor.detach().index_select(dim, index).clone()
    if isinstance(tensor, nn.Parameter):
        setattr(module, name, nn.Parameter(sliced, requires_grad=tensor.requires_grad))
    else:
        setattr(module, name, sliced)


def _shrink(module: nn.Module, entry: ModuleChannels) -> None:
    kind = entry.kind
    in_keep = torch.tensor(entry.in_keep, dtype=torch.long)
    out_keep = torch.tensor(entry.out_keep, dtype=torch.long)
    if kind == "batchnorm":
        for name in ("weight", "bias", "running_mean", "running_var"):
            _slice_(module, name, out_keep, 0)
        module.num_features = len(out_keep)
        return
    _slice_(module, "weight", out_keep, 0)
    _slice_(module, "bias", out_keep, 0)
    if kind == "linear":
        _slice_(module, "weight", in_keep, 1)
        module.in_features, module.out_features = len(in_keep), len(out_keep)
    elif kind == "conv":
        _slice_(module, "weight", in_keep, 1)
        module.in_channels, module.out_channels = len(in_keep), len(out_keep)
    else:  # depthwise: one filter per kept channel
        module.in_channels = module.out_channels = module.groups = len(out_keep)


def apply_channel_plan(model: nn.Module, plan: ChannelPlan) -> nn.Module:
    """A pruned deep copy of ``model``: every module in ``plan.modules`` keeps only its listed channels.

    Fallback ``plan.masked`` channels are not touched here (see ``mask_channels_``).

    Raises:
        ChannelPlanError: the plan does not fit the model's architecture (or a channel index is out of range).
    """
    pruned = copy.deepcopy(model)
    modules = {fqn: _module_for(pruned, fqn, entry) for fqn, entry in plan.modules.items()}
    for fqn, entry in plan.modules.items():
        if any(not 0 <= i < entry.in_size for i in entry.in_keep) or any(not 0 <= i < entry.out_size for i in entry.out_keep):
            raise ChannelPlanError(f"channel plan keeps channels of {fqn!r} outside its sizes ({entry.in_size}, {entry.out_size})")
        _shrink(modules[fqn], entry)
    return pruned


@torch.no_grad()
def mask_channels_(model: nn.Module, plan: ChannelPlan) -> nn.Module:
    """Zero, in place, every channel the plan removes or masks: the "masked model".

    Removed channels: producer weight rows and biases, and batch-norm / depthwise ``gamma``,
    ``beta``, bias of those channels (so BN maps them to exactly 0). Fallback-masked channels:
    weight rows only. Removing the zeroed channels afterwards leaves the outputs unchanged.
    """
    for fqn, entry in plan.modules.items():
        module = _module_for(model, fqn, entry)
        dropped = sorted(set(range(entry.out_size)) - set(entry.out_keep))
        if not dropped:
            continue
        index = torch.tensor(dropped, dtype=torch.long)
        for name in ("weight", "bias"):
            tensor = getattr(module, name, None)
            if tensor is not None:
                tensor.index_fill_(0, index, 0.0)
    for fqn, mask in plan_masks(plan).items():
        weight = model.get_submodule(fqn.rpartition(".")[0]).weight
        weight.mul_(mask.to(weight.dtype))
    return model


def plan_masks(plan: ChannelPlan) -> Masks:
    """The fallback masks of a plan as boolean weight masks (``False`` = masked output channel)."""
    masks: Masks = {}
    for fqn, entry in plan.masked.items():
        mask = torch.ones(entry.shape, dtype=torch.bool)
        mask[entry.channels] = False
        masks[fqn] = mask
    return masks
