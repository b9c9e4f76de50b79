"""RVSM: relaxed variable splitting for unstructured sparsity (Dinh & Xin, arXiv 1812.05719; used by
Dinh, Wang, Bertozzi, Osher, Xin, "Sparsity meets robustness", arXiv 2003.00631).

Objective ``f(w) + lambda P(u) + beta/2 ||w - u||^2`` with ``P`` in {L0, L1, TL1}. Per mini-batch::

    w <- w - lr * beta * (w - u)          (coupling, before the optimizer step)
    w <- SGD-Nesterov-step(w, grad f + wd w)
    u <- prox_{(lambda/beta) P}(w)         (L0: H_gamma, gamma = sqrt(2 lambda / beta); TL1: spec §1.3)

and at every epoch end ``w <- prox(w)`` in place and the momentum buffers are reset (the reference code
re-creates its optimizer every epoch). ``finalize`` does the same overwrite, so ``w`` has exact zeros.
"""

from __future__ import annotations

from typing import Any

import torch

from compress.hyperparameters import inherits_hyperparameters
from compress.optim.method import METHODS
from compress.optim.splitting import SplittingMethod
from compress.prox.hard import prox_l0
from compress.prox.soft import soft_threshold
from compress.prox.tl1 import prox_tl1

RVSM_PENALTIES = ("l0", "l1", "tl1")


@METHODS.register("rvsm")
@inherits_hyperparameters
class RVSM(SplittingMethod):
    """Relaxed variable splitting (unstructured).

    Args:
        lr: SGD learning rate.
        momentum: SGD momentum.
        weight_decay: L2 weight decay (5e-4 in the reference).
        lam: penalty weight ``lambda`` (reference default 1e-6).
        beta: splitting parameter (reference default 1e-2).
        penalty: ``"l0"`` (hard threshold, the reference), ``"tl1"`` or ``"l1"``.
        tl1_a: TL1 shape parameter ``a``.
        nesterov: Nesterov momentum.
        reset_momentum_each_epoch: forget momentum at each epoch end (as the reference).
        layers: ``"all"`` (conv + linear) or ``"conv"`` (the reference splits conv weights only).
    """

    name = "rvsm"

    def __init__(
        self,
        *,
        lam: float = 1e-6,
        beta: float = 1e-2,
        penalty: str = "l0",
        tl1_a: float = 1.0,
        **options: Any,
    ) -> None:
        super().__init__(beta=beta, **options)
        if penalty not in RVSM_PENALTIES:
            raise ValueError(f"unknown RVSM penalty {penalty!r}; allowed: {', '.join(RVSM_PENALTIES)}")
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        self.lam = lam
        self.penalty_name = penalty
        self.tl1_a = tl1_a

    def threshold(self, weight: torch.Tensor) -> torch.Tensor:
        mu = self.lam / self.beta
        if self.penalty_name == "l0":
            return prox_l0(weight, mu)
        if self.penalty_name == "tl1":
            return prox_tl1(weight, mu, a=self.tl1_a)
        return soft_threshold(weight, mu)
