"""RGSM: relaxed group-wise splitting for channel sparsity (Yang, Lyu, Zhang, Qi, Xin 2019; used by
Dinh et al., "Sparsity meets robustness", arXiv 2003.00631).

Objective ``f(w) + lambda2 sum_g ||w_g||_2 + lambda1 #{g: u_g != 0} + beta/2 ||w - u||^2``; groups are
input channels (``W[:, i, ...]``, the reference) or output channels. Per mini-batch::

    loss = f(w) + lambda2 * sum_g sqrt(||w_g||^2 + 1e-8)       (group lasso through autograd, penalty())
    w <- w - lr * beta * (w - u)                               (coupling)
    w <- SGD-Nesterov-step(w, grad loss + wd w)
    u <- group-hard-threshold(w, sqrt(2 lambda1 / beta))       (the group-L0 prox)

and at each epoch end ``w <- u`` (the reference swaps in the group-sparse copy) with a momentum reset.

Per-layer thresholds (ours, the default): one ``sqrt(2 lambda1 / beta)`` for every layer either does
nothing or zeroes a whole layer when the layers' median group norms range from 0.18 to 4.16 (LeNet-5
trained on MNIST). With ``relative_threshold`` set, layer ``l`` is cut at ``relative_threshold *
median_g ||W_{l,g}||`` (group norms measured when training starts) instead. Output channels are the
default groups (the reference uses input channels): a zeroed filter is a channel the prune stage removes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from compress.optim.method import TrainingMethod
from compress.optim.splitting import SplittingHyperparameters, SplitVariable
from compress.prox.group import GROUP_AXES, group_norms
from compress.regularizers import GroupL0, GroupLasso
from compress.selection import ParamSelector


@dataclass(frozen=True)
class RGSMHyperparameters(SplittingHyperparameters):
    """Attributes: ``lam1`` (group-L0 weight, reference 1e-2), ``lam2`` (group-lasso weight,
    reference 1e-5), ``beta`` (reference 1), ``group_axis`` (``"output"``, ``"input"`` (the
    reference), or ``"block"``: 16x1 row blocks, the blocks the compiled kernels skip),
    ``relative_threshold`` (per-layer cut as a fraction of the layer's median group norm;
    ``None``: the reference's ``sqrt(2 lambda1 / beta)`` for every layer; 0.8 removed a third of
    LeNet-5's channels at no loss in 1,800 steps, 1.0 collapsed LeNet-300-100)."""

    beta: float = 1.0
    lam1: float = 1e-2
    lam2: float = 1e-5
    group_axis: str = field(default="output", metadata={"choices": tuple(GROUP_AXES)})
    relative_threshold: float | None = 0.8

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.lam1 >= 0 and self.lam2 >= 0):
            raise ValueError(f"lam1 and lam2 must be >= 0, got {self.lam1}, {self.lam2}")
        if self.relative_threshold is not None and not self.relative_threshold >= 0:
            raise ValueError(f"relative_threshold must be >= 0 or None, got {self.relative_threshold}")


class RGSM(TrainingMethod):
    """Relaxed group-wise splitting (channel sparsity)."""

    name = "rgsm"
    Hyperparameters = RGSMHyperparameters

    def __init__(self, hp: RGSMHyperparameters | None = None) -> None:
        super().__init__(hp)
        layers = ParamSelector(kinds=self.hp.layers)
        self.group_l0 = GroupL0(strength=self.hp.lam1, layers=layers, axis=self.hp.group_axis)
        self.group_lasso = GroupLasso(strength=self.hp.lam2, layers=layers, axis=self.hp.group_axis)
        self.split = SplitVariable(self.threshold, layers)
        self.cuts: dict[str, float] = {}

    def prepare(self, model: nn.Module, *, total_steps: int) -> None:
        super().prepare(model, total_steps=total_steps)
        if self.hp.relative_threshold is not None:
            axis = GROUP_AXES[self.hp.group_axis]
            self.cuts = {
                fqn: self.hp.relative_threshold * float(group_norms(weight.detach(), axis=axis).median())
                for fqn, weight in self.split.layers.weights(model)
            }

    def threshold(self, fqn: str, weight: torch.Tensor) -> torch.Tensor:
        """``u = prox_{(lambda1 / beta) group-L0}(w)``: groups with ``||w_g|| <= sqrt(2 lambda1 / beta)``
        (or the layer's relative cut) become 0."""
        if fqn in self.cuts:
            return self.group_l0.prox(weight, self.cuts[fqn] ** 2 / 2)
        return self.group_l0.prox(weight, self.hp.lam1 / self.hp.beta)

    def penalty(self, model: nn.Module) -> torch.Tensor | float:
        return self.group_lasso.penalty(model)

    def before_step(self, model: nn.Module) -> None:
        self.split.couple_(model, step=self.current_lr() * self.hp.beta)

    def after_step(self, model: nn.Module) -> None:
        self.split.refresh(model)

    def on_epoch_end(self, model: nn.Module, *, epoch: int) -> None:
        self.split.overwrite_(model)
        if self.hp.reset_momentum_each_epoch:
            self.reset_momentum()

    def finalize(self, model: nn.Module) -> None:
        self.split.overwrite_(model)

    def state_dict(self) -> dict[str, Any]:
        return {**self.split.state_dict(), "cuts": dict(self.cuts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.split.load_state_dict(state)
        self.cuts = {str(fqn): float(cut) for fqn, cut in state.get("cuts", {}).items()}
