"""Input normalisation as a layer, so that attacks work in the raw pixel range [lo, hi]."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class Normalize(nn.Module):
    """Per-channel standardisation ``(x - mean) / std`` placed *inside* the model.

    Attacks (FGSM / IFGSM / PGD) perturb and clip inputs in the raw pixel range, so the
    normalisation that training pipelines usually apply to the data must move into the network.
    Wrap a model as ``nn.Sequential(Normalize(mean=..., std=...), model)``.

    Args:
        mean: One value per input channel.
        std: One strictly positive value per input channel, same length as ``mean``.
    """

    def __init__(self, *, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        mean_t = torch.as_tensor(list(mean), dtype=torch.float32)
        std_t = torch.as_tensor(list(std), dtype=torch.float32)
        if mean_t.dim() != 1 or mean_t.numel() == 0 or mean_t.shape != std_t.shape:
            raise ValueError(
                f"mean and std must be non-empty 1-D sequences of equal length; got mean={list(mean)}, std={list(std)}"
            )
        if bool((std_t <= 0).any()):
            raise ValueError(f"std must be strictly positive per channel; got std={list(std)}")
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1))
        self.register_buffer("std", std_t.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.mean.shape[1]:
            raise ValueError(
                f"Normalize expects input (N, {self.mean.shape[1]}, H, W); got shape {tuple(x.shape)}"
            )
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"
