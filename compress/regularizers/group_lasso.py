"""Group L2,1 (group lasso) and group L0 regularizers on output or input channels.

Groups: output or input channels, or 16x1 row blocks (``compress.prox.group``).
Group lasso (Yuan & Lin 2006; SSL, Wen et al. NIPS 2016): ``R(W) = sum_g c_g ||W_g||_2`` with
``c_g = sqrt(|g|)`` when ``scale_by_size`` (the convention of Bui et al., 2021) else 1; prox = block soft threshold.
Group L0: ``R(W) = #{g : W_g != 0}``; prox = group hard threshold at ``sqrt(2 mu)``.
"""

from __future__ import annotations

import math

import torch

from compress.prox.group import (
    group_axis,
    group_hard_threshold,
    group_norms,
    group_size,
    group_soft_threshold,
    smooth_group_norm_sum,
)
from compress.regularizers.base import Regularizer
from compress.selection import ALL_LAYERS, ParamSelector


class GroupLasso(Regularizer):
    """``sum_g c_g ||W_g||_2`` over the groups along ``axis`` (``"output"`` / ``"input"`` channels, ``"block"``)."""

    name = "group-lasso"

    def __init__(
        self, *, strength: float, layers: ParamSelector = ALL_LAYERS, axis: str = "output", scale_by_size: bool = False
    ) -> None:
        super().__init__(strength=strength, layers=layers)
        self.axis = group_axis(axis)
        self.scale_by_size = scale_by_size

    def _scale(self, weight: torch.Tensor) -> float:
        return math.sqrt(group_size(weight, axis=self.axis)) if self.scale_by_size else 1.0

    def value(self, weight: torch.Tensor) -> torch.Tensor:
        """The smooth ``sum_g c_g sqrt(||W_g||^2 + 1e-8)``: differentiable at a zero group."""
        return self._scale(weight) * smooth_group_norm_sum(weight, axis=self.axis)

    def prox(self, weight: torch.Tensor, mu: float) -> torch.Tensor:
        return group_soft_threshold(weight, mu * self._scale(weight), axis=self.axis)


class GroupL0(Regularizer):
    """``#{g : W_g != 0}``; prox = group hard threshold at ``sqrt(2 mu)``."""

    name = "group-l0"

    def __init__(self, *, strength: float, layers: ParamSelector = ALL_LAYERS, axis: str = "output") -> None:
        super().__init__(strength=strength, layers=layers)
        self.axis = group_axis(axis)

    def value(self, weight: torch.Tensor) -> torch.Tensor:
        return group_norms(weight, axis=self.axis).ne(0).sum().to(weight.dtype)

    def prox(self, weight: torch.Tensor, mu: float) -> torch.Tensor:
        return group_hard_threshold(weight, math.sqrt(2.0 * mu), axis=self.axis)
