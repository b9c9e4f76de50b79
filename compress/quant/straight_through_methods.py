"""Straight-through fine-tuning methods: ``"binary"``, ``"ternary"`` (TWN or exact) and ``"int8"``.

Per mini-batch the layer computes with ``Pi_Q(w)`` and the gradient at ``Pi_Q(w)`` updates the
latent ``w`` (STE; Courbariaux et al., BinaryConnect, NeurIPS 2015; TWN, Li et al. 2016, spec §6.5):
``w <- w - lr * dL/du |_{u = Pi_Q(w)}``. ``finalize`` writes ``Pi_Q(w)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from compress.hyperparameters import inherits_hyperparameters
from compress.quant.method import QUANT_METHODS, QuantMethod
from compress.quant.straight_through import ProjectedWeight

TERNARY_MODES = {"twn": "twn", "exact": "ternary"}


class StraightThroughMethod(QuantMethod):
    """STE fine-tuning with the projection named by ``self.projection``."""

    projection = "twn"

    def make_parametrization(self, weight: torch.Tensor, mask: torch.Tensor) -> nn.Module:
        return ProjectedWeight(projection=self.projection, mask=mask, per_channel=self.per_channel)


@QUANT_METHODS.register("binary")
class BinaryMethod(StraightThroughMethod):
    """Binary weights ``alpha * sign(w)``, ``alpha = mean|w|`` (see ``compress.quant.binary``)."""

    name = "binary"
    projection = "binary"


@QUANT_METHODS.register("ternary")
@inherits_hyperparameters
class TernaryMethod(StraightThroughMethod):
    """Ternary weights by TWN's threshold rule (``mode="twn"``, default) or the exact projection.

    Args:
        mode: ``"twn"`` (``Delta = 0.7 mean|w|``) or ``"exact"`` (sorting projection); other
            arguments as in ``QuantMethod``.
    """

    name = "ternary"

    def __init__(self, *, mode: str = "twn", **options: Any) -> None:
        super().__init__(**options)
        if mode not in TERNARY_MODES:
            raise ValueError(f"unknown ternary mode {mode!r}; allowed: {', '.join(TERNARY_MODES)}")
        self.mode = mode
        self.projection = TERNARY_MODES[mode]


@QUANT_METHODS.register("int8")
@inherits_hyperparameters
class Int8Method(StraightThroughMethod):
    """Symmetric int8 weights, per output channel by default (see ``compress.quant.int8``)."""

    name = "int8"
    projection = "int8"

    def __init__(self, *, per_channel: bool = True, **options: Any) -> None:
        super().__init__(per_channel=per_channel, **options)
