"""Per-layer latency tables: one layer compiled alone through the compile path, cached per CPU and kernels."""

import pytest
import torch

from compress.types import BlockShape
from deploy.bench.layer_latency import LayerShape, cache_path, layer_module, layer_table


def test_layer_module_zeroes_the_requested_share_of_blocks():
    module = layer_module(LayerShape("linear", 64, 32), 0.75, precision="ternary", block=BlockShape(16, 1))
    weight = module[0].weight
    assert float((weight == 0).float().mean()) == pytest.approx(0.75, abs=1e-6)
    assert torch.allclose(torch.unique(weight.abs()), torch.tensor([0.0, 0.05]))
    blocks = weight.reshape(2, 16, 64).abs().sum(dim=1)  # 16x1 blocks: whole column segments zero
    assert int((blocks == 0).sum()) == round(0.75 * 2 * 64)


def test_layer_table_measures_the_compiled_kernel_and_reuses_its_cache(tmp_path):
    shape = LayerShape("linear", 128, 64)
    first = layer_table(shape, [0.0, 0.9], precision="fp32", runs=5, warmup=2, cache_dir=tmp_path)
    assert not first["cached"]
    assert all(s >= 0 for s in first["seconds"])
    assert first["kernels"] == ["block-linear", "block-linear"]
    again = layer_table(shape, [0.0, 0.9], precision="fp32", runs=5, warmup=2, cache_dir=tmp_path)
    assert again["cached"] and again["seconds"] == first["seconds"]
    assert cache_path(tmp_path).exists() and cache_path(tmp_path).parent == tmp_path


def test_layer_table_rejects_unknown_precision_and_levels(tmp_path):
    with pytest.raises(ValueError, match="precision"):
        layer_table(LayerShape("linear", 8, 8), [0.5], precision="int4", cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        layer_table(LayerShape("linear", 8, 8), [1.0], cache_dir=tmp_path)


def test_weight_bytes_fall_with_sparsity_and_precision():
    shape = LayerShape("conv", 20, 50, kernel=5, height=12, width=12)
    block = BlockShape(16, 1)
    assert shape.weight_bytes(0.9, precision="fp32", block=block) < shape.weight_bytes(0.5, precision="fp32", block=block)
    assert shape.weight_bytes(0.5, precision="ternary", block=block) < shape.weight_bytes(0.5, precision="fp32", block=block)
