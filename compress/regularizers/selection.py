"""Which weights a regularizer or method acts on, keyed by fully-qualified name (``fqn``)."""

from __future__ import annotations

from typing import Iterator

from torch import nn

LAYER_KINDS = ("all", "conv", "linear")
GROUP_AXES = {"output": 0, "input": 1}


def check_layers(layers: str) -> str:
    """Validate a layer-kind name; returns it."""
    if layers not in LAYER_KINDS:
        raise ValueError(f"unknown layers {layers!r}; allowed: {', '.join(LAYER_KINDS)}")
    return layers


def group_axis(name: str) -> int:
    """Tensor axis of a group-axis name: ``"output"`` -> 0 (filters / rows), ``"input"`` -> 1."""
    if name not in GROUP_AXES:
        raise ValueError(f"unknown group axis {name!r}; allowed: {', '.join(GROUP_AXES)}")
    return GROUP_AXES[name]


def selected_weights(model: nn.Module, *, layers: str = "all") -> Iterator[tuple[str, nn.Parameter]]:
    """Yield ``(fqn, weight)`` of trainable conv (>= 3-D) and/or linear (2-D) weights.

    Args:
        model: any module.
        layers: ``"all"`` (conv and linear), ``"conv"`` or ``"linear"``.
    """
    check_layers(layers)
    for fqn, param in model.named_parameters():
        if not (param.requires_grad and fqn.endswith("weight") and param.dim() >= 2):
            continue
        is_conv = param.dim() >= 3
        if layers == "all" or (layers == "conv") == is_conv:
            yield fqn, param
