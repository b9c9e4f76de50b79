"""Sparsity penalties on individual weights: L1, L0, transformed L1, L1-L2 (per tensor) and SCAD."""

from __future__ import annotations

import torch

from compress.prox.hard import prox_l0
from compress.prox.l1_l2 import l1_minus_l2_penalty, prox_l1_minus_l2
from compress.prox.scad import prox_scad, scad_penalty
from compress.prox.soft import soft_threshold
from compress.prox.tl1 import prox_tl1, tl1_penalty
from compress.regularizers.base import REGULARIZERS, Regularizer

PENALTIES = ("l1", "l0", "tl1", "l1-l2", "scad")


def check_penalty(penalty: str) -> str:
    if penalty not in PENALTIES:
        raise ValueError(f"unknown penalty {penalty!r}; allowed: {', '.join(PENALTIES)}")
    return penalty


def penalty_prox(y: torch.Tensor, mu: float, *, penalty: str, a: float = 1.0, alpha: float = 1.0) -> torch.Tensor:
    """``prox_{mu P}(y)`` for ``P`` named by ``penalty`` (``a``: TL1 / SCAD shape, ``alpha``: L1-L2 weight).

    ``l1-l2`` is applied to the whole tensor (it is not separable); the others element-wise.
    """
    check_penalty(penalty)
    if penalty == "l1":
        return soft_threshold(y, mu)
    if penalty == "l0":
        return prox_l0(y, mu)
    if penalty == "tl1":
        return prox_tl1(y, mu, a=a)
    if penalty == "l1-l2":
        return prox_l1_minus_l2(y, mu, alpha=alpha)
    return prox_scad(y, mu, a=a)


def penalty_value(x: torch.Tensor, *, penalty: str, a: float = 1.0, alpha: float = 1.0, mu: float = 1.0) -> torch.Tensor:
    """``P(x)`` summed over the tensor (SCAD uses its own parameter ``mu``; L0 is a constant count)."""
    check_penalty(penalty)
    if penalty == "l1":
        return x.abs().sum()
    if penalty == "l0":
        return x.ne(0).sum().to(x.dtype)
    if penalty == "tl1":
        return tl1_penalty(x, a=a).sum()
    if penalty == "l1-l2":
        return l1_minus_l2_penalty(x, alpha=alpha)
    return scad_penalty(x, mu, a=a).sum() / max(mu, torch.finfo(x.dtype).tiny)


class ElementwiseRegularizer(Regularizer):
    """``strength * P(w)`` with the closed-form prox of spec §1.1-§1.4, §1.7."""

    penalty_name = "l1"

    def __init__(self, *, strength: float, layers: str = "all", a: float = 1.0, alpha: float = 1.0) -> None:
        super().__init__(strength=strength, layers=layers)
        self.a = a
        self.alpha = alpha

    def value(self, weight: torch.Tensor) -> torch.Tensor:
        return penalty_value(weight, penalty=self.penalty_name, a=self.a, alpha=self.alpha, mu=self.strength)

    def prox(self, weight: torch.Tensor, mu: float) -> torch.Tensor:
        return penalty_prox(weight, mu, penalty=self.penalty_name, a=self.a, alpha=self.alpha)


def _register(name: str) -> type[ElementwiseRegularizer]:
    cls = type(f"{name.replace('-', '_').upper()}Regularizer", (ElementwiseRegularizer,), {"penalty_name": name, "name": name})
    REGULARIZERS.register(name)(cls)
    return cls


L1Regularizer = _register("l1")
L0Regularizer = _register("l0")
TL1Regularizer = _register("tl1")
L1L2Regularizer = _register("l1-l2")
SCADRegularizer = _register("scad")
