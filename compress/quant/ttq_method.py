"""TTQ training method: latent weights plus trainable per-layer (or per-channel) ``W_p``, ``W_n``.

Operator and gradients in ``compress.quant.ttq`` (Zhu, Han, Mao, Dally, ICLR 2017; spec §6.6).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from compress.hyperparameters import inherits_hyperparameters
from compress.quant.method import QUANT_METHODS, QuantMethod
from compress.quant.quantized import QuantizedTensor
from compress.quant.ttq import TTQ_THRESHOLD_RATIO, project_ttq, ttq_initial_scales, ttq_ternarize


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


@QUANT_METHODS.register("ttq")
@inherits_hyperparameters
class TTQMethod(QuantMethod):
    """Trained Ternary Quantization.

    Args:
        threshold_ratio: ``t`` in ``Delta = t * max|w|`` (paper: 0.05).
        scale_lr: SGD learning rate of ``W_p``, ``W_n``. Their gradient is a *sum* over the support
            (thousands of entries), so it needs a far smaller step than the latent weights;
            implementation choice, the paper's code trains weights normalised to [-1, 1] instead.
        Other arguments as in ``QuantMethod``.
    """

    name = "ttq"

    def __init__(
        self,
        *,
        threshold_ratio: float = TTQ_THRESHOLD_RATIO,
        scale_lr: float = 1e-6,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if not 0 <= threshold_ratio < 1:
            raise ValueError(f"threshold_ratio must be in [0, 1), got {threshold_ratio}")
        if scale_lr < 0:
            raise ValueError(f"scale_lr must be >= 0, got {scale_lr}")
        self.threshold_ratio = threshold_ratio
        self.scale_lr = scale_lr

    def build_optimizer(self, model: nn.Module, *, total_steps: int) -> torch.optim.Optimizer:
        """SGD with two groups: the network (``lr``) and the TTQ scales (``scale_lr``, no weight decay)."""
        self.attach(model)
        scales = [param for _, p in self.parametrizations(model) for param in (p.pos_scale, p.neg_scale)]
        scale_ids = {id(param) for param in scales}
        others = [param for param in model.parameters() if id(param) not in scale_ids]
        self.optimizer = torch.optim.SGD(
            [{"params": others}, {"params": scales, "lr": self.scale_lr, "weight_decay": 0.0}],
            lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay,
        )
        return self.optimizer

    def make_parametrization(self, weight: torch.Tensor, mask: torch.Tensor) -> nn.Module:
        return TTQWeight(weight=weight, mask=mask, per_channel=self.per_channel, threshold_ratio=self.threshold_ratio)
