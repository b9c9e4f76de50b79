"""Importance of coupled channel classes: exact-zero detection, L1 / L2 filter norms, BN |gamma|."""

from __future__ import annotations

import torch
from torch import nn

from compress.prune import channel_ops as ops
from compress.prune.channel_graph import ChannelGraph

IMPORTANCES = ("l1", "l2", "bn-gamma")


def _producer_row(model: nn.Module, fqn: str, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    module = model.get_submodule(fqn)
    bias = None if module.bias is None else module.bias[index]
    return module.weight[index], bias


@torch.no_grad()
def dead_classes(model: nn.Module, graph: ChannelGraph, classes: dict[int, list[int]]) -> set[int]:
    """Roots of classes whose removal cannot change the model's outputs.

    A class is dead when its channel is exactly zero everywhere it flows (every producer row in it
    has zero weights and zero bias, and every batch norm / depthwise conv it passes through maps 0
    to 0, ``zero_maps_to_zero``): a zero channel contributes nothing to a following conv (with any
    padding) or linear layer. A class is also dead when nothing reads it: every conv / linear
    consumer has all-zero input columns for it (a method's zeroed input-channel groups), whatever
    the channel carries.
    """
    alive: set[int] = set()
    for root, atoms in classes.items():
        for atom in atoms:
            owner = graph.owners[atom]
            if owner is None:
                continue
            weight, bias = _producer_row(model, *owner)
            if bool(weight.ne(0).any()) or (bias is not None and bool(bias.ne(0))):
                alive.add(root)
                break
    for fqn, kind in graph.kinds.items():
        if kind in ("batchnorm", "depthwise"):
            module = model.get_submodule(fqn)
            for index, atom in enumerate(graph.inputs[fqn]):
                if not ops.zero_maps_to_zero(module, index):
                    alive.add(graph.find(atom))
    return (set(classes) - alive) | _unread_classes(model, graph, classes)


def _unread_classes(model: nn.Module, graph: ChannelGraph, classes: dict[int, list[int]]) -> set[int]:
    """Roots of classes read by at least one conv / linear layer, and by all of them with zero weights."""
    read, consumed = set(), set()
    for fqn, kind in graph.kinds.items():
        if kind not in ("conv", "linear"):
            continue
        weight = model.get_submodule(fqn).weight
        columns = weight.transpose(0, 1).reshape(weight.shape[1], -1).ne(0).any(dim=1)
        for index, atom in enumerate(graph.inputs[fqn]):
            root = graph.find(atom)
            consumed.add(root)
            if bool(columns[index]):
                read.add(root)
    return {root for root in classes if root in consumed and root not in read}


@torch.no_grad()
def class_scores(
    model: nn.Module, graph: ChannelGraph, classes: dict[int, list[int]], *, importance: str
) -> dict[int, float]:
    """Score per class root: sum over its producer filters of ``||W_j||_1`` / ``||W_j||_2``, or
    the sum of ``|gamma|`` of the batch norms it passes through (Liu et al., Network Slimming,
    ICCV 2017). Classes without a batch norm fall back to the L2 score under ``"bn-gamma"``.
    """
    if importance not in IMPORTANCES:
        raise ValueError(f"unknown channel importance {importance!r}; allowed: {', '.join(IMPORTANCES)}")
    norm = 1 if importance == "l1" else 2
    scores: dict[int, float] = {}
    for root, atoms in classes.items():
        total = 0.0
        for atom in atoms:
            if graph.owners[atom] is not None:
                weight, _ = _producer_row(model, *graph.owners[atom])
                total += float(weight.norm(p=norm))
        scores[root] = total
    if importance == "bn-gamma":
        gamma: dict[int, float] = {}
        for fqn, kind in graph.kinds.items():
            module = model.get_submodule(fqn)
            if kind == "batchnorm" and module.weight is not None:
                for index, atom in enumerate(graph.inputs[fqn]):
                    root = graph.find(atom)
                    gamma[root] = gamma.get(root, 0.0) + float(module.weight[index].abs())
        scores = {root: gamma.get(root, score) for root, score in scores.items()}
    return scores
