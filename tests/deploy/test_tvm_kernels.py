"""Our TIR kernels against torch: direct / depthwise convolution, block linear, and their encodings."""

import numpy as np
import pytest
import torch

from deploy.tvm.conv_weights import best_tile_rows, decode_conv_taps, encode_conv_taps, tile_rows
from deploy.tvm.kernels.block_linear import block_linear_func
from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.direct_conv import ConvTile, Epilogue, depthwise_conv_func, direct_conv_func, phase_pad_func
from deploy.tvm.linear_weights import (LINEAR_UNROLL, best_linear_block_rows, decode_linear_blocks, encode_linear_blocks,
                                       linear_block_rows)

CONV_CASES = [  # channels, size, out_channels, kernel, stride, padding, dilation
    (3, 8, 16, 3, (1, 1), (1, 1, 1, 1), (1, 1)),
    (5, 10, 12, 3, (2, 2), (1, 1, 1, 1), (1, 1)),
    (4, 8, 10, 1, (2, 2), (0, 0, 0, 0), (1, 1)),
    (3, 9, 8, 3, (1, 2), (2, 2, 2, 2), (2, 2)),
    (6, 7, 50, 5, (1, 1), (2, 2, 2, 2), (1, 1)),
]


def _vector(geometry):
    return next(v for v in (8, 4, 2, 1) if geometry.out_width % v == 0)


def _build(*funcs):
    import tvm

    from deploy.tvm.targets import build_tvm_target, get_target

    module = tvm.IRModule({name: func.with_attr("global_symbol", name) for name, func in funcs})
    return tvm.compile(module, target=build_tvm_target(get_target("host")))


def _tensors(*arrays):
    import tvm

    return [tvm.runtime.tensor(np.ascontiguousarray(a)) for a in arrays]


def _geometry(channels, size, out_channels, kernel, stride, padding, dilation, batch=2):
    return ConvGeometry(batch=batch, channels=channels, height=size, width=size, out_channels=out_channels,
                        kernel_h=kernel, kernel_w=kernel, stride=stride, padding=padding, dilation=dilation)


def _block_sparse(shape, *, rows, keep_ratio, seed):
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal(shape).astype(np.float32)
    flat = weight.reshape(shape[0], -1)
    padded = -(-shape[0] // rows) * rows
    keep = np.repeat(rng.random((padded // rows, flat.shape[1])) < keep_ratio, rows, axis=0)[: shape[0]]
    return (flat * keep).reshape(shape).astype(np.float32)


def _torch_conv(x, weight, bias, geometry, *, groups=1):
    top, left, bottom, right = geometry.padding
    padded = torch.nn.functional.pad(torch.tensor(x), (left, right, top, bottom))
    return torch.nn.functional.conv2d(padded, torch.tensor(weight), torch.tensor(bias), stride=geometry.stride,
                                      dilation=geometry.dilation, groups=groups).numpy()


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("keep_ratio", [1.0, 0.2])
def test_direct_conv_matches_torch_with_fused_residual_and_relu(case, keep_ratio):
    geometry = _geometry(*case)
    vector = _vector(geometry)
    weight = _block_sparse((geometry.out_channels, geometry.channels, geometry.kernel_h, geometry.kernel_w),
                           rows=tile_rows(geometry.out_channels, vector=vector, vector_floats=8), keep_ratio=keep_ratio, seed=1)
    taps = encode_conv_taps(weight, geometry=geometry, vector=vector, vector_floats=8)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((geometry.batch, geometry.channels, geometry.height, geometry.width)).astype(np.float32)
    bias = rng.standard_normal(geometry.out_channels).astype(np.float32)
    out_shape = (geometry.batch, geometry.out_channels, geometry.out_height, geometry.out_width)
    residual = rng.standard_normal(out_shape).astype(np.float32)
    conv = direct_conv_func(geometry=geometry, tile=ConvTile(taps.block_rows, vector), nnz_blocks=taps.nnz_blocks,
                            epilogue=Epilogue(residual=True, activation="relu"))
    library = _build(("pad", phase_pad_func(geometry=geometry)), ("conv", conv))
    xq, y = _tensors(np.zeros((geometry.batch, geometry.phase_size), np.float32), np.zeros(out_shape, np.float32))
    library["pad"](*_tensors(x), xq)
    library["conv"](xq, *_tensors(taps.data, taps.offsets, taps.indptr, bias, residual), y)
    expected = np.maximum(_torch_conv(x, weight, bias, geometry) + residual, 0)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stride", [(1, 1), (2, 2)])
def test_depthwise_conv_matches_torch_with_fused_clip(stride):
    geometry = ConvGeometry(batch=1, channels=6, height=8, width=8, out_channels=6, kernel_h=3, kernel_w=3,
                            stride=stride, padding=(1, 1, 1, 1), dilation=(1, 1))
    rng = np.random.default_rng(2)
    x = 4 * rng.standard_normal((1, 6, 8, 8)).astype(np.float32)
    weight = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    out_shape = (1, 6, geometry.out_height, geometry.out_width)
    conv = depthwise_conv_func(geometry=geometry, vector=4, epilogue=Epilogue(activation="clip", clip_min=0.0, clip_max=6.0))
    library = _build(("pad", phase_pad_func(geometry=geometry)), ("conv", conv))
    xq, y = _tensors(np.zeros((1, geometry.phase_size), np.float32), np.zeros(out_shape, np.float32))
    library["pad"](*_tensors(x), xq)
    library["conv"](xq, *_tensors(weight.reshape(-1), bias, np.zeros((1, 1, 1, 1), np.float32)), y)
    expected = np.clip(_torch_conv(x, weight, bias, geometry, groups=6), 0, 6)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("out_features,in_features,keep_ratio", [(50, 40, 1.0), (64, 96, 0.1), (3, 7, 1.0)])
def test_block_linear_matches_numpy_with_partial_last_block(out_features, in_features, keep_ratio):
    rows = linear_block_rows(out_features, vector_floats=16)
    weight = _block_sparse((out_features, in_features), rows=rows, keep_ratio=keep_ratio, seed=3)
    blocks = encode_linear_blocks(weight, block_rows=rows)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, in_features)).astype(np.float32)
    bias = np.zeros((len(blocks.indptr) - 1) * rows, np.float32)
    bias[:out_features] = rng.standard_normal(out_features)
    func = block_linear_func(batch=2, in_features=in_features, out_features=out_features, block_rows=rows,
                             nnz_blocks=blocks.nnz_blocks, unroll=LINEAR_UNROLL, epilogue=Epilogue(activation="relu"))
    y = _tensors(np.zeros((2, out_features), np.float32))[0]
    _build(("linear", func))["linear"](*_tensors(x, blocks.data, blocks.indices, blocks.indptr, bias), y)
    np.testing.assert_allclose(y.numpy(), np.maximum(x @ weight.T + bias[:out_features], 0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_taps_round_trip_is_exact_and_skip_zero_blocks(case):
    geometry = _geometry(*case)
    vector = _vector(geometry)
    weight = _block_sparse((geometry.out_channels, geometry.channels, geometry.kernel_h, geometry.kernel_w),
                           rows=tile_rows(geometry.out_channels, vector=vector, vector_floats=8), keep_ratio=0.3, seed=5)
    taps = encode_conv_taps(weight, geometry=geometry, vector=vector, vector_floats=8)
    rows = taps.block_rows
    assert np.array_equal(decode_conv_taps(taps, geometry=geometry, shape=weight.shape), weight)
    assert taps.nnz_blocks == np.count_nonzero(np.any(
        np.concatenate([weight.reshape(weight.shape[0], -1),
                        np.zeros(((-weight.shape[0]) % rows, weight[0].size), np.float32)]).reshape(-1, rows, weight[0].size) != 0, axis=1))


def test_conv_taps_of_an_all_zero_weight_keep_one_zero_block():
    geometry = _geometry(2, 4, 8, 3, (1, 1), (1, 1, 1, 1), (1, 1))
    taps = encode_conv_taps(np.zeros((8, 2, 3, 3), np.float32), geometry=geometry, vector=4, vector_floats=8)
    assert taps.nnz_blocks == 1 and not taps.data.any() and taps.zero_block_ratio == 1.0


def test_linear_blocks_round_trip_is_exact_with_lists_padded_to_the_unroll():
    weight = _block_sparse((20, 33), rows=8, keep_ratio=0.25, seed=6)
    blocks = encode_linear_blocks(weight, block_rows=8)
    assert np.array_equal(decode_linear_blocks(blocks, shape=weight.shape), weight)
    assert all((blocks.indptr[i + 1] - blocks.indptr[i]) % LINEAR_UNROLL == 0 for i in range(len(blocks.indptr) - 1))


def test_strided_one_by_one_conv_keeps_a_single_phase_plane():
    geometry = _geometry(4, 8, 8, 1, (2, 2), (0, 0, 0, 0), (1, 1))
    assert geometry.phases == (1, 1) and geometry.phase_size == 4 * 4 * 4


def test_tile_height_stays_largest_for_block_sparse_and_shrinks_for_unstructured_weights():
    block = _block_sparse((32, 16, 3, 3), rows=16, keep_ratio=0.1, seed=7)
    assert best_tile_rows(block, vector=8, vector_floats=16) == 16
    rng = np.random.default_rng(8)
    unstructured = (rng.standard_normal((32, 16, 3, 3)) * (rng.random((32, 16, 3, 3)) < 0.1)).astype(np.float32)
    assert best_tile_rows(unstructured, vector=8, vector_floats=16) == 8


def test_linear_block_height_is_tall_for_dense_and_short_for_unstructured_weights():
    rng = np.random.default_rng(9)
    dense = rng.standard_normal((64, 96)).astype(np.float32)
    unstructured = (dense * (rng.random(dense.shape) < 0.1)).astype(np.float32)
    assert best_linear_block_rows(dense, vector_floats=16) == 16
    assert best_linear_block_rows(unstructured, vector_floats=16) < 16
