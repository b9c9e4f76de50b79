"""Bit-exact round trips of the numpy codecs (hypothesis over shapes, sparsities, blocks, dtypes)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.onnx.codecs import (
    decode_bsr,
    decode_csr,
    decode_delta,
    decode_int8,
    decode_ternary_bsr,
    decode_ternary_csr,
    decode_ternary_delta,
    encode_bsr,
    encode_csr,
    encode_delta,
    encode_int8,
    encode_ternary_bsr,
    encode_ternary_csr,
    encode_ternary_delta,
    pack_binary,
    pack_bits,
    pack_ternary,
    unpack_binary,
    unpack_bits,
    unpack_ternary,
)

SHAPES = st.lists(st.integers(1, 7), min_size=1, max_size=4).map(tuple)
DTYPES = st.sampled_from([np.float32, np.float16])
BLOCKS = st.tuples(st.integers(1, 5), st.integers(1, 5))
SEEDS = st.integers(0, 2**32 - 1)
DENSITIES = st.sampled_from([0.0, 0.01, 0.2, 0.5, 1.0])


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    uint = np.uint32 if a.dtype == np.float32 else np.uint16
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(uint), b.view(uint))


def _sparse(shape, dtype, density, seed) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape).astype(dtype)
    values[rng.random(shape) >= density] = 0
    return values


def _ternary(shape, dtype, density, seed) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = shape[0] if len(shape) > 1 else 1
    pos = rng.uniform(0.1, 2, (rows, 1)).astype(dtype)
    neg = -rng.uniform(0.1, 2, (rows, 1)).astype(dtype)
    codes = rng.integers(1, 3, (rows, int(np.prod(shape)) // rows)) * (rng.random((rows, 1)) < 2)
    codes[rng.random(codes.shape) >= density] = 0
    return np.where(codes == 1, pos, np.where(codes == 2, neg, dtype(0))).astype(dtype).reshape(shape)


@settings(max_examples=60, deadline=None)
@given(shape=SHAPES, dtype=DTYPES, density=DENSITIES, seed=SEEDS)
def test_codec_csr_round_trip_is_bit_exact(shape, dtype, density, seed):
    weight = _sparse(shape, dtype, density, seed)
    assert _same_bits(decode_csr(encode_csr(weight)), weight)


def test_codec_csr_stores_nan_but_not_negative_zero():
    weight = np.array([[0.0, -0.0, np.nan], [1.0, 0.0, 0.0]], dtype=np.float32)
    arrays = encode_csr(weight)
    assert arrays.values.shape == (2,)
    expected = weight.copy()
    expected[0, 1] = 0.0
    assert _same_bits(decode_csr(arrays), expected)


def test_codec_bsr_decodes_negative_zero_as_positive_zero():
    weight = np.array([[-0.0, 1.0], [-0.0, -0.0]], dtype=np.float32)
    decoded = decode_bsr(encode_bsr(weight, block=(1, 2)))
    assert _same_bits(decoded, np.array([[0.0, 1.0], [0.0, 0.0]], dtype=np.float32))


def test_codec_csr_uses_narrowest_index_dtypes():
    weight = np.zeros((3, 300), dtype=np.float32)
    weight[0, 299] = 1.0
    arrays = encode_csr(weight)
    assert arrays.col_indices.dtype == np.uint16
    assert arrays.row_ptrs.dtype == np.uint8


@settings(max_examples=60, deadline=None)
@given(shape=SHAPES, dtype=DTYPES, density=DENSITIES, seed=SEEDS, block=BLOCKS)
def test_codec_bsr_round_trip_is_bit_exact(shape, dtype, density, seed, block):
    weight = _sparse(shape, dtype, density, seed)
    arrays = encode_bsr(weight, block=block)
    assert arrays.values.shape[1:] == block
    assert _same_bits(decode_bsr(arrays), weight)


@settings(max_examples=60, deadline=None)
@given(shape=SHAPES, dtype=DTYPES, density=DENSITIES, seed=SEEDS)
def test_codec_ternary_round_trip_is_bit_exact(shape, dtype, density, seed):
    weight = _ternary(shape, dtype, density, seed)
    arrays = pack_ternary(weight)
    assert arrays.codes.nbytes == -(-weight.size // 4)
    assert _same_bits(unpack_ternary(arrays), weight)


@settings(max_examples=60, deadline=None)
@given(shape=SHAPES, dtype=DTYPES, density=DENSITIES, seed=SEEDS)
def test_codec_ternary_csr_round_trip_is_bit_exact(shape, dtype, density, seed):
    weight = _ternary(shape, dtype, density, seed)
    assert _same_bits(decode_ternary_csr(encode_ternary_csr(weight)), weight)


@settings(max_examples=60, deadline=None)
@given(shape=SHAPES, dtype=DTYPES, density=DENSITIES, seed=SEEDS, block=BLOCKS)
def test_codec_ternary_bsr_round_trip_is_bit_exact(shape, dtype, density, seed, block):
    weight = _ternary(shape, dtype, density, seed)
    assert _same_bits(decode_ternary_bsr(encode_ternary_bsr(weight, block=block)), weight)


@settings(max_examples=60, deadline=None)
@given(shape=SHAPES, dtype=DTYPES, seed=SEEDS)
def test_codec_binary_round_trip_is_bit_exact(shape, dtype, seed):
    weight = _ternary(shape, dtype, 1.0, seed)
    arrays = pack_binary(weight)
    assert arrays.codes.nbytes == -(-weight.size // 8)
    assert _same_bits(unpack_binary(arrays), weight)


@settings(max_examples=60, deadline=None)
@given(shape=SHAPES, seed=SEEDS)
def test_codec_int8_round_trip_is_bit_exact(shape, seed):
    rng = np.random.default_rng(seed)
    rows = shape[0] if len(shape) > 1 else 1
    scales = rng.uniform(1e-3, 1, rows).astype(np.float32)
    codes = rng.integers(-127, 128, (rows, int(np.prod(shape)) // rows)).astype(np.float32)
    weight = (codes * scales[:, None]).reshape(shape)
    arrays = encode_int8(weight, scales=scales)
    assert arrays.codes.dtype == np.int8
    assert _same_bits(decode_int8(arrays), weight)


@settings(max_examples=60, deadline=None)
@given(bits=st.sampled_from([1, 2, 4, 8]), count=st.integers(0, 40), seed=SEEDS)
def test_codec_unpack_bits_inverts_pack_bits(bits, count, seed):
    codes = np.random.default_rng(seed).integers(0, 2**bits, count).astype(np.uint8)
    packed = pack_bits(codes, bits=bits)
    assert packed.shape == (-(-count * bits // 8),)
    assert np.array_equal(unpack_bits(packed, bits=bits, count=count), codes)


def test_codec_ternary_stores_one_scale_when_scales_per_tensor():
    weight = np.array([[0.5, 0.0, -0.25], [0.0, 0.5, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    arrays = pack_ternary(weight)
    assert arrays.pos_scales.tolist() == [0.5] and arrays.neg_scales.tolist() == [-0.25]
    assert _same_bits(unpack_ternary(arrays), weight)


@settings(max_examples=60, deadline=None)
@given(shape=SHAPES, dtype=DTYPES, density=DENSITIES, seed=SEEDS)
def test_codec_delta_round_trip_is_bit_exact(shape, dtype, density, seed):
    weight = _sparse(shape, dtype, density, seed)
    assert _same_bits(decode_delta(encode_delta(weight)), weight)


@settings(max_examples=60, deadline=None)
@given(shape=SHAPES, dtype=DTYPES, density=DENSITIES, seed=SEEDS)
def test_codec_ternary_delta_round_trip_is_bit_exact(shape, dtype, density, seed):
    weight = _ternary(shape, dtype, density, seed)
    assert _same_bits(decode_ternary_delta(encode_ternary_delta(weight)), weight)


@pytest.mark.parametrize(("gap", "dtype", "entries"), [(255, np.uint8, 1), (256, np.uint16, 1), (5000, np.uint16, 1)])
def test_codec_delta_picks_narrowest_total_when_one_long_gap(gap, dtype, entries):
    weight = np.zeros(gap, dtype=np.float32)
    weight[-1] = 1.0
    arrays = encode_delta(weight)
    assert arrays.deltas.dtype == dtype and arrays.deltas.size == entries
    assert _same_bits(decode_delta(arrays), weight)


def test_codec_delta_splits_rare_long_gap_with_filler():
    weight = np.zeros(400, dtype=np.float32)
    weight[:100] = 1.0
    weight[399] = 2.0  # gap 300 > 255: one filler entry of gap 255, value 0
    arrays = encode_delta(weight)
    assert arrays.deltas.dtype == np.uint8 and arrays.deltas.size == 102
    assert arrays.values[100] == 0 and arrays.deltas[100] == 255
    assert _same_bits(decode_delta(arrays), weight)
