"""BinaryRelax (Yin, Zhang, Lyu, Osher, Qi, Xin, "BinaryRelax: A Relaxation Approach for Training Deep
Neural Networks with Quantized Weights", SIIMS 2018).

Phase I (the first ``exact_after_ratio`` of the training steps, rounded up to an epoch boundary)::

    u = (eta * Pi_Q(w) + w) / (1 + eta)      forward / backward with u
    w <- w - lr * grad f(u)                  (the gradient at u is applied to w)
    eta <- eta * rho                         after every epoch: eta_e = eta0 * rho^e

Phase II: ``u = Pi_Q(w)`` exactly (same update of ``w``). Deploy: ``Pi_Q(w)``.

Growth from the budget (ours, the default): the paper's ``rho = 1.04`` per epoch takes 150 epochs to
reach ``eta = 360``; over a 2-epoch fine-tune it leaves ``eta`` near 1, so phase II jumps from a
half-relaxed weight to the projection. Unless ``rho`` is given, ``eta`` grows geometrically per step,
``eta_t = eta0 * (eta_end / eta0) ** (t / T1)`` over the ``T1`` steps of phase I, so the relaxed weight
is within ``1 / (1 + eta_end)`` of ``Pi_Q(w)`` when the exact projection takes over.
``Q`` is binary, exact ternary or TWN ternary (``target``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from compress.quant.method import QuantHyperparameters, QuantMethod
from compress.quant.ste import ProjectedWeight

RELAX_TARGETS = ("binary", "ternary", "twn")


def relax_eta(epoch: int, *, eta0: float, rho: float) -> float:
    """The continuation schedule ``eta_e = eta0 * rho^e`` (``epoch`` counts finished epochs)."""
    return eta0 * rho**epoch


@dataclass(frozen=True)
class BinaryRelaxHyperparameters(QuantHyperparameters):
    """Attributes:
        target: the quantized set ``Q``: ``"binary"``, ``"ternary"`` (exact) or ``"twn"``.
        eta0: initial relaxation weight (paper code: 1).
        rho: per-epoch growth of ``eta`` (paper code: 1.04), ``>= 1``; ``None``: per-step growth to ``eta_end``.
        eta_end: ``eta`` at the end of phase I when ``rho`` is ``None``.
        exact_after_ratio: fraction of the run's steps after which phase II starts (paper code:
            150 of 200 epochs = 0.75), checked at epoch ends.
    """

    target: str = field(default="binary", metadata={"choices": RELAX_TARGETS})
    eta0: float = 1.0
    rho: float | None = None
    eta_end: float = 100.0
    exact_after_ratio: float = 0.75

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.eta0 > 0 and (self.rho is None or self.rho >= 1) and self.eta_end >= self.eta0):
            raise ValueError(
                f"BinaryRelax needs eta0 > 0, rho >= 1 (or none), eta_end >= eta0; got {self.eta0}, {self.rho}, {self.eta_end}"
            )
        if not 0 <= self.exact_after_ratio <= 1:
            raise ValueError(f"exact_after_ratio must be in [0, 1], got {self.exact_after_ratio}")


class BinaryRelax(QuantMethod):
    """BinaryRelax training."""

    name = "binary-relax"
    Hyperparameters = BinaryRelaxHyperparameters

    def __init__(self, hp: BinaryRelaxHyperparameters | None = None) -> None:
        super().__init__(hp)
        self.steps = 0
        self.epochs = 0
        self.exact = False

    def make_parametrization(self, weight: torch.Tensor, mask: torch.Tensor) -> nn.Module:
        return ProjectedWeight(projection=self.hp.target, mask=mask, per_channel=self.hp.per_channel)

    def current_eta(self) -> float | None:
        """``eta`` now, or ``None`` in phase II (exact projection)."""
        if self.exact:
            return None
        if self.hp.rho is not None:
            return relax_eta(self.epochs, eta0=self.hp.eta0, rho=self.hp.rho)
        phase_one = max(self.hp.exact_after_ratio * self.total_steps, 1.0)
        return self.hp.eta0 * (self.hp.eta_end / self.hp.eta0) ** min(self.steps / phase_one, 1.0)

    def prepare(self, model: nn.Module, *, total_steps: int) -> None:
        super().prepare(model, total_steps=total_steps)
        self.exact = self.exact or self.hp.exact_after_ratio == 0
        self._apply_eta(model)

    def after_step(self, model: nn.Module) -> None:
        super().after_step(model)
        self.steps += 1
        if self.hp.rho is None and not self.exact:
            self._apply_eta(model)

    def on_epoch_end(self, model: nn.Module, *, epoch: int) -> None:
        self.epochs = epoch + 1
        if self.steps >= math.ceil(self.hp.exact_after_ratio * self.total_steps):
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
