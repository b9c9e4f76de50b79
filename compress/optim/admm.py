"""ADMM weight pruning with a masked-retrain phase (Zhang et al., ECCV 2018; Ren et al., ADMM-NN, ASPLOS 2019).

Problem ``min_W f(W)  s.t.  card(W_l) <= k_l``. Scaled-dual ADMM::

    W-step: SGD/Adam on  f(W) + sum_l rho/2 ||W_l - Z_l + U_l||^2          (penalty(), every batch)
    Z-step: Z_l <- Pi_{k_l}(W_l + U_l)      (top-|.| elements, or top-norm channels)
    U-step: U_l <- U_l + W_l - Z_l
    rho <- rho * rho_growth after every Z/U update

Z and U are updated every ``z_update_interval`` optimizer steps (0: at each epoch end). After
``admm_epochs`` epochs W is hard-pruned to ``supp(Z)`` and training continues as masked retraining
(gradients and weights multiplied by the fixed mask). ``finalize`` hard-prunes to ``supp(Z)``.
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
from compress.prox.cardinality import CARDINALITY_MODES, cardinality_mask
from compress.prox.group import CHANNEL_AXES, group_axis
from compress.selection import ParamSelector


@dataclass(frozen=True)
class ADMMHyperparameters(Hyperparameters):
    """Attributes:
        lr, optimizer: Adam at 1e-3 as the reference LeNet code (or ``optimizer="sgd"``).
        sparsity_ratio: fraction of entries (or channels) of every selected weight to prune.
        layer_sparsity: optional ``{fqn: ratio}`` overriding ``sparsity_ratio`` per weight.
        mode: ``"element"`` or ``"channel"``.
        group_axis: channels pruned in channel mode, ``"input"`` (the reference code's) or ``"output"``.
        rho: augmented-Lagrangian penalty.
        rho_growth: multiplicative growth of ``rho`` after every Z/U update (1 = constant).
        z_update_interval: optimizer steps between Z/U updates; 0 = at each epoch end.
        admm_epochs: epochs of ADMM before switching to masked retraining.
        layers: ``"all"``, ``"conv"`` (the reference code's) or ``"linear"``.
    """

    lr: float = 1e-3
    optimizer: str = field(default="adam", metadata={"choices": ("sgd", "adam")})
    sparsity_ratio: float = 0.9
    layer_sparsity: dict[str, float] | None = None
    mode: str = field(default="element", metadata={"choices": CARDINALITY_MODES})
    group_axis: str = field(default="input", metadata={"choices": tuple(CHANNEL_AXES)})
    rho: float = 1e-2
    rho_growth: float = 1.0
    z_update_interval: int = 0
    admm_epochs: int = 10
    layers: str = field(default="all", metadata={"choices": LAYER_KINDS})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.z_update_interval < 0 or self.admm_epochs < 0:
            raise ValueError(f"z_update_interval and admm_epochs must be >= 0, got {self.z_update_interval}, {self.admm_epochs}")
        check_ratio("sparsity_ratio", self.sparsity_ratio)
        for fqn, ratio in (self.layer_sparsity or {}).items():
            check_ratio(f"layer_sparsity[{fqn!r}]", ratio)


class ADMM(TrainingMethod):
    """ADMM cardinality-constrained training, then masked retraining."""

    name = "admm"
    Hyperparameters = ADMMHyperparameters

    def __init__(self, hp: ADMMHyperparameters | None = None) -> None:
        super().__init__(hp)
        self.layers = ParamSelector(kinds=self.hp.layers)
        self.axis = group_axis(self.hp.group_axis)
        self.layer_sparsity = dict(self.hp.layer_sparsity or {})
        self.rho = self.hp.rho
        self.z: dict[str, torch.Tensor] = {}
        self.u: dict[str, torch.Tensor] = {}
        self.phase = MaskedFinetune()  # switched by on_epoch_end after admm_epochs epochs

    steps = PHASE_STEPS
    fine_tuning = PHASE_FINE_TUNING

    def prepare(self, model: nn.Module, *, total_steps: int) -> None:
        super().prepare(model, total_steps=total_steps)
        self._check_fqns(model)

    def _check_fqns(self, model: nn.Module) -> None:
        known = {fqn for fqn, _ in self.layers.weights(model)}
        unknown = sorted(set(self.layer_sparsity) - known)
        if unknown:
            raise ValueError(f"layer_sparsity names unknown weights {unknown}; allowed: {sorted(known)}")

    def _mask(self, fqn: str, tensor: torch.Tensor) -> torch.Tensor:
        ratio = self.layer_sparsity.get(fqn, self.hp.sparsity_ratio)
        return cardinality_mask(tensor, sparsity_ratio=ratio, mode=self.hp.mode, axis=self.axis)

    @torch.no_grad()
    def _init_z_u(self, model: nn.Module) -> None:
        """``Z_0 = Pi(W_0)``, ``U_0 = 0``."""
        for fqn, weight in self.layers.weights(model):
            self.z[fqn] = weight * self._mask(fqn, weight).to(weight.dtype)
            self.u[fqn] = torch.zeros_like(weight)

    @torch.no_grad()
    def _update_z_u(self, model: nn.Module) -> None:
        for fqn, weight in self.layers.weights(model):
            u = self.u.setdefault(fqn, torch.zeros_like(weight))
            shifted = weight + u
            z = shifted * self._mask(fqn, shifted).to(weight.dtype)
            self.z[fqn] = z
            self.u[fqn] = u + weight - z
        self.rho *= self.hp.rho_growth

    def penalty(self, model: nn.Module) -> torch.Tensor | float:
        if self.fine_tuning:
            return 0.0
        if not self.z:
            self._init_z_u(model)
        total = 0.0
        for fqn, weight in self.layers.weights(model):
            total = total + (weight - self.z[fqn] + self.u[fqn]).pow(2).sum()
        return 0.5 * self.rho * total

    @torch.no_grad()
    def before_step(self, model: nn.Module) -> None:
        self.phase.before_step(model)

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        if self.phase.after_step(model):
            return
        if self.hp.z_update_interval and self.steps % self.hp.z_update_interval == 0:
            self._update_z_u(model)

    @torch.no_grad()
    def on_epoch_end(self, model: nn.Module, *, epoch: int) -> None:
        if self.fine_tuning:
            return
        if not self.hp.z_update_interval:
            self._update_z_u(model)
        if epoch + 1 >= self.hp.admm_epochs:
            self._start_retraining(model)

    def _start_retraining(self, model: nn.Module) -> None:
        """Hard-prune to ``supp(Z)`` and retrain under that mask."""
        if not self.z:
            self._init_z_u(model)
        masks = {fqn: z.ne(0).to(z.dtype) for fqn, z in self.z.items()}
        self.phase.start(model, masks, reset_momentum=self.reset_momentum)

    @torch.no_grad()
    def finalize(self, model: nn.Module) -> None:
        if not self.fine_tuning:
            self._start_retraining(model)
        self.phase.apply(model)

    def state_dict(self) -> dict[str, Any]:
        return {"z": clone_tensors(self.z), "u": clone_tensors(self.u), "rho": self.rho, **self.phase.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.z = load_tensors(state, "z")
        self.u = load_tensors(state, "u")
        self.rho = float(state["rho"])
        self.phase.load_state_dict(state)
