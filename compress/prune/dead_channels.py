"""Dead output channels: a conv / linear output channel whose weights are all zero, made exactly zero.

A group method (RGSM / SGL / group lasso on output channels, xRDA channel mode) zeroes the weights of
a filter, but the channel still outputs its bias, or, behind a batch norm, ``beta - gamma * mean /
sqrt(var + eps)``: a constant, not a removable channel. ``silence_dead_channels_`` zeroes that bias
and the batch norm's ``gamma`` and ``beta`` of the channel, so ``dead_classes`` sees it as dead and
the prune stage removes it exactly. This changes the model by the constant the channel carried; the
stage measures accuracy after it.

The batch norm of a channel is the nearest following norm layer (definition order) whose width
equals the producer's output width (conv-bn-relu stacks); ``norm_layers_with_producers`` is shared
with network slimming.
"""

from __future__ import annotations

import torch
from torch import nn

from compress.selection import LAYER_TYPES

NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _width(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def norm_layers_with_producers(model: nn.Module) -> list[tuple[str, nn.Module, nn.Module | None]]:
    """``(fqn, norm, producer)`` for every affine batch-norm layer (producer ``None`` when not found)."""
    out, last = [], None
    for fqn, module in model.named_modules():
        if isinstance(module, LAYER_TYPES):
            last = module
        elif isinstance(module, NORM_TYPES) and module.affine:
            producer = last if last is not None and _width(last) == module.num_features else None
            out.append((fqn, module, producer))
    return out


@torch.no_grad()
def silence_dead_channels_(model: nn.Module) -> int:
    """Zero the bias (and the following batch norm's ``gamma``, ``beta``) of every output channel
    whose weights are all zero; returns how many channels changed."""
    norms = {id(producer): norm for _, norm, producer in norm_layers_with_producers(model) if producer is not None}
    changed = 0
    for module in model.modules():
        if not isinstance(module, LAYER_TYPES):
            continue
        dead = module.weight.detach().reshape(module.weight.shape[0], -1).eq(0).all(dim=1)
        if not bool(dead.any()):
            continue
        touched = torch.zeros_like(dead)
        if module.bias is not None:
            touched |= dead & module.bias.ne(0)
            module.bias[dead] = 0.0
        norm = norms.get(id(module))
        if norm is not None:
            touched |= dead & (norm.weight.ne(0) | norm.bias.ne(0))
            norm.weight[dead] = 0.0
            norm.bias[dead] = 0.0
        changed += int(touched.sum())
    return changed
