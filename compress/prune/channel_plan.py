"""Channel pruning plans: which channels of which module are kept (a ``ChannelPlan``).

Exactness with batch norm: a zero filter followed by BN outputs the constant
``beta - gamma * mean / sqrt(var + eps)``, not zero. A class counts as dead only if every BN (and
depthwise bias) on its path maps 0 to exactly 0; ``mask_channels_`` therefore zeroes gamma and beta
(and biases) of the channels it removes, which makes "masked model == pruned model" exact for any
consumer, padded convs included. Folding a non-zero constant into the next layer's bias is not
done (it is exact only for consumers without zero padding): such a channel still ranks first (its
L1/L2 score is 0) but its removal is reported with ``exact: false``.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize

from compress.prune import channel_ops as ops
from compress.prune.channel_graph import ChannelGraph, trace_channels
from compress.prune.channel_importance import class_scores, dead_classes
from compress.prune.plan_record import ChannelPlan, MaskedChannels, ModuleChannels
from compress.selection import ALL_LAYERS


def _buckets(graph: ChannelGraph, classes: dict[int, list[int]]) -> dict[tuple[str, ...], list[int]]:
    """Classes grouped by the set of producers they span (one bucket = one prunable layer group)."""
    buckets: dict[tuple[str, ...], list[int]] = {}
    for root, atoms in classes.items():
        key = tuple(sorted({graph.owners[a][0] for a in atoms if graph.owners[a] is not None}))
        if key:
            buckets.setdefault(key, []).append(root)
    return buckets


def _select(
    roots: list[int],
    *,
    candidates: set[int],
    dead: set[int],
    scores: dict[int, float],
    channel_ratio: float | None,
    channel_multiple: int,
) -> list[int]:
    """Dead classes first, then lowest score, up to ``round(ratio * n)``; always keep one class.

    With ``channel_multiple`` k > 1 the kept count is rounded up to a multiple of k (or all n).
    """
    removable = sorted((r for r in roots if r in candidates), key=lambda r: (r not in dead, scores[r], r))
    wanted = 0 if channel_ratio is None else int(round(channel_ratio * len(roots)))
    count = min(max(wanted, sum(1 for r in removable if r in dead)), len(roots) - 1)
    kept = min(len(roots), -(-(len(roots) - count) // channel_multiple) * channel_multiple)
    return removable[: min(len(roots) - kept, len(removable))]


def _module_entries(model: nn.Module, graph: ChannelGraph, removed: set[int]) -> dict[str, ModuleChannels]:
    entries = {}
    for fqn, kind in graph.kinds.items():
        inputs, outputs = graph.inputs[fqn], graph.outputs[fqn]
        in_keep = [i for i, atom in enumerate(inputs) if atom not in removed]
        out_keep = [i for i, atom in enumerate(outputs) if atom not in removed]
        if len(in_keep) < len(inputs) or len(out_keep) < len(outputs):
            entries[fqn] = ModuleChannels(kind, len(inputs), len(outputs), in_keep, out_keep)
    return entries


def _fallback_masks(
    model: nn.Module, graph: ChannelGraph, classes: dict[int, list[int]], ratio: float | None
) -> dict[str, MaskedChannels]:
    """Channels to zero (not remove) in conv layers whose output cannot be rewritten."""
    if ratio is None:
        return {}
    pinned_io = {graph.find(a) for a in graph.pinned_io}
    if not graph.traced:
        layers = [(name, m) for name, m in ALL_LAYERS.modules(model) if isinstance(m, ops.CONVS)]
        return {
            f"{name}.weight": MaskedChannels(list(m.weight.shape), _weakest_rows(m, ratio)) for name, m in layers
        }
    masked: dict[str, MaskedChannels] = {}
    for fqn in graph.kinds:
        if graph.kinds[fqn] not in ("conv", "linear"):
            continue
        roots = [graph.find(a) for a in graph.outputs[fqn]]
        if any(r in pinned_io for r in roots) or not any(a in graph.pinned_opaque for r in roots for a in classes[r]):
            continue
        module = model.get_submodule(fqn)
        masked[f"{fqn}.weight"] = MaskedChannels(list(module.weight.shape), _weakest_rows(module, ratio))
        graph.note(f"{fqn}: output channels could not be removed; {len(masked[f'{fqn}.weight'].channels)} masked instead")
    return masked


def _weakest_rows(module: nn.Module, ratio: float) -> list[int]:
    norms = module.weight.detach().reshape(module.weight.shape[0], -1).abs().sum(dim=1)
    count = min(int(round(ratio * len(norms))), len(norms) - 1)
    return sorted(int(i) for i in norms.argsort(stable=True)[:count])


def plan_channel_pruning(
    model: nn.Module,
    *,
    example_inputs: tuple,
    channel_ratio: float | None = None,
    importance: str = "l1",
    channel_multiple: int = 1,
) -> ChannelPlan:
    """Plan structured channel removal for ``model`` (the model itself is not modified).

    Coupled channel classes are found with ``trace_channels``. In every bucket of classes (the
    classes spanning the same set of producer layers) the dead classes are removed first, then
    the lowest-importance ones, up to ``round(channel_ratio * n)`` per bucket; one class is always
    kept. ``channel_ratio=None`` removes exactly the dead (all-zero) classes.

    Args:
        model: the model to plan for (its weights decide importance and deadness).
        example_inputs: a tuple of example inputs (shapes for flatten offsets).
        channel_ratio: target fraction of channels to remove per layer group, in [0, 1).
        importance: ``"l1"``, ``"l2"`` or ``"bn-gamma"`` (see ``class_scores``).
        channel_multiple: keep a multiple of this many channels per layer group (e.g. 8 for SIMD /
            NCHWc-friendly widths); 1 disables rounding. Rounding only ever keeps more channels.
    """
    if any(parametrize.is_parametrized(module) for module in model.modules()):
        raise ValueError("model has attached masks (parametrizations); call bake_masks(model) before channel pruning")
    if channel_multiple < 1:
        raise ValueError(f"channel_multiple must be >= 1, got {channel_multiple}")
    if channel_ratio is not None and not 0.0 <= channel_ratio < 1.0:
        raise ValueError(f"channel_ratio must be in [0, 1) or None, got {channel_ratio}")
    graph = trace_channels(model, example_inputs)
    classes = graph.classes()
    pinned = {graph.find(a) for a in graph.pinned_io | graph.pinned_opaque}
    candidates = set(classes) - pinned
    dead = dead_classes(model, graph, classes)
    scores = class_scores(model, graph, classes, importance=importance)
    chosen: list[int] = []
    for roots in _buckets(graph, classes).values():
        chosen += _select(
            roots, candidates=candidates, dead=dead, scores=scores, channel_ratio=channel_ratio, channel_multiple=channel_multiple
        )
    removed = {atom for root in chosen for atom in classes[root]}
    masked = _fallback_masks(model, graph, classes, channel_ratio)
    return ChannelPlan(
        importance=importance,
        channel_ratio=channel_ratio,
        channel_multiple=channel_multiple,
        modules=_module_entries(model, graph, removed),
        masked=masked,
        removed_classes=len(chosen),
        prunable_classes=len(candidates),
        exact=all(root in dead for root in chosen),
        notes=list(graph.notes),
    )
