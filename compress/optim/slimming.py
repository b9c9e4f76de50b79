"""Network slimming: L1 on batch-norm scales, then channel pruning (Liu, Li, Shen, Huang, Yan, Zhang,
"Learning efficient convolutional networks through network slimming", ICCV 2017).

Training: ``L = CE + s sum |gamma|`` via the subgradient ``gamma.grad += s * sign(gamma)`` after backward.
``finalize``: the global threshold is the ``sparsity_ratio`` quantile of all ``|gamma|``; every channel with
``|gamma| <= threshold`` gets ``gamma = beta = 0`` and the filter (and bias) of the conv / linear layer
that produces it zeroed, so the channel's output is exactly 0 and ``stats.channel_sparsity`` counts it.

The producing layer of a norm layer is the nearest preceding conv / linear module (definition order)
whose output width equals the norm's ``num_features`` (true for conv-bn-relu stacks).

Ours: every layer keeps at least ``min_keep_ratio`` of its channels (its strongest; a global quantile
otherwise empties thin layers and the network collapses), and, as the paper fine-tunes after pruning,
the channels are pruned after ``1 - finetune_ratio`` of the steps and the rest of the run fine-tunes
the slimmer network with the pruned channels held at zero and the L1 term off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from compress.optim.masked_finetune import MaskedFinetune, PHASE_FINE_TUNING, PHASE_STEPS
from compress.optim.method import Hyperparameters, TrainingMethod, check_ratio
from compress.prune.dead_channels import norm_layers_with_producers

DeadChannels = dict[str, torch.Tensor]


@dataclass(frozen=True)
class SlimmingHyperparameters(Hyperparameters):
    """Attributes: ``lr`` (0.1 in the reference, for training from scratch; 0.01 fine-tunes a trained
    model), ``weight_decay`` (1e-4 in the reference), ``s`` (L1 weight on BN scales: 1e-4 VGG, 1e-5
    ResNet in the reference's 160-epoch runs; ``None``: ``s_steps / (lr * T)``, ours: a BN scale is
    pulled toward 0 by up to ``s * lr * T`` in total, 0.4 by default), ``sparsity_ratio`` (fraction of all
    BN channels to prune in ``finalize``, a global quantile of ``|gamma|``)."""

    lr: float = 0.01
    weight_decay: float = 1e-4
    s: float | None = None
    s_steps: float = 0.4
    sparsity_ratio: float = 0.5
    min_keep_ratio: float = 0.1
    finetune_ratio: float = 0.25

    def __post_init__(self) -> None:
        super().__post_init__()
        if not ((self.s is None or self.s >= 0) and self.s_steps >= 0):
            raise ValueError(f"s and s_steps must be >= 0, got {self.s}, {self.s_steps}")
        for name in ("sparsity_ratio", "min_keep_ratio", "finetune_ratio"):
            check_ratio(name, getattr(self, name))


class NetworkSlimming(TrainingMethod):
    """Sparsity on BN scales, then global-threshold channel pruning."""

    name = "slimming"
    Hyperparameters = SlimmingHyperparameters

    def __init__(self, hp: SlimmingHyperparameters | None = None) -> None:
        super().__init__(hp)
        self.s = self.hp.s
        # The held "masks" are the pruned channels per norm layer (True: pruned); applying them zeroes
        # those channels; the gradients stay unmasked (the channels are re-zeroed after every step).
        self.phase = MaskedFinetune(
            finetune_ratio=self.hp.finetune_ratio, apply=zero_channels_, mask_gradients=None, masks_key="dead"
        )

    steps = PHASE_STEPS
    fine_tuning = PHASE_FINE_TUNING

    @property
    def dead(self) -> DeadChannels:
        """``{norm fqn: bool tensor}``, True for a pruned channel (empty until the channels are pruned)."""
        return self.phase.masks

    def prepare(self, model: nn.Module, *, total_steps: int) -> None:
        super().prepare(model, total_steps=total_steps)
        self.s = self.hp.s_steps / (self.hp.lr * self.total_steps) if self.hp.s is None else self.hp.s

    @torch.no_grad()
    def before_step(self, model: nn.Module) -> None:
        if self.phase.before_step(model):
            return
        for _, norm, _ in norm_layers_with_producers(model):
            if norm.weight.grad is not None:
                norm.weight.grad.add_(self.s * torch.sign(norm.weight))

    def threshold(self, model: nn.Module) -> float:
        """Global ``sparsity_ratio`` quantile of all ``|gamma|``."""
        layers = norm_layers_with_producers(model)
        if not layers:
            raise ValueError("network slimming needs batch-norm layers with affine scales; the model has none")
        gammas = torch.cat([norm.weight.detach().abs().reshape(-1) for _, norm, _ in layers])
        return float(torch.quantile(gammas, self.hp.sparsity_ratio)) if self.hp.sparsity_ratio > 0 else -1.0

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        if not self.phase.after_step(model) and self.phase.due(self.total_steps):
            self.phase.start(model, self._choose_dead(model), reset_momentum=self.reset_momentum)

    @torch.no_grad()
    def finalize(self, model: nn.Module) -> None:
        self.phase.finalize(model, self._choose_dead)

    def _choose_dead(self, model: nn.Module) -> DeadChannels:
        """The channels at or below the global threshold, at most ``1 - min_keep_ratio`` per layer."""
        chosen: DeadChannels = {}
        threshold = self.threshold(model)
        for fqn, norm, producer in norm_layers_with_producers(model):
            magnitude = norm.weight.detach().abs()
            keep = max(1, math.ceil(self.hp.min_keep_ratio * magnitude.numel()))
            dead = magnitude <= threshold
            dead[magnitude.argsort(descending=True)[:keep]] = False
            if producer is None and dead.any():
                raise ValueError(f"cannot find the conv / linear layer producing {fqn!r}; cannot zero its channels")
            chosen[fqn] = dead
        return chosen

    def state_dict(self) -> dict[str, Any]:
        return self.phase.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.phase.load_state_dict(state)


@torch.no_grad()
def zero_channels_(model: nn.Module, dead: DeadChannels) -> None:
    """``gamma = beta = 0`` and the producing filter (and bias) zeroed for every pruned channel."""
    for fqn, norm, producer in norm_layers_with_producers(model):
        channels = dead.get(fqn)
        if channels is None:
            continue
        norm.weight[channels] = 0.0
        norm.bias[channels] = 0.0
        producer.weight[channels] = 0.0
        if producer.bias is not None:
            producer.bias[channels] = 0.0
