"""Sparsity penalties on individual weights with their closed-form prox.

L1 (soft threshold), L0 (hard threshold at ``sqrt(2 mu)``), transformed L1
``|x| (a + 1) / (a + |x|)`` (Zhang & Xin), L1 - alpha L2 on the whole tensor (Lou & Yan), SCAD (Fan & Li).
"""

from __future__ import annotations

import torch

from compress.prox.hard import prox_l0
from compress.prox.l1_l2 import l1_minus_l2_penalty, prox_l1_minus_l2
from compress.prox.scad import prox_scad, scad_penalty
from compress.prox.soft import soft_threshold
from compress.prox.tl1 import prox_tl1, tl1_penalty
from compress.regularizers.base import Regularizer
from compress.selection import ALL_LAYERS, ParamSelector


class L1(Regularizer):
    """``R(w) = ||w||_1``; prox = soft threshold."""

    name = "l1"

    def value(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.abs().sum()

    def prox(self, weight: torch.Tensor, mu: float) -> torch.Tensor:
        return soft_threshold(weight, mu)


class L0(Regularizer):
    """``R(w) = #{w != 0}`` (a count: no gradient); prox = hard threshold at ``sqrt(2 mu)``."""

    name = "l0"

    def value(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.ne(0).sum().to(weight.dtype)

    def prox(self, weight: torch.Tensor, mu: float) -> torch.Tensor:
        return prox_l0(weight, mu)


class TL1(Regularizer):
    """Transformed L1 ``sum_i (a + 1) |w_i| / (a + |w_i|)`` with shape ``a > 0``."""

    name = "tl1"

    def __init__(self, *, strength: float, layers: ParamSelector = ALL_LAYERS, a: float = 1.0) -> None:
        super().__init__(strength=strength, layers=layers)
        if not a > 0:
            raise ValueError(f"TL1 needs a > 0, got a={a}")
        self.a = a

    def value(self, weight: torch.Tensor) -> torch.Tensor:
        return tl1_penalty(weight, a=self.a).sum()

    def prox(self, weight: torch.Tensor, mu: float) -> torch.Tensor:
        return prox_tl1(weight, mu, a=self.a)


class L1MinusL2(Regularizer):
    """``||w||_1 - alpha ||w||_2`` over the whole tensor (not separable), ``0 < alpha <= 1``."""

    name = "l1-l2"

    def __init__(self, *, strength: float, layers: ParamSelector = ALL_LAYERS, alpha: float = 1.0) -> None:
        super().__init__(strength=strength, layers=layers)
        self.alpha = alpha

    def value(self, weight: torch.Tensor) -> torch.Tensor:
        return l1_minus_l2_penalty(weight, alpha=self.alpha)

    def prox(self, weight: torch.Tensor, mu: float) -> torch.Tensor:
        return prox_l1_minus_l2(weight, mu, alpha=self.alpha)


class SCAD(Regularizer):
    """SCAD with shape ``a > 2`` (3.7 in Fan & Li); its value is scaled by ``1 / strength`` so that
    ``strength * R`` is the SCAD penalty of parameter ``strength``."""

    name = "scad"

    def __init__(self, *, strength: float, layers: ParamSelector = ALL_LAYERS, a: float = 3.7) -> None:
        super().__init__(strength=strength, layers=layers)
        if not a > 2:
            raise ValueError(f"SCAD needs a > 2 (e.g. 3.7), got a={a}")
        self.a = a

    def value(self, weight: torch.Tensor) -> torch.Tensor:
        return scad_penalty(weight, self.strength, a=self.a).sum() / max(self.strength, torch.finfo(weight.dtype).tiny)

    def prox(self, weight: torch.Tensor, mu: float) -> torch.Tensor:
        return prox_scad(weight, mu, a=self.a)
