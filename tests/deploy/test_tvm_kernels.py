"""Numerics of our TIR kernels (BSR, CSR, ternary) against numpy, batch 1 and batch > 1."""

import numpy as np
import pytest

from deploy.tvm.layer_bench import layer_module, random_block_sparse, run_layer

SHAPES = [(1, 48, 64), (6, 48, 64), (16, 40, 24)]


def _x(batch, in_features, seed=3):
    return np.random.default_rng(seed).standard_normal((batch, in_features)).astype(np.float32)


@pytest.mark.parametrize("batch,in_features,out_features", SHAPES)
@pytest.mark.parametrize("block_rows", [4, 8])
def test_kernels_bsr_matches_numpy(batch, in_features, out_features, block_rows):
    weight = random_block_sparse(out_features=out_features, in_features=in_features, block_rows=block_rows,
                                 sparsity_ratio=0.8)
    x = _x(batch, in_features)
    out = run_layer(layer_module(weight, batch=batch, kernel="sparse-bsr", block_rows=block_rows), x)
    np.testing.assert_allclose(out, x @ weight.T, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch,in_features,out_features", SHAPES)
def test_kernels_csr_matches_numpy(batch, in_features, out_features):
    weight = random_block_sparse(out_features=out_features, in_features=in_features, block_rows=1,
                                 sparsity_ratio=0.9, seed=4)
    x = _x(batch, in_features)
    out = run_layer(layer_module(weight, batch=batch, kernel="sparse-csr"), x)
    np.testing.assert_allclose(out, x @ weight.T, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch,in_features,out_features", SHAPES)
def test_kernels_ternary_matches_numpy_with_asymmetric_scales(batch, in_features, out_features):
    rng = np.random.default_rng(5)
    codes = rng.integers(-1, 2, size=(out_features, in_features)).astype(np.float32)
    weight = (np.where(codes > 0, rng.uniform(0.5, 1, (out_features, 1)), rng.uniform(0.1, 0.5, (out_features, 1)))
              * codes).astype(np.float32)
    x = _x(batch, in_features)
    out = run_layer(layer_module(weight, batch=batch, kernel="ternary"), x)
    np.testing.assert_allclose(out, x @ weight.T, rtol=1e-5, atol=1e-5)


def test_kernels_ternary_module_stores_int8_codes_not_float_weights():
    weight = np.sign(np.random.default_rng(6).standard_normal((16, 32))).astype(np.float32) * 0.5
    mod = layer_module(weight, batch=1, kernel="ternary")
    constants = [str(c.value.dtype) for c in _constants(mod["main"])]
    assert "int8" in constants
    assert not any(c.value.shape == (32, 16) and str(c.value.dtype) == "float32" for c in _constants(mod["main"]))


def test_kernels_bsr_matches_numpy_when_weight_is_all_zero():
    weight = np.zeros((16, 8), np.float32)
    out = run_layer(layer_module(weight, batch=2, kernel="sparse-bsr", block_rows=8), _x(2, 8))
    np.testing.assert_array_equal(out, np.zeros((2, 16), np.float32))


def _constants(func):
    from tvm import relax
    from tvm.ir.expr import GenericConst

    found = []
    relax.analysis.post_order_visit(func, lambda e: found.append(e) if isinstance(e, GenericConst) else None)
    return found
