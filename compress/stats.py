"""Per-layer weight statistics (sparsity, channel sparsity)."""

from __future__ import annotations

import torch
from torch import nn

from compress.selection import ALL_LAYERS
from compress.types import LayerStats


def layer_stats(model: nn.Module) -> list[LayerStats]:
    """Weight sparsity and output-channel sparsity of every conv / linear weight."""
    stats = []
    for name, module in ALL_LAYERS.modules(model):
        weight = module.weight.detach()
        channel_nnz = weight.reshape(weight.shape[0], -1).ne(0).sum(dim=1)
        stats.append(
            LayerStats(
                fqn=f"{name}.weight",
                kind=type(module).__name__,
                shape=tuple(weight.shape),
                numel=weight.numel(),
                nnz=int(weight.ne(0).sum()),
                zero_channels=int((channel_nnz == 0).sum()),
                channels=int(weight.shape[0]),
            )
        )
    return stats


def weight_sparsity(model: nn.Module) -> float:
    """#(w == 0) / #w over conv and linear weights."""
    stats = layer_stats(model)
    numel = sum(s.numel for s in stats)
    return 1.0 - sum(s.nnz for s in stats) / max(numel, 1)


def count_nonzero_weights(model: nn.Module) -> int:
    return sum(s.nnz for s in layer_stats(model))


def channel_sparsity(model: nn.Module) -> float:
    """Fraction of all-zero output channels over conv / linear layers."""
    stats = layer_stats(model)
    return sum(s.zero_channels for s in stats) / max(sum(s.channels for s in stats), 1)


def output_channels(model: nn.Module) -> int:
    """Output channels of all conv / linear layers (the denominator of channel sparsity)."""
    return sum(s.channels for s in layer_stats(model))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def has_non_finite(model: nn.Module) -> str | None:
    """Name of the first parameter or buffer holding NaN / Inf, else ``None``."""
    for fqn, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            return fqn
    return None
