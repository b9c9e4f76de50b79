"""Per-layer sensitivity: accuracy against sparsity, one layer pruned at a time.

The sweep of Han et al., "Learning both Weights and Connections for Efficient Neural Networks"
(NIPS 2015, Fig. 6) with NetAdapt's short-term fine-tuning (Yang et al., ECCV 2018, Sec. 3.2): for
each prunable weight ``W_l`` and each candidate ratio ``s``, keep every other layer as it is, set
``W_l <- W_l * M(W_l, s)`` with the pattern's one-shot magnitude mask ``M``, optionally let
``fine_tune(model, {fqn: M})`` take a few masked steps (a one-shot score under-rates layers that
fine-tuning recovers), and measure a score on a calibration split::

    d_l(s) = score(W) - score(W with W_l <- W_l * M(W_l, s), short-term fine-tuned)

Every parameter and buffer is restored after each point. Pure torch: the caller brings ``evaluate``
(which must not touch the test set), the mask function and the fine-tuning.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from compress.prune.block import block_mask
from compress.types import BlockShape

MaskFunction = Callable[[torch.Tensor, float], torch.Tensor]


def block_magnitude_prune(block: BlockShape) -> MaskFunction:
    """The mask function of block magnitude pruning (L2 norm per ``block``, smallest blocks dropped)."""

    def mask(weight: torch.Tensor, ratio: float) -> torch.Tensor:
        return block_mask(weight, block=block, sparsity_ratio=ratio)

    return mask


@torch.no_grad()
def layer_sensitivity(
    model: nn.Module,
    *,
    fqns: list[str],
    levels: list[float],
    evaluate: Callable[[nn.Module], float],
    mask_function: MaskFunction,
    reference: float | None = None,
    fine_tune: Callable[[nn.Module, dict[str, torch.Tensor]], None] | None = None,
) -> dict[str, list[float]]:
    """``{fqn: [d_l(s) for s in levels]}``: the score lost when only ``fqn`` is pruned to ``s``.

    Args:
        model: the model (its weights are restored before returning).
        fqns: dotted parameter names of the weights to sweep.
        levels: sparsity ratios in [0, 1).
        evaluate: ``model -> score`` (higher is better, e.g. calibration accuracy).
        mask_function: ``(weight, ratio) -> bool mask`` of the pattern.
        reference: the unpruned score (computed when None).
        fine_tune: ``(model, {fqn: mask})`` short masked fine-tuning after each pruning (None: one-shot).

    Raises:
        ValueError: a name that is not a parameter of ``model``, or a level outside [0, 1).
    """
    parameters = dict(model.named_parameters())
    missing = [fqn for fqn in fqns if fqn not in parameters]
    if missing:
        raise ValueError(f"not parameters of the model: {missing}; it has {sorted(parameters)[:8]}...")
    bad = [s for s in levels if not 0.0 <= s < 1.0]
    if bad:
        raise ValueError(f"sparsity levels must be in [0, 1), got {bad}")
    was_training = model.training
    model.eval()
    base = evaluate(model) if reference is None else reference
    curves: dict[str, list[float]] = {}
    saved = {name: value.detach().clone() for name, value in model.state_dict().items()}
    try:
        for fqn in fqns:
            weight = parameters[fqn]
            points = []
            for ratio in levels:
                if ratio > 0:
                    mask = mask_function(saved[fqn], ratio).to(weight.dtype)
                    weight.mul_(mask)
                    if fine_tune is not None:
                        with torch.enable_grad():
                            fine_tune(model, {fqn: mask})
                        model.eval()
                points.append(base - evaluate(model))
                model.load_state_dict(saved)
            curves[fqn] = points
    finally:
        model.load_state_dict(saved)
        model.train(was_training)
    return curves
