"""MAC and parameter counts of conv / linear layers, measured with forward hooks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from compress.prune import channel_ops as ops


@dataclass(frozen=True)
class ComputeCount:
    """Per-sample multiply-accumulates and parameter counts.

    Attributes:
        macs: dense MACs of conv / linear layers (what a dense kernel executes).
        nonzero_macs: "theoretical" MACs, ``nnz(W) * output positions`` per layer.
        params: all parameters of the model.
        nonzero_params: non-zero parameters of the model.
    """

    macs: int
    nonzero_macs: int
    params: int
    nonzero_params: int

    def to_dict(self) -> dict[str, int]:
        return {"macs": self.macs, "nonzero_macs": self.nonzero_macs, "params": self.params, "nonzero_params": self.nonzero_params}


def _layer_macs(module: nn.Module, output: torch.Tensor) -> tuple[int, int]:
    batch = output.shape[0]
    if isinstance(module, nn.Linear):
        positions = output.numel() // (batch * module.out_features)
        dense = positions * module.out_features * module.in_features
    else:
        positions = math.prod(output.shape[2:])
        dense = positions * module.out_channels * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    return dense, positions * int(module.weight.ne(0).sum())


@torch.no_grad()
def count_compute(model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> ComputeCount:
    """MACs per sample (each layer's count excludes the batch dim) and parameter counts.

    Conv: ``H_out W_out * C_out * C_in/groups * kh kw``; linear: ``out * in`` per position.
    """
    totals = [0, 0]

    def hook(module: nn.Module, _inputs, output: torch.Tensor) -> None:
        dense, nonzero = _layer_macs(module, output)
        totals[0] += dense
        totals[1] += nonzero

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, ops.CONVS + (nn.Linear,))]
    was_training = model.training
    try:
        model.eval()
        model(*example_inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    params = sum(p.numel() for p in model.parameters())
    nonzero = sum(int(p.ne(0).sum()) for p in model.parameters())
    return ComputeCount(totals[0], totals[1], params, nonzero)
