"""Ternary / binary / int8 code kernels against a numpy reference: detection, packing, linear and conv."""

import numpy as np
import pytest

from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.direct_conv import ConvTile, Epilogue, phase_pad_func
from deploy.tvm.kernels.ternary_conv import ternary_conv_func
from deploy.tvm.kernels.int8_linear import int8_linear_func
from deploy.tvm.kernels.ternary_linear import TernaryLinearShape, ternary_linear_func
from deploy.tvm.quantized_weights import (detect_int8, detect_ternary, linear_scales, pack_conv_codes, pack_int8_linear,
                                          pack_linear_codes, padded, unpack_linear_codes)


def _codes(shape, *, binary, keep_ratio, rows, rng):
    codes = rng.choice([-1, 1] if binary else [-1, 0, 1], size=shape).astype(np.int8)
    if keep_ratio < 1:
        keep = np.repeat(rng.random((-(-shape[0] // rows), shape[1])) < keep_ratio, rows, axis=0)[: shape[0]]
        codes = codes * keep
    return codes


def _weight(codes, *, asymmetric, rng):
    pos = (rng.random(codes.shape[0]) + 0.5).astype(np.float32)
    neg = (rng.random(codes.shape[0]) + 0.5).astype(np.float32) if asymmetric else pos
    return (pos[:, None] * (codes == 1) - neg[:, None] * (codes == -1)).astype(np.float32)


def _int8_weight(shape, *, keep_ratio, rows, rng):
    codes = rng.integers(-127, 128, size=shape).astype(np.int8)
    codes[:, 0] = 127  # every channel reaches the top level, as project_int8 writes it
    if keep_ratio < 1:
        keep = np.repeat(rng.random((-(-shape[0] // rows), shape[1])) < keep_ratio, rows, axis=0)[: shape[0]]
        keep[:, 0] = True
        codes = codes * keep
    scale = (rng.random(shape[0]) * 0.01 + 0.001).astype(np.float32)
    return (codes * scale[:, None]).astype(np.float32)


def _build(*funcs):
    import tvm

    from deploy.tvm.targets import build_tvm_target, get_target

    module = tvm.IRModule({name: func.with_attr("global_symbol", name) for name, func in funcs})
    return tvm.compile(module, target=build_tvm_target(get_target("host")))


def _tensors(*arrays):
    import tvm

    return [tvm.runtime.tensor(np.ascontiguousarray(a)) for a in arrays]


def test_detect_ternary_returns_codes_and_scales_when_channels_have_one_magnitude_each():
    rng = np.random.default_rng(0)
    codes = _codes((6, 20), binary=False, keep_ratio=1.0, rows=1, rng=rng)
    weight = _weight(codes, asymmetric=True, rng=rng)
    found = detect_ternary(weight)
    assert found is not None and found.scheme == "ternary"
    np.testing.assert_array_equal(found.dequantize(), weight)


def test_detect_ternary_calls_a_sign_only_weight_binary():
    rng = np.random.default_rng(1)
    weight = _weight(_codes((4, 9), binary=True, keep_ratio=1.0, rows=1, rng=rng), asymmetric=False, rng=rng)
    assert detect_ternary(weight).scheme == "binary"


@pytest.mark.parametrize("weight", [np.array([[0.5, -0.5, 0.25]], np.float32), np.zeros((2, 3), np.float32),
                                    np.array([[1.0, np.nan]], np.float32)])
def test_detect_ternary_returns_none_for_float_zero_or_non_finite_weights(weight):
    assert detect_ternary(weight) is None


def test_detect_int8_returns_codes_and_scales_of_a_symmetric_per_channel_weight():
    rng = np.random.default_rng(2)
    weight = _int8_weight((5, 30), keep_ratio=1.0, rows=1, rng=rng)
    found = detect_int8(weight)
    assert found is not None and detect_ternary(weight) is None
    np.testing.assert_allclose(found.codes * found.scale[:, None], weight, rtol=1e-6)
    assert detect_int8(weight + np.float32(0.3) * found.scale[:, None]) is None


def test_linear_scales_store_one_scale_when_the_layer_has_one_magnitude():
    weight = np.array([[0.5, 0.0, -0.5], [0.0, 0.5, 0.5]], np.float32)
    mode, pos_scale, neg_scale = linear_scales(detect_ternary(weight), 8)
    assert mode == "uniform" and pos_scale.tolist() == [0.5] and neg_scale.size == 1


@pytest.mark.parametrize("rows", [16, 8, 1])
@pytest.mark.parametrize("binary", [False, True])
def test_pack_linear_codes_roundtrips_exactly(rows, binary):
    rng = np.random.default_rng(rows)
    codes = _codes((21, 37), binary=binary, keep_ratio=1.0 if binary else 0.3, rows=rows, rng=rng)
    packed = pack_linear_codes(codes, block_rows=rows, scheme="binary" if binary else "ternary", unroll=4)
    assert packed.dense == binary
    np.testing.assert_array_equal(unpack_linear_codes(packed, shape=codes.shape, scheme="binary" if binary else "ternary"), codes)


LINEAR_CASES = [  # out, in, keep ratio, rows, binary, asymmetric
    (50, 80, 0.1, 16, False, False),
    (10, 36, 1.0, 16, False, True),
    (37, 64, 1.0, 8, True, False),
    (13, 30, 0.4, 4, False, True),
]


def _linear_case(case):
    out_features, in_features, keep_ratio, rows, binary, asymmetric = case
    rng = np.random.default_rng(3)
    weight = _weight(_codes((out_features, in_features), binary=binary, keep_ratio=keep_ratio, rows=rows, rng=rng),
                     asymmetric=asymmetric, rng=rng)
    found = detect_ternary(weight)
    packed = pack_linear_codes(found.codes, block_rows=rows, scheme=found.scheme, unroll=1)  # remainder loop runs
    length = -(-out_features // rows) * rows
    mode, pos_scale, neg_scale = linear_scales(found, length)
    assert mode == ("asymmetric" if asymmetric else "symmetric")
    shape = TernaryLinearShape(batch=2, in_features=in_features, out_features=out_features, block_rows=rows,
                               nnz_blocks=packed.nnz_blocks, scheme=found.scheme, dense=packed.dense,
                               index_dtype=str(packed.indices.dtype) if packed.indices is not None else "int32",
                               scale_mode=mode)
    x = rng.standard_normal((2, in_features)).astype(np.float32)
    bias = rng.standard_normal(out_features).astype(np.float32)
    arrays = [x, packed.words] + ([] if packed.dense else [packed.indices, packed.indptr])
    arrays += [pos_scale, neg_scale, padded(bias, length)]
    func = ternary_linear_func(shape=shape, unroll=4, epilogue=Epilogue(activation="relu"))
    return func, arrays, np.maximum(x @ weight.T + bias, 0)


INT8_LINEAR_CASES = [(40, 64, 0.2, 16), (10, 36, 1.0, 8)]  # out, in, keep ratio, rows


def _int8_linear_case(case):
    out_features, in_features, keep_ratio, rows = case
    rng = np.random.default_rng(5)
    weight = _int8_weight((out_features, in_features), keep_ratio=keep_ratio, rows=rows, rng=rng)
    found = detect_int8(weight)
    packed = pack_int8_linear(found, block_rows=rows, unroll=4)
    assert packed.dense == (keep_ratio == 1.0)
    length = -(-out_features // rows) * rows
    func = int8_linear_func(batch=2, in_features=in_features, out_features=out_features, block_rows=rows,
                            nnz_blocks=packed.words.size // rows, unroll=4, epilogue=Epilogue(activation="relu"),
                            dense=packed.dense, index_dtype=str(packed.indices.dtype) if packed.indices is not None else "int32")
    x = rng.standard_normal((2, in_features)).astype(np.float32)
    bias = rng.standard_normal(out_features).astype(np.float32)
    indices = packed.indices if packed.indices is not None else np.zeros(1, np.int32)
    indptr = packed.indptr if packed.indptr is not None else np.zeros(1, np.int32)
    arrays = [x, packed.words, indices, indptr, padded(found.scale, length), padded(bias, length)]
    return func, arrays, np.maximum(x @ weight.T + bias, 0)


@pytest.fixture(scope="module")
def linear_cases():
    cases = [_linear_case(case) for case in LINEAR_CASES] + [_int8_linear_case(case) for case in INT8_LINEAR_CASES]
    return _build(*((f"linear_{i}", func) for i, (func, _, _) in enumerate(cases))), cases


@pytest.mark.parametrize("index", range(len(LINEAR_CASES) + len(INT8_LINEAR_CASES)))
def test_code_linear_matches_numpy_with_fused_bias_and_relu(linear_cases, index):
    library, cases = linear_cases
    _, arrays, expected = cases[index]
    (y,) = _tensors(np.zeros(expected.shape, np.float32))
    library[f"linear_{index}"](*_tensors(*arrays), y)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)


def _numpy_conv(x, weight, bias, geometry):
    top, left, bottom, right = geometry.padding
    padded_x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    out = np.zeros((x.shape[0], weight.shape[0], geometry.out_height, geometry.out_width), np.float32)
    stride_h, stride_w = geometry.stride
    for ky in range(geometry.kernel_h):
        for kx in range(geometry.kernel_w):
            window = padded_x[:, :, ky : ky + stride_h * geometry.out_height : stride_h, kx : kx + stride_w * geometry.out_width : stride_w]
            out += np.einsum("nchw,oc->nohw", window, weight[:, :, ky, kx])
    return out + bias[None, :, None, None]


CONV_CASES = [  # channels, size, out, kernel, stride, padding, keep ratio, binary (or "int8"), asymmetric
    (20, 12, 50, 5, (1, 1), (0, 0, 0, 0), 0.2, False, True),
    (3, 8, 16, 3, (1, 1), (1, 1, 1, 1), 1.0, False, False),
    (5, 10, 12, 3, (2, 2), (1, 1, 1, 1), 1.0, True, False),
    (6, 8, 12, 3, (1, 1), (1, 1, 1, 1), 0.3, "int8", False),
]


def _conv_case(case):
    channels, size, out_channels, kernel, stride, padding, keep_ratio, binary, asymmetric = case
    rng = np.random.default_rng(4)
    geometry = ConvGeometry(batch=2, channels=channels, height=size, width=size, out_channels=out_channels,
                            kernel_h=kernel, kernel_w=kernel, stride=stride, padding=padding, dilation=(1, 1))
    if binary == "int8":
        flat = _int8_weight((out_channels, channels * kernel * kernel), keep_ratio=keep_ratio, rows=8, rng=rng)
    else:
        flat = _weight(_codes((out_channels, channels * kernel * kernel), binary=binary, keep_ratio=keep_ratio, rows=8, rng=rng),
                       asymmetric=asymmetric, rng=rng)
    weight = flat.reshape(out_channels, channels, kernel, kernel)
    found = detect_ternary(weight) if binary != "int8" else detect_int8(weight)
    vector = next(v for v in (8, 4, 2, 1) if geometry.out_width % v == 0)
    packed = pack_conv_codes(found, shape=weight.shape, geometry=geometry, vector=vector, vector_floats=8)
    conv = ternary_conv_func(geometry=geometry, tile=ConvTile(packed.block_rows, vector), layout=packed.layout,
                             epilogue=Epilogue(residual=True, activation="relu"))
    x = rng.standard_normal((2, channels, size, size)).astype(np.float32)
    bias = rng.standard_normal(out_channels).astype(np.float32)
    out_shape = (2, out_channels, geometry.out_height, geometry.out_width)
    residual = rng.standard_normal(out_shape).astype(np.float32)
    offsets = packed.offsets if packed.offsets is not None else np.zeros(1, packed.layout.offset_dtype)
    indptr = packed.indptr if packed.indptr is not None else np.zeros(1, np.int32)
    length = -(-out_channels // packed.block_rows) * packed.block_rows
    arrays = [packed.words, offsets, indptr, padded(found.pos_scale, length), padded(found.neg_scale, length), bias, residual]
    expected = np.maximum(_numpy_conv(x, weight, bias, geometry) + residual, 0)
    return (phase_pad_func(geometry=geometry), conv), (geometry, x, arrays), expected


@pytest.fixture(scope="module")
def conv_cases():
    cases = [_conv_case(case) for case in CONV_CASES]
    funcs = [item for i, ((pad, conv), _, _) in enumerate(cases) for item in ((f"pad_{i}", pad), (f"conv_{i}", conv))]
    return _build(*funcs), cases


@pytest.mark.parametrize("index", range(len(CONV_CASES)))
def test_code_conv_matches_numpy_with_fused_residual_and_relu(conv_cases, index):
    library, cases = conv_cases
    _, (geometry, x, arrays), expected = cases[index]
    xq, y = _tensors(np.zeros((x.shape[0], geometry.phase_size), np.float32), np.zeros(expected.shape, np.float32))
    library[f"pad_{index}"](*_tensors(x), xq)
    library[f"conv_{index}"](xq, *_tensors(*arrays), y)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-4)
