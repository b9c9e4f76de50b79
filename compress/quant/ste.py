"""Straight-through quantized fine-tuning: the weight parametrization and the ``"binary"`` and
``"ternary"`` (TWN or exact) methods (``"int8"``, which adds activation quantization, is
``compress.quant.int8_qat``).

Per mini-batch the layer computes with ``Pi_Q(w)`` and the gradient at ``Pi_Q(w)`` updates the latent
``w`` unchanged (straight-through estimator; Bengio, Leonard, Courville 2013; Courbariaux et al.,
BinaryConnect, NeurIPS 2015; TWN, Li et al. 2016): ``w <- w - lr * dL/du |_{u = Pi_Q(w)}``.
The latent float weight stays the trainable parameter (``module.parametrizations.weight.original``);
entries outside the support mask are 0 and receive no gradient. ``finalize`` writes ``Pi_Q(w)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from compress.quant.method import QuantHyperparameters, QuantMethod
from compress.quant.projections import get_projection
from compress.quant.quantized import QuantizedTensor


class _StraightThrough(torch.autograd.Function):
    """Forward returns ``surrogate`` exactly; backward passes the gradient to ``latent`` unchanged."""

    @staticmethod
    def forward(ctx, latent, surrogate):  # noqa: D102  (autograd signature)
        return surrogate.clone()

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        return grad, None


def straight_through(latent: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """``surrogate`` in the forward pass, ``d/d latent = identity`` in the backward pass."""
    return _StraightThrough.apply(latent, surrogate.detach())


class ProjectedWeight(nn.Module):
    """Parametrization ``w -> STE(Pi_Q(w))`` with a fixed support mask (a buffer, so it checkpoints).

    BinaryRelax relaxation (Yin et al., SIIMS 2018): with a finite ``relax_eta`` buffer,
    the surrogate is ``u = (eta * Pi_Q(w) + w) / (1 + eta)``; ``relax_eta = inf`` (the default) means
    the exact projection ``u = Pi_Q(w)`` (phase II and plain straight-through fine-tuning). Being a
    buffer, ``eta`` travels with the model's ``state_dict`` (resume).

    Args:
        projection: a name in ``compress.quant.projections.PROJECTIONS``.
        mask: boolean support of the weight (``True`` = may be non-zero).
        per_channel: per-output-channel scales.
    """

    def __init__(self, *, projection: str, mask: torch.Tensor, per_channel: bool) -> None:
        super().__init__()
        get_projection(projection)
        self.projection = projection
        self.per_channel = per_channel
        self.register_buffer("mask", mask.detach().clone().bool())
        self.register_buffer("relax_eta", torch.tensor(float("inf")))

    def set_relax_eta(self, eta: float | None) -> None:
        """Set the BinaryRelax weight ``eta``; ``None`` (stored as ``inf``) means the exact projection."""
        self.relax_eta.fill_(float("inf") if eta is None else eta)

    def quantize(self, latent: torch.Tensor) -> QuantizedTensor:
        """The exact projection of the latent weight (what ``finalize`` writes)."""
        return get_projection(self.projection)(latent.detach(), per_channel=self.per_channel, mask=self.mask)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        projected = self.quantize(latent).dequantize()
        eta = float(self.relax_eta)
        if math.isfinite(eta):
            projected = (eta * projected + latent.detach() * self.mask) / (1.0 + eta)
        return straight_through(latent, projected) * self.mask


class BinaryMethod(QuantMethod):
    """Binary weights ``alpha * sign(w)``, ``alpha = mean|w|`` (see ``compress.quant.binary``)."""

    name = "binary"

    def make_parametrization(self, weight: torch.Tensor, mask: torch.Tensor) -> nn.Module:
        return ProjectedWeight(projection="binary", mask=mask, per_channel=self.hp.per_channel)


TERNARY_MODES = {"twn": "twn", "exact": "ternary"}


@dataclass(frozen=True)
class TernaryHyperparameters(QuantHyperparameters):
    """Attributes: ``mode``: ``"twn"`` (``Delta = 0.7 mean|w|``) or ``"exact"`` (sorting projection)."""

    mode: str = field(default="twn", metadata={"choices": tuple(TERNARY_MODES)})


class TernaryMethod(QuantMethod):
    """Ternary weights by TWN's threshold rule (``mode="twn"``, default) or the exact projection."""

    name = "ternary"
    Hyperparameters = TernaryHyperparameters

    def make_parametrization(self, weight: torch.Tensor, mask: torch.Tensor) -> nn.Module:
        return ProjectedWeight(projection=TERNARY_MODES[self.hp.mode], mask=mask, per_channel=self.hp.per_channel)
