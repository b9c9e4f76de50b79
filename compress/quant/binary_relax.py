"""BinaryRelax (Yin, Zhang, Lyu, Osher, Qi, Xin, "BinaryRelax: A Relaxation Approach for Training Deep
Neural Networks with Quantized Weights", SIIMS 2018; spec §6.7).

Phase I (the first ``exact_after_ratio`` of the training steps, rounded up to an epoch boundary)::

    u = (eta * Pi_Q(w) + w) / (1 + eta)      forward / backward with u
    w <- w - lr * grad f(u)                  (the gradient at u is applied to w)
    eta <- eta * rho                         after every epoch: eta_e = eta0 * rho^e

Phase II: ``u = Pi_Q(w)`` exactly (same update of ``w``). Deploy: ``Pi_Q(w)``.
``Q`` is binary, exact ternary or TWN ternary (``target``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from compress.hyperparameters import inherits_hyperparameters
from compress.quant.method import QUANT_METHODS, QuantMethod
from compress.quant.straight_through import ProjectedWeight

RELAX_TARGETS = ("binary", "ternary", "twn")


def relax_eta(epoch: int, *, eta0: float, rho: float) -> float:
    """The continuation schedule ``eta_e = eta0 * rho^e`` (``epoch`` counts finished epochs)."""
    return eta0 * rho**epoch


@QUANT_METHODS.register("binary-relax")
@inherits_hyperparameters
class BinaryRelax(QuantMethod):
    """BinaryRelax training.

    Args:
        target: the quantized set ``Q``: ``"binary"``, ``"ternary"`` (exact) or ``"twn"``.
        eta0: initial relaxation weight (paper code: 1).
        rho: per-epoch growth of ``eta`` (paper code: 1.04), ``> 1``.
        exact_after_ratio: fraction of ``total_steps`` after which phase II starts (paper code:
            150 of 200 epochs = 0.75), checked at epoch ends.
        Other arguments as in ``QuantMethod``.
    """

    name = "binary-relax"

    def __init__(
        self,
        *,
        target: str = "binary",
        eta0: float = 1.0,
        rho: float = 1.04,
        exact_after_ratio: float = 0.75,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if target not in RELAX_TARGETS:
            raise ValueError(f"unknown BinaryRelax target {target!r}; allowed: {', '.join(RELAX_TARGETS)}")
        if eta0 <= 0 or rho < 1:
            raise ValueError(f"BinaryRelax needs eta0 > 0 and rho >= 1, got eta0={eta0}, rho={rho}")
        if not 0 <= exact_after_ratio <= 1:
            raise ValueError(f"exact_after_ratio must be in [0, 1], got {exact_after_ratio}")
        self.target, self.eta0, self.rho, self.exact_after_ratio = target, eta0, rho, exact_after_ratio
        self.total_steps = 0
        self.steps = 0
        self.epochs = 0
        self.exact = False

    def make_parametrization(self, weight: torch.Tensor, mask: torch.Tensor) -> nn.Module:
        return ProjectedWeight(projection=self.target, mask=mask, per_channel=self.per_channel)

    def current_eta(self) -> float | None:
        """``eta`` of the running epoch, or ``None`` in phase II (exact projection)."""
        return None if self.exact else relax_eta(self.epochs, eta0=self.eta0, rho=self.rho)

    def build_optimizer(self, model: nn.Module, *, total_steps: int) -> torch.optim.Optimizer:
        self.total_steps = total_steps
        self.exact = self.exact or self.exact_after_ratio == 0
        optimizer = super().build_optimizer(model, total_steps=total_steps)
        self._apply_eta(model)
        return optimizer

    def after_step(self, model: nn.Module) -> None:
        super().after_step(model)
        self.steps += 1

    def on_epoch_end(self, model: nn.Module, *, epoch: int) -> None:
        self.epochs = epoch + 1
        if self.steps >= math.ceil(self.exact_after_ratio * self.total_steps):
            self.exact = True
        self._apply_eta(model)

    def _apply_eta(self, model: nn.Module) -> None:
        eta = self.current_eta()
        for _, parametrization in self.parametrizations(model):
            parametrization.set_relax_eta(eta)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(total_steps=self.total_steps, steps=self.steps, epochs=self.epochs, exact=self.exact)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.total_steps = int(state.get("total_steps", 0))
        self.steps = int(state.get("steps", 0))
        self.epochs = int(state.get("epochs", 0))
        self.exact = bool(state.get("exact", False))
