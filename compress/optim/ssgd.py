"""SSGD: unbiased sparse SGD by affine scaling (Lee, Fedorov, Rao, Garudadri, ICASSP 2020; precursor
Fedorov & Rao, "Re-weighted learning for sparsifying DNNs", arXiv 1802.01616). The update is
read from the papers; where they leave a choice open, ours is stated as such.

Update, with ``g = grad L(w)`` (no sparsity penalty: "unbiased")::

    s = |w|^(2 - p)                    (affine-scaling factor Omega^2, element-wise, 0 <= p <= 1)
    s = s / mean(s over the layer)     (our choice: keeps the layer's mean step equal to SGD's)
    w <- momentum-SGD-step(w, s * g)   (scaling applied to the gradient before the optimizer step)

Zero is absorbing (a vanishing weight gets a vanishing step), so weights drift to sparse solutions.
Biases and norm layers are not scaled.

Pruning of the vanishing weights (our choice; the paper's rule is not public). By default global
magnitude cuts over all the selected layers remove a fraction ``sparsity_ratio`` of their weights::

    tau_k = the s_k-quantile of {|w_i| : all layers},   zero every |w_i| <= tau_k
    s_k   = sparsity_ratio * (1 - (1 - k / R)^3)        (cubic ramp, Zhu & Gupta 2017; R = prune_rounds)

cut ``k`` after ``k / R`` of the affine-scaled steps, the last (``s_R = sparsity_ratio``) where the masked
fine-tune starts. Zero is absorbing under affine scaling (``s = 0`` for ``w = 0``), so a cut weight
stays cut and the survivors keep training scaled. One cut over the whole network allots each layer
its own ratio (LeNet-5 / MNIST, 1,800 steps: fc1 97%, conv1 15%); the energy rule below, applied layer
by layer, kept 20% of fc1 and cut four fifths of conv1 (4.8x at ``keep_energy = 0.7``). With
``sparsity_ratio=None`` the per-layer energy rule prunes once, at the switch: with the entries sorted by
magnitude ``|w_(1)| >= |w_(2)| >= ... >= |w_(n)|``, keep the smallest prefix that
carries a fraction ``keep_energy`` of the layer's squared L2 norm::

    k = min{ j : sum_{i<=j} w_(i)^2 >= keep_energy * ||w||_2^2 },   keep w_(1..k), zero the rest

so the pruned part obeys ``||w - w_pruned||_2 <= sqrt(1 - keep_energy) * ||w||_2`` (a bound on the
layer's output perturbation ``||(W - W_pruned) x|| <= sqrt(1 - keep_energy) ||W||_F ||x||``). The rule is
scale-invariant and adapts to the layer's distribution: on the heavy-tailed weights SSGD produces,
most entries carry almost no energy and are cut; on a dense Gaussian-like layer few are. It replaces a
cut at a fraction of the layer's max ``|w|``, which depends on a single outlier weight and, on short
schedules, removed weights that still carried the function (LeNet-5 fc1 kept 403 of 400,000 weights
and test accuracy fell to 41%).

Optional masked fine-tuning (our choice, as Han et al. 2015 and ADMM's masked retrain): with
``ssgd_epochs`` set, the pruning rule is applied at the end of epoch ``ssgd_epochs`` and the remaining
epochs train the surviving weights with the plain (unscaled) gradient, ``g * mask``, weights kept at
``w * mask`` after every step, momentum reset at the switch. Without ``ssgd_epochs`` the switch comes
after ``1 - finetune_ratio`` of the run's steps (default: the last third fine-tunes, whatever the
budget); ``finetune_ratio=0`` never switches: every step is affine-scaled and ``finalize`` prunes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from compress.optim.masked_finetune import MaskedFinetune, PHASE_FINE_TUNING, PHASE_STEPS
from compress.optim.method import LAYER_KINDS, Hyperparameters, TrainingMethod, check_ratio
from compress.prune.masks import Masks
from compress.prune.semi_structured import prune_weights
from compress.selection import ParamSelector


def energy_mask(weight: torch.Tensor, *, keep_energy: float) -> torch.Tensor:
    """Boolean mask of the largest ``|w|`` holding a fraction ``keep_energy`` of ``sum w^2``.

    ``k = min{j : sum_{i<=j} w_(i)^2 >= keep_energy * sum_i w_i^2}`` over the magnitudes sorted in
    decreasing order; the ``k`` largest entries are kept (ties at the cut broken by the sort). An
    all-zero tensor keeps nothing; ``keep_energy = 1`` keeps every nonzero entry.
    """
    energy = weight.detach().reshape(-1).to(torch.float64).pow(2)
    flat = torch.zeros(energy.numel(), dtype=torch.bool, device=weight.device)
    total = energy.sum()
    if energy.numel() == 0 or total <= 0:
        return flat.reshape(weight.shape)
    sorted_energy, order = torch.sort(energy, descending=True)
    cumulative = torch.cumsum(sorted_energy, dim=0)
    keep = min(int((cumulative < keep_energy * cumulative[-1]).sum()) + 1, energy.numel())
    flat[order[:keep]] = True
    return flat.reshape(weight.shape)


@dataclass(frozen=True)
class SSGDHyperparameters(Hyperparameters):
    """Attributes:
        lr: learning rate (the per-layer normalisation keeps it comparable to SGD's; 0.02 kept
            LeNet-300-100 at -0.41 points at 95% sparsity in 1,800 steps where 0.01 lost 0.61).
        p: exponent; ``s = |w|^(2-p)`` (0 scales by ``w^2``).
        sparsity_ratio: fraction of the selected weights zeroed by the global magnitude cuts (default 0.95,
            20x; ``None``: the per-layer energy rule of ``keep_energy``).
        prune_rounds: cuts on the cubic ramp to ``sparsity_ratio`` over the affine-scaled steps (with
            ``ssgd_epochs`` set: one cut, at the switch).
        keep_energy: with ``sparsity_ratio=None``, pruning keeps, per layer, the largest weights carrying
            this fraction of ``||w||_2^2``, so the pruned weights hold at most ``1 - keep_energy`` of the
            layer's energy (a relative Frobenius perturbation <= ``sqrt(1 - keep_energy)``); with the
            masked fine-tune a lower value prunes more (``benchmarks/sparse_training.md``).
        ssgd_epochs: epochs of affine-scaled training before pruning and masked fine-tuning with the
            plain gradient; ``None`` (default): the switch follows ``finetune_ratio``.
        finetune_ratio: fraction of the run's steps left for the masked fine-tune (without ``ssgd_epochs``).
        eps: guards the normalisation of an all-zero layer.
        layers: ``"all"``, ``"conv"`` or ``"linear"``.
    """

    lr: float = 0.02
    p: float = 0.0
    sparsity_ratio: float | None = 0.95
    prune_rounds: int = 4
    keep_energy: float = 0.7
    ssgd_epochs: int | None = None
    finetune_ratio: float = 1 / 3
    eps: float = 1e-12
    layers: str = field(default="all", metadata={"choices": LAYER_KINDS})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {self.p}")
        if not 0.0 < self.keep_energy <= 1.0:
            raise ValueError(f"keep_energy must be in (0, 1], got {self.keep_energy}")
        check_ratio("finetune_ratio", self.finetune_ratio)
        if self.sparsity_ratio is not None and not 0.0 <= self.sparsity_ratio < 1.0:
            raise ValueError(f"sparsity_ratio must be in [0, 1) or None, got {self.sparsity_ratio}")
        if self.prune_rounds < 1:
            raise ValueError(f"prune_rounds must be >= 1, got {self.prune_rounds}")
        if self.ssgd_epochs is not None and self.ssgd_epochs < 1:
            raise ValueError(f"ssgd_epochs must be >= 1 or None, got {self.ssgd_epochs}")


class SSGD(TrainingMethod):
    """Affine-scaling (reweighted) SGD, energy-based pruning of the vanishing weights, optional masked fine-tune."""

    name = "ssgd"
    Hyperparameters = SSGDHyperparameters

    def __init__(self, hp: SSGDHyperparameters | None = None) -> None:
        super().__init__(hp)
        self.layers = ParamSelector(kinds=self.hp.layers)
        self.phase = MaskedFinetune(finetune_ratio=self.hp.finetune_ratio)
        self._rounds_done = 0

    steps = PHASE_STEPS
    fine_tuning = PHASE_FINE_TUNING

    def scaling(self, weight: torch.Tensor) -> torch.Tensor:
        """``s = |w|^(2-p) / mean(|w|^(2-p))``."""
        s = weight.detach().abs().pow(2.0 - self.hp.p)
        return s / (s.mean() + self.hp.eps)

    @torch.no_grad()
    def before_step(self, model: nn.Module) -> None:
        if self.phase.before_step(model):
            return
        for _, weight in self.layers.weights(model):
            if weight.grad is not None:
                weight.grad.mul_(self.scaling(weight))

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        if self.phase.after_step(model) or self.hp.ssgd_epochs is not None or self.hp.finetune_ratio <= 0:
            return
        switch = self.phase.switch_step(self.total_steps)
        if self.steps >= switch:
            self._start_fine_tuning(model)
        elif self.hp.sparsity_ratio is not None and self.steps >= switch * (self._rounds_done + 1) / self.hp.prune_rounds:
            self._rounds_done += 1
            ramp = self.hp.sparsity_ratio * (1 - (1 - self._rounds_done / self.hp.prune_rounds) ** 3)
            self.phase.hold(model, self._prune_masks(model, sparsity_ratio=ramp))

    @torch.no_grad()
    def on_epoch_end(self, model: nn.Module, *, epoch: int) -> None:
        if not self.fine_tuning and self.hp.ssgd_epochs is not None and epoch + 1 >= self.hp.ssgd_epochs:
            self._start_fine_tuning(model)

    def _start_fine_tuning(self, model: nn.Module) -> None:
        self.phase.start(model, self._prune_masks(model), reset_momentum=self.reset_momentum)

    def _prune_masks(self, model: nn.Module, *, sparsity_ratio: float | None = None) -> Masks:
        """Masks of a global magnitude cut at ``sparsity_ratio`` (default ``hp.sparsity_ratio``), or of the energy rule."""
        if self.hp.sparsity_ratio is not None:
            ratio = self.hp.sparsity_ratio if sparsity_ratio is None else sparsity_ratio
            masks = prune_weights(model, pattern="unstructured", sparsity_ratio=ratio, scope="global", layers=self.layers).masks
        else:
            masks = {fqn: energy_mask(weight, keep_energy=self.hp.keep_energy) for fqn, weight in self.layers.weights(model)}
        weights = dict(self.layers.weights(model))
        return {fqn: mask.to(weights[fqn].dtype) for fqn, mask in masks.items()}

    @torch.no_grad()
    def finalize(self, model: nn.Module) -> None:
        self.phase.finalize(model, self._prune_masks)

    def state_dict(self) -> dict[str, Any]:
        return {**self.phase.state_dict(), "rounds_done": self._rounds_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.phase.load_state_dict(state)
        self._rounds_done = int(state.get("rounds_done", 0))
