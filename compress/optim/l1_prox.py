"""Proximal-L1 SGD baseline: a gradient step, then the soft threshold on conv / linear weights.

Update (prox-SGD on ``f(w) + lam*||w||_1``):  ``w <- S_{lr*lam}(w - lr*g)``, with
``S_t(y) = sign(y) * max(|y| - t, 0)`` (Parikh & Boyd, Proximal Algorithms, 2014).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from compress.optim.method import LAYER_KINDS, Hyperparameters, TrainingMethod
from compress.regularizers import L1
from compress.selection import ParamSelector


@dataclass(frozen=True)
class L1ProxHyperparameters(Hyperparameters):
    """Attributes: ``lam`` (L1 weight lambda), ``layers`` (``"all"``, ``"conv"`` or ``"linear"``)."""

    lam: float = 1e-4
    layers: str = field(default="all", metadata={"choices": LAYER_KINDS})


class L1Prox(TrainingMethod):
    """Proximal-L1 SGD: momentum SGD step, then ``w <- S_{lr*lam}(w)`` on conv / linear weights."""

    name = "l1-prox"
    Hyperparameters = L1ProxHyperparameters

    def __init__(self, hp: L1ProxHyperparameters | None = None) -> None:
        super().__init__(hp)
        self.l1 = L1(strength=self.hp.lam, layers=ParamSelector(kinds=self.hp.layers))

    def after_step(self, model: nn.Module) -> None:
        self.l1.prox_(model, step=self.current_lr())
