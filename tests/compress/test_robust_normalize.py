"""Tests for compress.robust.normalize.Normalize."""

from __future__ import annotations

import pytest
import torch

from compress.robust import Normalize


def test_normalize_standardises_each_channel():
    layer = Normalize(mean=[0.5, 0.0], std=[0.25, 2.0])
    x = torch.rand(3, 2, 4, 4)
    out = layer(x)
    assert torch.allclose(out[:, 0], (x[:, 0] - 0.5) / 0.25)
    assert torch.allclose(out[:, 1], x[:, 1] / 2.0)


def test_normalize_raises_when_std_is_not_positive():
    with pytest.raises(ValueError, match=r"std must be strictly positive per channel; got std=\[1.0, 0.0\]"):
        Normalize(mean=[0.0, 0.0], std=[1.0, 0.0])


def test_normalize_raises_when_lengths_differ():
    with pytest.raises(ValueError, match="equal length"):
        Normalize(mean=[0.0, 0.0], std=[1.0])


def test_normalize_raises_when_input_channels_mismatch():
    with pytest.raises(ValueError, match=r"expects input \(N, 3, H, W\); got shape \(1, 1, 2, 2\)"):
        Normalize(mean=[0.0] * 3, std=[1.0] * 3)(torch.zeros(1, 1, 2, 2))


def test_normalize_moves_with_the_model_state_dict():
    layer = Normalize(mean=[0.1], std=[0.3])
    assert set(layer.state_dict()) == {"mean", "std"}
