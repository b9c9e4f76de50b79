"""Nonconvex sparse group lasso by relaxed splitting (Bui, Park, Zhang, Qi, Xin, Front. Appl. Math. Stat.
6:62, 2021; spec §4).

Objective (``N`` = training-set size, groups = output channels by default)::

    CE(W) + (1/N) sum_layers [ beta/2 ||W - U||^2 + lambda sqrt(|g|) sum_g ||W_g||_2 ],
    U = prox_{(lambda/beta) phi}(W),  phi in {l1, l0, tl1, l1-l2, scad}

Per mini-batch: a gradient step on the loss above (U fixed; group lasso through autograd), then
``U <- prox_{(lambda/beta) phi}(W)`` in closed form (spec §1.1-§1.4, §1.7). ``beta`` grows as
``beta0 * growth ** (epoch // every)``. ``finalize`` deploys ``W * 1{U != 0}``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from compress.hyperparameters import inherits_hyperparameters
from compress.optim.common import clone_tensors, load_tensors
from compress.optim.method import METHODS
from compress.optim.optimizer_choice import OptimizerChoiceMethod
from compress.prox.group import group_size
from compress.regularizers.elementwise import check_penalty, penalty_prox
from compress.regularizers.group_lasso import smooth_group_norm_sum
from compress.regularizers.schedules import StepGrowth
from compress.regularizers.selection import check_layers, selected_weights
from compress.regularizers.selection import group_axis as axis_index


@METHODS.register("sgl")
@inherits_hyperparameters
class SparseGroupLasso(OptimizerChoiceMethod):
    """Nonconvex sparse group lasso (paper 3).

    Args:
        lr: learning rate (Adam 1e-3 on MNIST in the reference).
        momentum: SGD momentum (ignored by Adam).
        weight_decay: optimizer weight decay.
        optimizer: ``"adam"`` or ``"sgd"``.
        penalty: ``"l1"``, ``"l0"``, ``"tl1"``, ``"l1-l2"`` or ``"scad"``.
        lam: ``lambda`` (0.1 in the reference, for every layer).
        beta: initial ``beta`` (2.5 on MNIST).
        beta_growth: factor applied to ``beta`` every ``beta_every`` epochs (1.25).
        beta_every: epochs between beta growths (40).
        num_train: ``N`` of the ``1/N`` normalisation (60000 for MNIST).
        a: TL1 ``a`` (1.0) or SCAD ``a`` (use 3.7 for SCAD).
        alpha: weight of the L2 term in L1 - alpha L2.
        group_axis: ``"output"`` channels (paper-3 conv groups) or ``"input"``.
        layers: ``"all"``, ``"conv"`` or ``"linear"``.
    """

    name = "sgl"

    def __init__(
        self,
        *,
        penalty: str = "tl1",
        lam: float = 0.1,
        beta: float = 2.5,
        beta_growth: float = 1.25,
        beta_every: int = 40,
        num_train: int = 60000,
        a: float = 1.0,
        alpha: float = 1.0,
        group_axis: str = "output",
        layers: str = "all",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if penalty == "scad" and a <= 2:
            raise ValueError(f"SCAD needs a > 2 (e.g. 3.7), got a={a}")
        if lam < 0 or beta <= 0 or num_train < 1:
            raise ValueError(f"need lam >= 0, beta > 0, num_train >= 1; got {lam}, {beta}, {num_train}")
        self.penalty_name = check_penalty(penalty)
        self.lam = lam
        self.beta_schedule = StepGrowth(initial=beta, factor=beta_growth, every=beta_every)
        self.num_train = num_train
        self.a = a
        self.alpha = alpha
        self.axis = axis_index(group_axis)
        self.layers = check_layers(layers)
        self.u: dict[str, torch.Tensor] = {}
        self.epoch = 0

    @property
    def beta(self) -> float:
        return self.beta_schedule(self.epoch)

    def _prox(self, weight: torch.Tensor) -> torch.Tensor:
        return penalty_prox(weight, self.lam / self.beta, penalty=self.penalty_name, a=self.a, alpha=self.alpha)

    @torch.no_grad()
    def _refresh_u(self, model: nn.Module) -> None:
        for fqn, weight in selected_weights(model, layers=self.layers):
            self.u[fqn] = self._prox(weight)

    def penalty(self, model: nn.Module) -> torch.Tensor | float:
        if not self.u:
            self._refresh_u(model)
        total = 0.0
        for fqn, weight in selected_weights(model, layers=self.layers):
            coupling = 0.5 * self.beta * (weight - self.u[fqn]).pow(2).sum()
            size = math.sqrt(group_size(weight, axis=self.axis))
            total = total + coupling + self.lam * size * smooth_group_norm_sum(weight, axis=self.axis)
        return total / self.num_train

    def after_step(self, model: nn.Module) -> None:
        self._refresh_u(model)

    def on_epoch_end(self, model: nn.Module, *, epoch: int) -> None:
        self.epoch = epoch + 1

    @torch.no_grad()
    def finalize(self, model: nn.Module) -> None:
        self._refresh_u(model)
        for fqn, weight in selected_weights(model, layers=self.layers):
            weight.mul_(self.u[fqn].ne(0).to(weight.dtype))

    def state_dict(self) -> dict[str, Any]:
        return {"u": clone_tensors(self.u), "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.u = load_tensors(state, "u")
        self.epoch = int(state["epoch"])
