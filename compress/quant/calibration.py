"""Calibration of activation ranges: the largest ``|x|`` a layer's input and output reach on a few batches.

Post-training range estimation by running min / max (Krishnamoorthi, "Quantizing deep convolutional
networks for efficient inference: A whitepaper", arXiv 1806.08342, 2018, sec. 3.1; the "MinMax"
calibrator of TFLite and onnxruntime), made symmetric::

    r_input(L)  = max over batches b of max |x_b|        (the tensor entering layer L)
    r_output(L) = max over batches b of max |L(x_b)|     (the tensor it produces)

Each range becomes one per-tensor scale ``r / 127`` (``compress.quant.fake_quant.symmetric_scale``).
The observation is a pair of forward hooks per layer, removed when calibration ends; the model runs
in eval mode without gradients and is left in the mode it had.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Iterable

import torch
from torch import nn


@dataclass
class ActivationRange:
    """Largest magnitudes seen at one layer: ``input_max`` (its first input) and ``output_max``."""

    input_max: float = 0.0
    output_max: float = 0.0


def _magnitude(value) -> float:
    tensor = value[0] if isinstance(value, (tuple, list)) else value
    return float(tensor.detach().abs().max()) if tensor.numel() else 0.0


@torch.no_grad()
def observe_ranges(model: nn.Module, layers: list[str], batches: Iterable, *, num_batches: int) -> dict[str, ActivationRange]:
    """Run ``num_batches`` batches through ``model`` and record each layer's input / output range.

    Args:
        model: the model (weights as they will be quantized, e.g. with their int8 parametrizations).
        layers: module names to observe.
        batches: an iterable of ``inputs`` or ``(inputs, targets)``; only the first ``num_batches`` are read.
        num_batches: how many batches to observe (>= 1).

    Returns:
        ``{module name: ActivationRange}``.

    Raises:
        ValueError: when ``num_batches < 1``, a name is not a module, or no batch was read.
    """
    if num_batches < 1:
        raise ValueError(f"calibration needs at least one batch, got num_batches={num_batches}")
    ranges = {name: ActivationRange() for name in layers}
    handles = [_observe(model.get_submodule(name), ranges[name]) for name in layers]
    was_training = model.training
    model.eval()
    seen = 0
    try:
        for batch in islice(batches, num_batches):
            inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
            model(inputs)
            seen += 1
    finally:
        for pre, post in handles:
            pre.remove()
            post.remove()
        model.train(was_training)
    if seen == 0:
        raise ValueError("calibration read no batch: the training data is empty")
    return ranges


def _observe(module: nn.Module, record: ActivationRange):
    def before(_module, args):
        record.input_max = max(record.input_max, _magnitude(args))

    def after(_module, _args, output):
        record.output_max = max(record.output_max, _magnitude(output))

    return module.register_forward_pre_hook(before), module.register_forward_hook(after)
