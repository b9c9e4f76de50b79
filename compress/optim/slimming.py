"""Network slimming: L1 on batch-norm scales, then channel pruning (Liu, Li, Shen, Huang, Yan, Zhang,
"Learning efficient convolutional networks through network slimming", ICCV 2017; spec §6.3).

Training: ``L = CE + s sum |gamma|`` via the subgradient ``gamma.grad += s * sign(gamma)`` after backward.
``finalize``: the global threshold is the ``prune_ratio`` quantile of all ``|gamma|``; every channel with
``|gamma| <= threshold`` gets ``gamma = beta = 0`` and the filter (and bias) of the conv / linear layer
that produces it zeroed, so the channel's output is exactly 0 and ``stats.channel_sparsity`` counts it.

The producing layer of a norm layer is the nearest preceding conv / linear module (definition order)
whose output width equals the norm's ``num_features`` (true for conv-bn-relu stacks).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from compress.optim.method import Hyperparameters, TrainingMethod, check_ratio
from compress.prune.dead_channels import norm_layers_with_producers


@dataclass(frozen=True)
class SlimmingHyperparameters(Hyperparameters):
    """Attributes: ``lr`` (0.1 in the reference, for training from scratch; 0.01 fine-tunes a trained
    model), ``weight_decay`` (1e-4 in the reference), ``s`` (L1 weight on BN scales: 1e-4 VGG, 1e-5
    ResNet in the reference's 160-epoch runs; ``None``: ``s_steps / (lr * T)``, ours: a BN scale is
    pulled toward 0 by up to ``s * lr * T`` in total, 0.4 by default), ``prune_ratio`` (fraction of all
    BN channels to prune in ``finalize``, a global quantile of ``|gamma|``)."""

    lr: float = 0.01
    weight_decay: float = 1e-4
    s: float | None = None
    s_steps: float = 0.4
    prune_ratio: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not ((self.s is None or self.s >= 0) and self.s_steps >= 0):
            raise ValueError(f"s and s_steps must be >= 0, got {self.s}, {self.s_steps}")
        check_ratio("prune_ratio", self.prune_ratio)


class NetworkSlimming(TrainingMethod):
    """Sparsity on BN scales, then global-threshold channel pruning."""

    name = "slimming"
    Hyperparameters = SlimmingHyperparameters

    def prepare(self, model: nn.Module, *, total_steps: int) -> None:
        super().prepare(model, total_steps=total_steps)
        self.s = self.hp.s_steps / (self.hp.lr * self.total_steps) if self.hp.s is None else self.hp.s

    @torch.no_grad()
    def before_step(self, model: nn.Module) -> None:
        for _, norm, _ in norm_layers_with_producers(model):
            if norm.weight.grad is not None:
                norm.weight.grad.add_(self.s * torch.sign(norm.weight))

    def threshold(self, model: nn.Module) -> float:
        """Global ``prune_ratio`` quantile of all ``|gamma|``."""
        layers = norm_layers_with_producers(model)
        if not layers:
            raise ValueError("network slimming needs batch-norm layers with affine scales; the model has none")
        gammas = torch.cat([norm.weight.detach().abs().reshape(-1) for _, norm, _ in layers])
        return float(torch.quantile(gammas, self.hp.prune_ratio)) if self.hp.prune_ratio > 0 else -1.0

    @torch.no_grad()
    def finalize(self, model: nn.Module) -> None:
        threshold = self.threshold(model)
        for fqn, norm, producer in norm_layers_with_producers(model):
            dead = norm.weight.abs() <= threshold
            if dead.all():  # never remove a whole layer: keep its strongest channel
                dead[norm.weight.abs().argmax()] = False
            if producer is None and dead.any():
                raise ValueError(f"cannot find the conv / linear layer producing {fqn!r}; cannot zero its channels")
            norm.weight[dead] = 0.0
            norm.bias[dead] = 0.0
            if producer is not None:
                producer.weight[dead] = 0.0
                if producer.bias is not None:
                    producer.bias[dead] = 0.0
