"""The goal search's per-layer curves: layer shapes, the sensitivity cache in the run directory, precisions."""

from __future__ import annotations

import torch

from pipeline.goal.config import Goals
from pipeline.goal.curves import layer_shapes, sensitivity_curves
from tests.pipeline.tiny import tiny_cnn


def test_layer_shapes_are_what_each_kernel_sees():
    shapes = layer_shapes(tiny_cnn(), torch.zeros(1, 1, 8, 8))
    conv, hidden, head = shapes["0.weight"], shapes["4.weight"], shapes["6.weight"]
    assert (conv.kind, conv.in_channels, conv.out_channels, conv.kernel, conv.padding, conv.height) == ("conv", 1, 8, 3, 1, 8)
    assert (hidden.kind, hidden.in_channels, hidden.out_channels) == ("linear", 128, 32)
    assert (head.in_channels, head.out_channels) == (32, 10)


def test_sensitivity_is_cached_in_the_run_directory_and_reused_only_for_the_same_sweep(tmp_path):
    torch.manual_seed(0)
    model = tiny_cnn()
    calls = []

    def evaluate(m):
        calls.append(1)
        return float(m[0].weight.detach().abs().sum())  # any score that moves with the weights

    goals = Goals(min_speedup=2.0, levels=(0.0, 0.5, 0.9), block=(8, 1))
    first = sensitivity_curves(model, ["0.weight", "4.weight"], goals, evaluate, cache_dir=tmp_path, model_digest="abc", log=print)
    assert not first["cached"] and (tmp_path / "sensitivity.json").exists()
    assert first["curves"]["0.weight"][0] == 0.0 and first["curves"]["0.weight"][2] > first["curves"]["0.weight"][1] > 0
    evaluated = len(calls)
    again = sensitivity_curves(model, ["0.weight", "4.weight"], goals, evaluate, cache_dir=tmp_path, model_digest="abc", log=print)
    assert again["cached"] and again["curves"] == first["curves"] and len(calls) == evaluated  # nothing evaluated
    other = sensitivity_curves(model, ["0.weight", "4.weight"], goals, evaluate, cache_dir=tmp_path, model_digest="another model", log=print)
    assert not other["cached"] and len(calls) > evaluated  # another model: measured again
