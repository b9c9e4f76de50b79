"""SSGD: unbiased sparse SGD by affine scaling (Lee, Fedorov, Rao, Garudadri, ICASSP 2020; precursor
Fedorov & Rao, "Re-weighted learning for sparsifying DNNs", arXiv 1802.01616). Spec §2 is a
reconstruction [RECON] from the abstract; the choices below are ours and are stated as such.

Update, with ``g = grad L(w)`` (no sparsity penalty: "unbiased")::

    s = |w|^(2 - p)                    (affine-scaling factor Omega^2, element-wise, 0 <= p <= 1)
    s = s / mean(s over the layer)     (our choice: keeps the layer's mean step equal to SGD's)
    w <- momentum-SGD-step(w, s * g)   (scaling applied to the gradient before the optimizer step)

Zero is absorbing (a vanishing weight gets a vanishing step), so weights drift to sparse solutions.
``finalize`` zeroes weights with ``|w| < prune_threshold_ratio * max|w|`` per layer (our choice of rule).
Biases and norm layers are not scaled.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from compress.optim.method import METHODS, TrainingMethod
from compress.regularizers.selection import check_layers, selected_weights


@METHODS.register("ssgd")
class SSGD(TrainingMethod):
    """Affine-scaling (reweighted) SGD.

    Args:
        lr: learning rate (use the dense-training lr; the per-layer normalisation keeps it comparable).
        momentum: momentum applied to the scaled gradient.
        weight_decay: L2 weight decay (0: the method is meant to be unbiased).
        p: exponent; ``s = |w|^(2-p)`` (0 scales by ``w^2``).
        prune_threshold_ratio: ``finalize`` zeroes ``|w| < ratio * max|w|`` per layer.
        eps: guards the normalisation of an all-zero layer.
        layers: ``"all"``, ``"conv"`` or ``"linear"``.
    """

    name = "ssgd"

    def __init__(
        self,
        *,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        p: float = 0.0,
        prune_threshold_ratio: float = 1e-3,
        eps: float = 1e-12,
        layers: str = "all",
    ) -> None:
        super().__init__(lr=lr, momentum=momentum, weight_decay=weight_decay)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if not 0.0 <= prune_threshold_ratio < 1.0:
            raise ValueError(f"prune_threshold_ratio must be in [0, 1), got {prune_threshold_ratio}")
        self.p = p
        self.prune_threshold_ratio = prune_threshold_ratio
        self.eps = eps
        self.layers = check_layers(layers)

    def scaling(self, weight: torch.Tensor) -> torch.Tensor:
        """``s = |w|^(2-p) / mean(|w|^(2-p))``."""
        s = weight.detach().abs().pow(2.0 - self.p)
        return s / (s.mean() + self.eps)

    @torch.no_grad()
    def before_step(self, model: nn.Module) -> None:
        for _, weight in selected_weights(model, layers=self.layers):
            if weight.grad is not None:
                weight.grad.mul_(self.scaling(weight))

    @torch.no_grad()
    def finalize(self, model: nn.Module) -> None:
        for _, weight in selected_weights(model, layers=self.layers):
            threshold = self.prune_threshold_ratio * weight.abs().max()
            weight.mul_((weight.abs() >= threshold).to(weight.dtype) if threshold > 0 else 1.0)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None
