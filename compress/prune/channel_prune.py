"""One call for the prune stage: plan, zero, remove channels, and check the removal."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from compress.prune.channel_plan import plan_channel_pruning
from compress.prune.channel_surgery import apply_channel_plan, mask_channels_
from compress.prune.plan_record import ChannelPlan
from compress.stats import output_channels


class ChannelRemovalMismatch(RuntimeError):
    """Physically removing channels changed the model's outputs beyond the tolerance."""


@dataclass(frozen=True)
class ChannelPruneResult:
    """Pruned model, the plan that rebuilds it, and the masked (same-shape) model it came from."""

    model: nn.Module
    masked_model: nn.Module
    plan: ChannelPlan


@torch.no_grad()
def max_output_difference(reference: nn.Module, candidate: nn.Module, *, inputs: tuple[torch.Tensor, ...]) -> float:
    """``max |reference(x) - candidate(x)|`` over a batch, both models in eval mode and from the same
    random state (a model that injects noise at inference, like EnResNet, draws the same noise)."""
    states = (reference.training, candidate.training)
    reference.eval()
    candidate.eval()
    try:
        outputs = []
        for model in (reference, candidate):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                outputs.append(model(*inputs))
        return float((outputs[0] - outputs[1]).abs().max())
    finally:
        reference.train(states[0])
        candidate.train(states[1])


def check_channel_equivalence(
    masked: nn.Module, pruned: nn.Module, *, inputs: tuple[torch.Tensor, ...], atol: float = 1e-5
) -> float:
    """``max |masked(x) - pruned(x)|``.

    Raises:
        ChannelRemovalMismatch: when the difference exceeds ``atol`` (or is NaN).
    """
    difference = max_output_difference(masked, pruned, inputs=inputs)
    if not difference <= atol:
        raise ChannelRemovalMismatch(f"pruned model differs from the masked model by {difference:.3g} > atol {atol:.3g}")
    return difference


def removable_channel_ratio(model: nn.Module, *, example_inputs: tuple) -> float:
    """Fraction of conv / linear output channels that dead-channel removal (``channel_ratio=None``)
    would take out of ``model`` as it is: the structured sparsity a training method reached."""
    plan = plan_channel_pruning(model, example_inputs=example_inputs, channel_ratio=None)
    return plan.removed_output_channels() / max(output_channels(model), 1)


def prune_channels(
    model: nn.Module,
    *,
    example_inputs: tuple,
    channel_ratio: float | None = None,
    importance: str = "l1",
    channel_multiple: int = 1,
) -> ChannelPruneResult:
    """Plan channel removal, zero the planned channels on a copy, then physically remove them.

    The masked copy and the pruned model compute the same function (up to float rounding); the
    change against ``model`` itself is zero only when ``plan.exact`` (all removed channels dead).
    Arguments are those of ``plan_channel_pruning``.
    """
    plan = plan_channel_pruning(
        model,
        example_inputs=example_inputs,
        channel_ratio=channel_ratio,
        importance=importance,
        channel_multiple=channel_multiple,
    )
    masked = mask_channels_(copy.deepcopy(model), plan)
    return ChannelPruneResult(model=apply_channel_plan(masked, plan), masked_model=masked, plan=plan)
