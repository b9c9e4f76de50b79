"""Decoders reject malformed input with OnnxFormatError, never another exception."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.onnx.codecs import (
    BsrArrays,
    CsrArrays,
    DeltaArrays,
    Int8Arrays,
    SparseTernaryArrays,
    TernaryArrays,
    decode_bsr,
    decode_csr,
    decode_delta,
    decode_int8,
    decode_ternary_bsr,
    decode_ternary_csr,
    encode_csr,
    pack_ternary,
    unpack_binary,
    unpack_bits,
    unpack_ternary,
)
from deploy.onnx.errors import OnnxFormatError

U8, U16, F32 = np.uint8, np.uint16, np.float32


def _csr(values, cols, ptrs, shape=(2, 3)) -> CsrArrays:
    return CsrArrays(np.asarray(values, F32), np.asarray(cols, U8), np.asarray(ptrs, U8), shape)


@pytest.mark.parametrize(
    "arrays",
    [
        _csr([1.0], [0], [0, 1]),  # row_ptrs too short
        _csr([1.0], [0], [1, 1, 1]),  # does not start at 0
        _csr([1.0, 2.0], [0, 1], [0, 2, 1]),  # does not end at nnz
        _csr([1.0, 2.0], [0, 1], [0, 3, 2]),  # decreasing
        _csr([1.0], [3], [0, 1, 1]),  # column out of range
        _csr([1.0, 2.0], [1, 1], [0, 2, 2]),  # duplicate column
        _csr([1.0, 2.0], [0], [0, 1, 1]),  # values longer than indices
        CsrArrays(np.ones(1, F32), np.zeros(1, np.int64), np.asarray([0, 1, 1], U8), (2, 3)),  # int64 cols
        CsrArrays(np.ones(1, np.int32), np.zeros(1, U8), np.asarray([0, 1, 1], U8), (2, 3)),  # int values
        _csr([1.0], [0], [0, 1, 1], shape=(-2, 3)),  # negative dim
        _csr([1.0], [0], [0, 1, 1], shape=(2**20, 2**20)),  # absurd size
    ],
)
def test_codec_decode_csr_raises_format_error_when_malformed(arrays):
    with pytest.raises(OnnxFormatError):
        decode_csr(arrays)


def test_codec_decode_bsr_raises_format_error_when_padding_is_nonzero():
    arrays = BsrArrays(np.ones((1, 2, 2), F32), np.zeros(1, U8), np.asarray([0, 1], U8), (1, 2))
    with pytest.raises(OnnxFormatError, match="padding"):
        decode_bsr(arrays)


def test_codec_decode_bsr_raises_format_error_when_values_not_3d():
    arrays = BsrArrays(np.ones((1, 4), F32), np.zeros(1, U8), np.asarray([0, 1], U8), (2, 2))
    with pytest.raises(OnnxFormatError, match="nblocks"):
        decode_bsr(arrays)


@pytest.mark.parametrize(
    ("packed", "bits", "count"),
    [(np.zeros(2, U8), 2, 4), (np.full(1, 0xF0, U8), 2, 2), (np.zeros(1, U16), 1, 8), (np.zeros(1, U8), 3, 2)],
)
def test_codec_unpack_bits_raises_format_error_when_malformed(packed, bits, count):
    with pytest.raises(OnnxFormatError):
        unpack_bits(packed, bits=bits, count=count)


def test_codec_unpack_ternary_raises_format_error_when_code_is_three():
    arrays = TernaryArrays(np.asarray([0b11], U8), np.ones(1, F32), -np.ones(1, F32), (1, 1))
    with pytest.raises(OnnxFormatError, match="0, 1 or 2"):
        unpack_ternary(arrays)


def test_codec_unpack_ternary_raises_format_error_when_scales_have_wrong_length():
    packed = pack_ternary(np.asarray([[1.0, -1.0], [0.0, 2.0]], F32))
    three = np.concatenate([packed.pos_scales, packed.pos_scales[:1]])
    arrays = TernaryArrays(packed.codes, three, packed.neg_scales, packed.shape)
    with pytest.raises(OnnxFormatError, match="pos_scales"):
        unpack_ternary(arrays)


def test_codec_pack_ternary_raises_format_error_when_row_has_two_positive_values():
    with pytest.raises(OnnxFormatError, match="row 0"):
        pack_ternary(np.asarray([[1.0, 2.0]], F32))


def test_codec_decode_int8_raises_format_error_when_codes_not_int8():
    with pytest.raises(OnnxFormatError, match="int8"):
        decode_int8(Int8Arrays(np.zeros((2, 2), np.int16), np.ones(2, F32)))


def test_codec_decode_csr_error_names_the_bad_column():
    with pytest.raises(OnnxFormatError, match="got max 7"):
        decode_csr(_csr([1.0], [7], [0, 1, 1]))


ARRAYS = st.builds(
    lambda dtype, data: np.asarray(data).astype(dtype),
    st.sampled_from([U8, U16, np.uint32, np.int64, F32]),
    st.lists(st.integers(0, 300), max_size=12),
)
SMALL_SHAPES = st.lists(st.integers(-1, 6), min_size=0, max_size=3).map(tuple)


@settings(max_examples=150, deadline=None)
@given(values=ARRAYS, cols=ARRAYS, ptrs=ARRAYS, shape=SMALL_SHAPES, scales=ARRAYS)
def test_codec_decoders_raise_only_format_error_when_fuzzed(values, cols, ptrs, shape, scales):
    decoders = [
        lambda: decode_csr(CsrArrays(values, cols, ptrs, shape)),
        lambda: decode_delta(DeltaArrays(values, cols, shape)),
        lambda: decode_bsr(BsrArrays(values.reshape(-1, 1, 1) if values.size else values, cols, ptrs, shape)),
        lambda: decode_ternary_csr(SparseTernaryArrays(values, cols, ptrs, scales, scales, shape)),
        lambda: decode_ternary_bsr(SparseTernaryArrays(values, cols, ptrs, scales, scales, shape, (1, 2))),
        lambda: unpack_binary(TernaryArrays(values, scales, scales, shape)),
        lambda: unpack_ternary(TernaryArrays(values, scales, scales, shape)),
    ]
    for decode in decoders:
        try:
            result = decode()
        except OnnxFormatError:
            continue
        assert isinstance(result, np.ndarray) and result.shape == shape


def test_codec_decode_csr_accepts_its_own_encoding_after_fuzz_guards():
    weight = np.asarray([[0.0, 1.5, 0.0], [2.5, 0.0, 0.0]], F32)
    assert np.array_equal(decode_csr(encode_csr(weight)), weight)


@pytest.mark.parametrize(
    ("deltas", "match"),
    [(np.asarray([1, 0], U8), ">= 1"), (np.asarray([3, 4], U8), "past the"), (np.asarray([1], np.int32), "uint8")],
)
def test_codec_decode_delta_raises_format_error_when_deltas_malformed(deltas, match):
    with pytest.raises(OnnxFormatError, match=match):
        decode_delta(DeltaArrays(np.ones(deltas.size, F32), deltas, (2, 3)))
