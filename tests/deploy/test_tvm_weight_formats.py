"""Weight encoders for our kernels: exact round trips and ternary detection."""

import numpy as np
import pytest

from deploy.tvm.weight_formats import (block_sparsity, decode_sparse, decode_ternary, detect_ternary, encode_bsr,
                                       encode_csr)


def _block_sparse(rows=32, cols=40, block_rows=8, keep=0.2, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.repeat(rng.random((rows // block_rows, 1, cols)) < keep, block_rows, axis=1).reshape(rows, cols)
    return (rng.standard_normal((rows, cols)) * mask).astype(np.float32)


@pytest.mark.parametrize("block_rows", [1, 4, 8, 16])
def test_weight_formats_bsr_round_trip_is_exact(block_rows):
    weight = _block_sparse(block_rows=8)
    arrays = encode_bsr(weight, block_rows=block_rows)
    np.testing.assert_array_equal(decode_sparse(arrays, shape=weight.shape), weight)


def test_weight_formats_bsr_stores_one_zero_block_when_weight_is_all_zero():
    arrays = encode_bsr(np.zeros((16, 8), np.float32), block_rows=8)
    assert arrays.data.shape == (1, 8) and arrays.indptr[-1] == 0


def test_weight_formats_csr_round_trip_is_exact_with_rows_padded_to_unroll():
    weight = _block_sparse(block_rows=1, keep=0.3)
    arrays = encode_csr(weight, unroll=4)
    assert np.all(np.diff(arrays.indptr) % 4 == 0)
    np.testing.assert_array_equal(decode_sparse(arrays, shape=weight.shape), weight)


def test_weight_formats_block_sparsity_counts_all_zero_blocks():
    weight = np.zeros((8, 4), np.float32)
    weight[0, 0] = 1.0
    assert block_sparsity(weight, block_rows=4) == pytest.approx(1 - 1 / 8)


def test_weight_formats_detect_ternary_recovers_codes_and_two_scales():
    rng = np.random.default_rng(1)
    codes = rng.integers(-1, 2, size=(6, 20)).astype(np.float32)
    pos, neg = rng.uniform(0.5, 1.0, (6, 1)), rng.uniform(0.1, 0.4, (6, 1))
    weight = np.where(codes > 0, pos, neg).astype(np.float32) * codes
    arrays = detect_ternary(weight)
    assert arrays.codes.dtype == np.int8 and arrays.codes.shape == (20, 6)
    np.testing.assert_allclose(decode_ternary(arrays), weight, rtol=1e-6)


def test_weight_formats_detect_ternary_returns_none_when_values_vary():
    assert detect_ternary(np.random.default_rng(2).standard_normal((8, 8)).astype(np.float32)) is None


def test_weight_formats_detect_ternary_returns_none_when_at_most_one_nonzero_per_row():
    assert detect_ternary(np.eye(8, dtype=np.float32)) is None
