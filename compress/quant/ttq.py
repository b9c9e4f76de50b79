"""Trained Ternary Quantization (Zhu, Han, Mao, Dally, ICLR 2017).

Forward, with latent weight ``w`` and trainable positive scalars ``W_p``, ``W_n`` per group::

    Delta = t * max|w|          (t = 0.05; no gradient through Delta)
    w_t   = +W_p if w > Delta,  0 if |w| <= Delta,  -W_n if w < -Delta

Backward (the paper's straight-through rule, ``czhu95/ternarynet::tw_ternarize``)::

    dL/dW_p = sum_{w_i > Delta} g_i,      dL/dW_n = -sum_{w_i < -Delta} g_i
    dL/dw_i = W_p g_i (w_i > Delta),  g_i (|w_i| <= Delta),  W_n g_i (w_i < -Delta)

with ``g = dL/dw_t``. The codes are ``sign(w) * 1{|w| > Delta}``; the record stores
``scales = W_p`` and the signed negative level ``neg_scales = -W_n``. The training method keeps
latent weights plus trainable per-layer (or per-channel) ``W_p``, ``W_n``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from compress.quant.method import QuantHyperparameters, QuantMethod
from compress.quant.quantized import (
    CODE_DTYPE,
    QuantizedTensor,
    broadcast_scales,
    dequantize,
    group_rows,
)
from compress.quant.support import check_mask

TTQ_THRESHOLD_RATIO = 0.05


def ttq_threshold(
    weight: torch.Tensor, *, threshold_ratio: float, per_channel: bool, mask: torch.Tensor | None
) -> torch.Tensor:
    """``Delta = t * max|w|`` per group (over masked-in entries), shaped to broadcast on ``weight``."""
    if not 0 <= threshold_ratio < 1:
        raise ValueError(f"threshold_ratio must be in [0, 1), got {threshold_ratio}")
    check_mask(weight, mask)
    magnitude = weight.detach().abs() if mask is None else weight.detach().abs() * mask
    peak = group_rows(magnitude, per_channel=per_channel).amax(dim=1)
    return broadcast_scales(threshold_ratio * peak, weight.shape)


def ttq_codes(weight: torch.Tensor, threshold: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``sign(w) * 1{|w| > Delta}`` (and 0 outside ``mask``) as ``int8``."""
    codes = (weight.detach() > threshold).to(CODE_DTYPE) - (weight.detach() < -threshold).to(CODE_DTYPE)
    return codes if mask is None else codes * mask


class TTQFunction(torch.autograd.Function):
    """``w_t = dequantize(codes, W_p, -W_n)`` with the TTQ gradients above."""

    @staticmethod
    def forward(ctx, weight, pos_scale, neg_scale, codes):  # noqa: D102  (autograd signature)
        ctx.save_for_backward(codes, pos_scale, neg_scale)
        return dequantize(codes, pos_scale, neg_scales=-neg_scale)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        codes, pos_scale, neg_scale = ctx.saved_tensors
        positive, negative = codes > 0, codes < 0
        pos_b = broadcast_scales(pos_scale, grad.shape)
        neg_b = broadcast_scales(neg_scale, grad.shape)
        grad_weight = torch.where(positive, pos_b * grad, torch.where(negative, neg_b * grad, grad))
        rows = pos_scale.shape[0] == grad.shape[0]
        grad_pos = group_rows(grad * positive, per_channel=rows).sum(dim=1)
        grad_neg = -group_rows(grad * negative, per_channel=rows).sum(dim=1)
        return grad_weight, grad_pos.reshape(pos_scale.shape), grad_neg.reshape(neg_scale.shape), None


def ttq_ternarize(
    weight: torch.Tensor,
    pos_scale: torch.Tensor,
    neg_scale: torch.Tensor,
    *,
    threshold_ratio: float = TTQ_THRESHOLD_RATIO,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Differentiable TTQ forward; per-channel when ``pos_scale`` has ``weight.shape[0]`` entries.

    Args:
        weight: latent float weight.
        pos_scale: ``W_p``, shape ``[1]`` or ``[channels]``.
        neg_scale: ``W_n`` (positive magnitude of the negative level), same shape as ``pos_scale``.
        threshold_ratio: ``t`` in ``Delta = t * max|w|``.
        mask: optional support mask; entries outside it are 0 and receive no gradient.

    Returns:
        The ternary weight ``w_t``.
    """
    _check_scales(weight, pos_scale, neg_scale)
    per_channel = pos_scale.shape[0] == weight.shape[0]
    if mask is not None:
        weight = weight * mask
    threshold = ttq_threshold(weight, threshold_ratio=threshold_ratio, per_channel=per_channel, mask=mask)
    codes = ttq_codes(weight, threshold, mask)
    return TTQFunction.apply(weight, pos_scale, neg_scale, codes)


def project_ttq(
    weight: torch.Tensor,
    pos_scale: torch.Tensor,
    neg_scale: torch.Tensor,
    *,
    threshold_ratio: float = TTQ_THRESHOLD_RATIO,
    mask: torch.Tensor | None = None,
) -> QuantizedTensor:
    """The deployable TTQ codes with ``scales = W_p`` and ``neg_scales = -W_n`` (no autograd)."""
    _check_scales(weight, pos_scale, neg_scale)
    per_channel = pos_scale.shape[0] == weight.shape[0]
    threshold = ttq_threshold(weight, threshold_ratio=threshold_ratio, per_channel=per_channel, mask=mask)
    return QuantizedTensor(
        codes=ttq_codes(weight, threshold, mask),
        scales=pos_scale.detach().clone(),
        neg_scales=-neg_scale.detach(),
        scheme="ternary",
        bits=2,
    )


def ttq_initial_scales(
    weight: torch.Tensor,
    *,
    per_channel: bool = False,
    threshold_ratio: float = TTQ_THRESHOLD_RATIO,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial ``(W_p, W_n)``: mean ``|w|`` over the positive / negative support.

    Implementation choice (not from the paper, whose code starts both at 1.0 on normalised weights):
    starting at the support means makes the first forward a TWN-like ternarization of the
    pretrained weight instead of a rescaled one.
    """
    threshold = ttq_threshold(weight, threshold_ratio=threshold_ratio, per_channel=per_channel, mask=mask)
    codes = ttq_codes(weight, threshold, mask)
    magnitude = weight.detach().abs()

    def support_mean(selected: torch.Tensor) -> torch.Tensor:
        rows = group_rows(magnitude * selected, per_channel=per_channel).sum(dim=1)
        return rows / group_rows(selected, per_channel=per_channel).sum(dim=1).clamp_min(1)

    return support_mean(codes > 0), support_mean(codes < 0)


def _check_scales(weight: torch.Tensor, pos_scale: torch.Tensor, neg_scale: torch.Tensor) -> None:
    allowed = {1, weight.shape[0]}
    if pos_scale.dim() != 1 or pos_scale.shape[0] not in allowed or pos_scale.shape != neg_scale.shape:
        raise ValueError(
            f"TTQ scales must both be 1-d of length 1 or {weight.shape[0]}, got "
            f"{tuple(pos_scale.shape)} and {tuple(neg_scale.shape)}"
        )


class TTQWeight(nn.Module):
    """Parametrization ``w -> TTQ(w; W_p, W_n)`` holding ``W_p``, ``W_n`` as ``nn.Parameter``."""

    def __init__(self, *, weight: torch.Tensor, mask: torch.Tensor, per_channel: bool, threshold_ratio: float) -> None:
        super().__init__()
        self.threshold_ratio = threshold_ratio
        self.register_buffer("mask", mask.detach().clone().bool())
        pos, neg = ttq_initial_scales(weight, per_channel=per_channel, threshold_ratio=threshold_ratio, mask=self.mask)
        self.pos_scale = nn.Parameter(pos.to(weight.dtype))
        self.neg_scale = nn.Parameter(neg.to(weight.dtype))

    def quantize(self, latent: torch.Tensor) -> QuantizedTensor:
        return project_ttq(
            latent.detach(), self.pos_scale, self.neg_scale, threshold_ratio=self.threshold_ratio, mask=self.mask
        )

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return ttq_ternarize(
            latent, self.pos_scale, self.neg_scale, threshold_ratio=self.threshold_ratio, mask=self.mask
        )


@dataclass(frozen=True)
class TTQHyperparameters(QuantHyperparameters):
    """Attributes:
        threshold_ratio: ``t`` in ``Delta = t * max|w|`` (paper: 0.05).
        scale_lr: SGD learning rate of ``W_p``, ``W_n``. Their gradient is a *sum* over the support
            (thousands of entries), so it needs a far smaller step than the latent weights;
            implementation choice, the paper's code trains weights normalised to [-1, 1] instead.
    """

    threshold_ratio: float = TTQ_THRESHOLD_RATIO
    scale_lr: float = 1e-6

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.threshold_ratio < 1:
            raise ValueError(f"threshold_ratio must be in [0, 1), got {self.threshold_ratio}")
        if not self.scale_lr >= 0:
            raise ValueError(f"scale_lr must be >= 0, got {self.scale_lr}")


class TTQMethod(QuantMethod):
    """Trained Ternary Quantization."""

    name = "ttq"
    Hyperparameters = TTQHyperparameters

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """Two groups: the network (``lr``) and the TTQ scales (``scale_lr``, no weight decay)."""
        scales = [param for _, p in self.parametrizations(model) for param in (p.pos_scale, p.neg_scale)]
        scale_ids = {id(param) for param in scales}
        others = [param for param in model.parameters() if id(param) not in scale_ids]
        return [{"params": others}, {"params": scales, "lr": self.hp.scale_lr, "weight_decay": 0.0}]

    def make_parametrization(self, weight: torch.Tensor, mask: torch.Tensor) -> nn.Module:
        return TTQWeight(weight=weight, mask=mask, per_channel=self.hp.per_channel, threshold_ratio=self.hp.threshold_ratio)
