"""Proximal-L1 SGD baseline: a gradient step, then the soft threshold on conv / linear weights.

Update (prox-SGD on ``f(w) + lam*||w||_1``):  ``w <- S_{lr*lam}(w - lr*g)``, with
``S_t(y) = sign(y) * max(|y| - t, 0)`` (Parikh & Boyd, Proximal Algorithms, 2014).

Default strength from the step budget (ours): over ``T`` steps a weight is shrunk by up to
``lam * lr * T`` in total, so unless ``lam`` is given ``lam = lam_steps / (lr * T)`` with
``lam_steps = 0.04`` (a total shrink of 0.04, the size of most LeNet-5 weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from compress.optim.method import LAYER_KINDS, Hyperparameters, TrainingMethod
from compress.regularizers import L1
from compress.selection import ParamSelector


@dataclass(frozen=True)
class L1ProxHyperparameters(Hyperparameters):
    """Attributes: ``lam`` (L1 weight lambda; ``None``: ``lam_steps / (lr * T)``), ``lam_steps`` (the
    total shrink ``lam * lr * T``), ``layers`` (``"all"``, ``"conv"`` or ``"linear"``)."""

    lam: float | None = None
    lam_steps: float = 0.04
    layers: str = field(default="all", metadata={"choices": LAYER_KINDS})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not ((self.lam is None or self.lam >= 0) and self.lam_steps >= 0):
            raise ValueError(f"lam and lam_steps must be >= 0, got {self.lam}, {self.lam_steps}")


class L1Prox(TrainingMethod):
    """Proximal-L1 SGD: momentum SGD step, then ``w <- S_{lr*lam}(w)`` on conv / linear weights."""

    name = "l1-prox"
    Hyperparameters = L1ProxHyperparameters

    def prepare(self, model: nn.Module, *, total_steps: int) -> None:
        super().prepare(model, total_steps=total_steps)
        lam = self.hp.lam_steps / (self.hp.lr * self.total_steps) if self.hp.lam is None else self.hp.lam
        self.l1 = L1(strength=lam, layers=ParamSelector(kinds=self.hp.layers))

    def after_step(self, model: nn.Module) -> None:
        self.l1.prox_(model, step=self.current_lr())
