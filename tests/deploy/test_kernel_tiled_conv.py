"""The flat-pixel tiled convolution: ImageNet widths, strides, padding, unstructured weights, tile choice, arm64."""

import numpy as np
import pytest
import torch

from deploy.tvm.conv_tiles import choose_conv_tile
from deploy.tvm.conv_weights import encode_conv_taps
from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.direct_conv import Epilogue, phase_pad_func
from deploy.tvm.kernels.tiled_conv import PixelTile, flat_pixels, row_segments, tiled_conv_func

CASES = [  # channels, width, out_channels, kernel, stride, padding, tile (rows, vectors, lanes), residual
    (4, 7, 16, 3, 1, 1, (8, 3, 16), True),  # 7 wide: one vector spans three grid rows
    (4, 14, 12, 3, 1, 1, (8, 2, 16), False),  # partial last block row (12 = 8 + 4)
    (3, 28, 8, 3, 2, 1, (4, 3, 16), True),  # stride 2 through the phase planes
    (2, 56, 8, 1, 1, 0, (8, 2, 16), False),  # no gap columns: plain vector stores
    (3, 14, 8, 5, 1, 2, (1, 5, 8), True),  # one-row blocks (unstructured), 8 lanes
    (2, 16, 8, 3, 2, 0, (2, 2, 16), False),  # no padding, stride 2, 8x8 output
]


def _geometry(channels, width, out_channels, kernel, stride, padding, batch=1):
    return ConvGeometry(batch=batch, channels=channels, height=width, width=width, out_channels=out_channels,
                        kernel_h=kernel, kernel_w=kernel, stride=(stride, stride), padding=(padding,) * 4, dilation=(1, 1))


def _sparse(shape, *, keep_ratio, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * (rng.random(shape) < keep_ratio)).astype(np.float32)


def _run(geometry, weight, tile, *, residual):
    import tvm

    from deploy.tvm.targets import build_tvm_target, get_target

    taps = encode_conv_taps(weight, geometry=geometry, vector=tile.lanes, vector_floats=16, rows=tile.block_rows)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((geometry.batch, geometry.channels, geometry.height, geometry.width)).astype(np.float32)
    bias = rng.standard_normal(geometry.out_channels).astype(np.float32)
    out_shape = (geometry.batch, geometry.out_channels, geometry.out_height, geometry.out_width)
    res = rng.standard_normal(out_shape).astype(np.float32) if residual else np.zeros((1, 1, 1, 1), np.float32)
    conv = tiled_conv_func(geometry=geometry, tile=tile, nnz_blocks=taps.nnz_blocks,
                           epilogue=Epilogue(residual=residual, activation="relu"))
    module = tvm.IRModule({"pad": phase_pad_func(geometry=geometry).with_attr("global_symbol", "pad"),
                           "conv": conv.with_attr("global_symbol", "conv")})
    library = tvm.compile(module, target=build_tvm_target(get_target("host")))
    tensors = [tvm.runtime.tensor(np.ascontiguousarray(a)) for a in (
        x, np.zeros((geometry.batch, geometry.phase_size), np.float32), taps.data, taps.offsets, taps.indptr, bias, res,
        np.full(out_shape, np.nan, np.float32))]
    library["pad"](tensors[0], tensors[1])
    library["conv"](*tensors[1:])
    top, left, bottom, right = geometry.padding
    expected = torch.nn.functional.conv2d(torch.nn.functional.pad(torch.tensor(x), (left, right, top, bottom)),
                                          torch.tensor(weight), torch.tensor(bias), stride=geometry.stride).numpy()
    return tensors[-1].numpy(), np.maximum(expected + (res if residual else 0), 0)


@pytest.mark.parametrize("case", CASES)
def test_tiled_conv_matches_torch_and_writes_every_output_once(case):
    channels, width, out_channels, kernel, stride, padding, tile, residual = case
    geometry = _geometry(channels, width, out_channels, kernel, stride, padding)
    weight = _sparse((out_channels, channels, kernel, kernel), keep_ratio=0.4, seed=1)
    actual, expected = _run(geometry, weight, PixelTile(*tile), residual=residual)
    assert not np.isnan(actual).any()  # masked stores reached every output pixel
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_tiled_conv_matches_torch_when_batch_is_two():
    geometry = _geometry(3, 10, 8, 3, 1, 1, batch=2)
    weight = _sparse((8, 3, 3, 3), keep_ratio=1.0, seed=2)
    actual, expected = _run(geometry, weight, PixelTile(4, 2, 16), residual=True)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_tiled_conv_rejects_a_tile_wider_than_the_image():
    with pytest.raises(ValueError, match="does not fit"):
        tiled_conv_func(geometry=_geometry(2, 3, 4, 3, 1, 1), tile=PixelTile(4, 2, 16), nnz_blocks=1, epilogue=Epilogue())


def test_row_segments_count_grid_rows_one_vector_touches():
    assert row_segments(_geometry(2, 7, 4, 3, 1, 1), 16) == 3  # rows of 9 grid columns
    assert row_segments(_geometry(2, 56, 4, 3, 1, 1), 16) == 2
    assert row_segments(_geometry(2, 56, 4, 1, 1, 0), 16) == 1  # no gap columns
    assert flat_pixels(_geometry(2, 7, 4, 3, 1, 1)) == 6 * 9 + 7


def test_tile_choice_is_register_blocked_for_dense_and_short_for_unstructured_weights():
    geometry = _geometry(32, 28, 64, 3, 1, 1)
    rng = np.random.default_rng(3)
    dense = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
    dense_tile = choose_conv_tile(dense, geometry=geometry, vector_floats=16).tile
    unstructured = choose_conv_tile(_sparse((64, 32, 3, 3), keep_ratio=0.08, seed=4), geometry=geometry, vector_floats=16).tile
    assert dense_tile.block_rows * dense_tile.vectors >= 16 and dense_tile.vectors >= 2
    assert unstructured.block_rows < dense_tile.block_rows


def test_tile_choice_fits_the_registers_of_the_target_and_small_images():
    rng = np.random.default_rng(5)
    weight = rng.standard_normal((64, 16, 3, 3)).astype(np.float32)
    avx2 = choose_conv_tile(weight, geometry=_geometry(16, 28, 64, 3, 1, 1), vector_floats=8).tile
    assert avx2.lanes == 8 and avx2.block_rows * avx2.vectors <= 12
    small = choose_conv_tile(weight, geometry=_geometry(16, 4, 64, 3, 1, 1), vector_floats=16).tile
    assert small.pixels <= flat_pixels(_geometry(16, 4, 64, 3, 1, 1))
    assert choose_conv_tile(weight, geometry=_geometry(16, 1, 64, 3, 1, 1), vector_floats=16) is None


@pytest.mark.slow
def test_tiled_conv_runs_under_qemu_on_arm64_like_the_host_build(tmp_path):
    """A 14-wide padded conv (masked stores, which NEON emulates) cross-compiled for arm64 and run under qemu."""
    import tvm
    from tvm import relax

    from deploy.tvm.bundle import make_arm64_bundle, verify_arm64_bundle
    from deploy.tvm.compile import compile_onnx

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 8, 3, padding=1)).eval()
    with torch.no_grad():
        net[2].weight.mul_((torch.rand(net[2].weight.shape) < 0.1).float())
    path = tmp_path / "model.onnx"
    torch.onnx.export(net, (torch.randn(1, 3, 14, 14),), str(path), opset_version=17, input_names=["input"], dynamo=False)
    host = compile_onnx(path, target="host", out_dir=tmp_path / "host", input_shape=(1, 3, 14, 14))
    arm = compile_onnx(path, target="arm64", out_dir=tmp_path / "arm64", input_shape=(1, 3, 14, 14))
    assert all("flat pixel tiles" in layer.choice.reason for layer in arm.layers)
    bundle = make_arm64_bundle(arm.library_path, bundle_dir=tmp_path / "bundle", input_name=arm.input_name,
                               input_shape=arm.input_shape)
    x = np.random.default_rng(6).standard_normal((1, 3, 14, 14)).astype(np.float32)
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(host.library_path)), tvm.cpu())
    expected = vm["main"](tvm.runtime.tensor(x)).numpy()
    assert verify_arm64_bundle(bundle, x, expected, atol=1e-4).max_abs_error <= 1e-4
