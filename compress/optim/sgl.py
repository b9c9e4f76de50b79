"""Nonconvex sparse group lasso by relaxed splitting (Bui, Park, Zhang, Qi, Xin, Front. Appl. Math. Stat.
6:62, 2021).

Objective (``N`` = training-set size, groups = output channels by default)::

    CE(W) + (1/N) sum_layers [ beta/2 ||W - U||^2 + lambda sqrt(|g|) sum_g ||W_g||_2 ],
    U = prox_{(lambda/beta) phi}(W),  phi in {l1, l0, tl1, l1-l2, scad}

Per mini-batch: a gradient step on the loss above (U fixed; group lasso through autograd), then
``U <- prox_{(lambda/beta) phi}(W)`` in closed form. ``beta`` grows as
``beta0 * growth ** (epoch // every)`` (the paper: every 40 of 200+ epochs) or, by default (ours),
``beta0 * growth ** floor(4 t / T)``: four growths spread over the run's ``T`` steps whatever its length.

Masked fine-tune (ours; the paper's deployed ``W * 1{U != 0}`` lost 31 points after a short run):
for the last ``finetune_ratio`` of the steps the support is frozen at ``1{U != 0}``, the penalty is
off and the surviving weights train with the plain loss (gradients and weights masked), as ADMM's
masked retraining. ``finalize`` deploys ``W * 1{U != 0}`` (or the frozen mask).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from compress.optim.masked_finetune import MaskedFinetune, PHASE_FINE_TUNING, PHASE_STEPS
from compress.optim.method import (
    LAYER_KINDS,
    Hyperparameters,
    TrainingMethod,
    check_ratio,
    clone_tensors,
    load_tensors,
)
from compress.prox.group import GROUP_AXES
from compress.prune.masks import Masks
from compress.regularizers import ELEMENTWISE, GroupLasso, elementwise_penalty
from compress.regularizers.schedules import StepGrowth
from compress.selection import ParamSelector


@dataclass(frozen=True)
class SGLHyperparameters(Hyperparameters):
    """Attributes:
        lr, optimizer: Adam at 1e-3 on MNIST in the reference (or ``optimizer="sgd"``).
        penalty: ``"l1"``, ``"l0"``, ``"tl1"``, ``"l1-l2"`` or ``"scad"``.
        lam: ``lambda`` (0.1 in the reference, for every layer; 0.2 here, with the masked fine-tune:
            76.5x on LeNet-5 at -0.24 points in 1,800 steps from a 99.22% start, ``benchmarks/sparse_training.md``).
        beta: initial ``beta`` (2.5 on MNIST).
        beta_growth: factor applied to ``beta`` every ``beta_every`` epochs (1.25).
        beta_every: epochs between beta growths (40).
        num_train: ``N`` of the ``1/N`` normalisation (60000 for MNIST).
        a: TL1 ``a`` (1.0) or SCAD ``a`` (use 3.7 for SCAD).
        alpha: weight of the L2 term in L1 - alpha L2.
        group_axis: ``"output"`` channels (the paper's conv groups), ``"input"``, or ``"block"`` (16x1
            row blocks, the blocks the compiled kernels skip).
        layers: ``"all"``, ``"conv"`` or ``"linear"``.
    """

    lr: float = 1e-3
    optimizer: str = field(default="adam", metadata={"choices": ("sgd", "adam")})
    penalty: str = field(default="tl1", metadata={"choices": ELEMENTWISE})
    lam: float = 0.2
    beta: float = 2.5
    beta_growth: float = 1.25
    beta_every: int | None = None
    finetune_ratio: float = 0.25
    num_train: int = 60000
    a: float = 1.0
    alpha: float = 1.0
    group_axis: str = field(default="output", metadata={"choices": tuple(GROUP_AXES)})
    layers: str = field(default="all", metadata={"choices": LAYER_KINDS})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.lam >= 0 and self.beta > 0 and self.num_train >= 1):
            raise ValueError(f"need lam >= 0, beta > 0, num_train >= 1; got {self.lam}, {self.beta}, {self.num_train}")
        if self.beta_every is not None and self.beta_every < 1:
            raise ValueError(f"beta_every must be >= 1 or None, got {self.beta_every}")
        check_ratio("finetune_ratio", self.finetune_ratio)


class SparseGroupLasso(TrainingMethod):
    """Nonconvex sparse group lasso by relaxed splitting (Bui et al., 2021), then a masked fine-tune."""

    name = "sgl"
    Hyperparameters = SGLHyperparameters

    def __init__(self, hp: SGLHyperparameters | None = None) -> None:
        super().__init__(hp)
        hp = self.hp
        self.layers = ParamSelector(kinds=hp.layers)
        self.sparse = elementwise_penalty(hp.penalty, strength=hp.lam, a=hp.a, alpha=hp.alpha, layers=self.layers)
        self.group_lasso = GroupLasso(strength=hp.lam, layers=self.layers, axis=hp.group_axis, scale_by_size=True)
        self.u: dict[str, torch.Tensor] = {}
        self.epoch = 0
        self.phase = MaskedFinetune(finetune_ratio=hp.finetune_ratio)

    steps = PHASE_STEPS
    fine_tuning = PHASE_FINE_TUNING

    @property
    def beta(self) -> float:
        if self.hp.beta_every is not None:
            return StepGrowth(initial=self.hp.beta, factor=self.hp.beta_growth, every=self.hp.beta_every)(self.epoch)
        return self.hp.beta * self.hp.beta_growth ** min(4 * self.steps // self.total_steps, 3)

    @torch.no_grad()
    def _refresh_u(self, model: nn.Module) -> None:
        """``U = prox_{(lambda / beta) phi}(W)``."""
        for fqn, weight in self.layers.weights(model):
            self.u[fqn] = self.sparse.prox(weight, self.hp.lam / self.beta)

    def penalty(self, model: nn.Module) -> torch.Tensor | float:
        if self.fine_tuning:
            return 0.0
        if not self.u:
            self._refresh_u(model)
        coupling = sum(0.5 * self.beta * (weight - self.u[fqn]).pow(2).sum() for fqn, weight in self.layers.weights(model))
        return (coupling + self.group_lasso.penalty(model)) / self.hp.num_train

    @torch.no_grad()
    def before_step(self, model: nn.Module) -> None:
        self.phase.before_step(model)

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        if self.phase.after_step(model):
            return
        self._refresh_u(model)
        if self.phase.due(self.total_steps):
            self.phase.start(model, self._support_masks(model), reset_momentum=self.reset_momentum)

    def on_epoch_end(self, model: nn.Module, *, epoch: int) -> None:
        self.epoch = epoch + 1

    @torch.no_grad()
    def finalize(self, model: nn.Module) -> None:
        self.phase.finalize(model, self._support_masks)

    def _support_masks(self, model: nn.Module) -> Masks:
        """``1{U != 0}`` of the current weights (the deployed support)."""
        self._refresh_u(model)
        return {fqn: self.u[fqn].ne(0).to(weight.dtype) for fqn, weight in self.layers.weights(model)}

    def state_dict(self) -> dict[str, Any]:
        return {"u": clone_tensors(self.u), "epoch": self.epoch, **self.phase.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.u = load_tensors(state, "u")
        self.epoch = int(state["epoch"])
        self.phase.load_state_dict(state)
