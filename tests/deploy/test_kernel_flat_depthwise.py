"""The flat-pixel depthwise convolution on the unpadded input: padding by masked loads, widths 4-28."""

import numpy as np
import pytest
import torch

from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.direct_conv import Epilogue
from deploy.tvm.kernels.flat_depthwise import flat_depthwise_fits, flat_depthwise_func


def _geometry(channels, width, kernel, *, stride=1):
    pad = kernel // 2
    return ConvGeometry(batch=1, channels=channels, height=width, width=width, out_channels=channels, kernel_h=kernel,
                        kernel_w=kernel, stride=(stride, stride), padding=(pad,) * 4, dilation=(1, 1))


@pytest.mark.parametrize("channels,width,kernel,vectors,residual", [
    (8, 7, 3, 3, True),  # tiles cross row ends; the last tile moved back
    (6, 14, 5, 4, False),  # padding 2
    (4, 4, 3, 1, True),  # one vector covers the whole 4x4 image
    (3, 28, 3, 4, False),
])
def test_flat_depthwise_matches_torch_with_fused_clip(channels, width, kernel, vectors, residual):
    import tvm

    from deploy.tvm.targets import build_tvm_target, get_target

    geometry = _geometry(channels, width, kernel)
    rng = np.random.default_rng(0)
    x = 3 * rng.standard_normal((1, channels, width, width)).astype(np.float32)
    weight = rng.standard_normal((channels, 1, kernel, kernel)).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32)
    res = rng.standard_normal(x.shape).astype(np.float32) if residual else np.zeros((1, 1, 1, 1), np.float32)
    func = flat_depthwise_func(geometry=geometry, lanes=16, vectors=vectors,
                               epilogue=Epilogue(residual=residual, activation="clip", clip_min=0.0, clip_max=6.0))
    library = tvm.compile(tvm.IRModule({"dw": func.with_attr("global_symbol", "dw")}), target=build_tvm_target(get_target("host")))
    tensors = [tvm.runtime.tensor(np.ascontiguousarray(a)) for a in (x, weight.reshape(-1), bias, res, np.full(x.shape, np.nan, np.float32))]
    library["dw"](*tensors)
    expected = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(weight), torch.tensor(bias), padding=kernel // 2,
                                          groups=channels).numpy()
    expected = np.clip(expected + (res if residual else 0), 0, 6)
    np.testing.assert_allclose(tensors[-1].numpy(), expected, rtol=1e-4, atol=1e-4)


def test_flat_depthwise_fits_only_stride_one_same_convolutions_of_a_full_tile():
    assert flat_depthwise_fits(_geometry(4, 8, 3), lanes=16, vectors=4)
    assert not flat_depthwise_fits(_geometry(4, 8, 3, stride=2), lanes=16, vectors=1)
    assert not flat_depthwise_fits(_geometry(4, 3, 3), lanes=16, vectors=1)  # 9 pixels < one vector
    with pytest.raises(ValueError, match="stride-1"):
        flat_depthwise_func(geometry=_geometry(4, 8, 3, stride=2), lanes=16, vectors=1, epilogue=Epilogue())
