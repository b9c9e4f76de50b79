"""ONNX files as users export them (dynamic batch, height and width; shape arithmetic in the graph)
compile for a static input shape and match onnxruntime."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deploy.tvm.compile import compile_onnx

ATOL = 1e-4


class SamePadConv(nn.Conv2d):
    """TF-style "same" padding computed from ``x.shape`` in ``forward`` (third-party EfficientNet-B0 code)."""

    def forward(self, x):
        height, width = x.shape[-2:]
        pad_h = max((math.ceil(height / self.stride[0]) - 1) * self.stride[0] + self.kernel_size[0] - height, 0)
        pad_w = max((math.ceil(width / self.stride[1]) - 1) * self.stride[1] + self.kernel_size[1] - width, 0)
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class SamePadNet(nn.Module):
    """Stem, depthwise conv, squeeze-excite and swish, all with run-time "same" padding."""

    def __init__(self):
        super().__init__()
        self.stem = SamePadConv(3, 8, 3, stride=2)
        self.depthwise = SamePadConv(8, 8, 5, stride=2, groups=8)
        self.excite = nn.Conv2d(8, 8, 1)
        self.classifier = nn.Linear(8, 10)

    def forward(self, x):
        x = self.stem(x)
        x = x * torch.sigmoid(x)
        x = self.depthwise(x)
        x = x * torch.sigmoid(x)
        x = x * torch.sigmoid(self.excite(x.mean((2, 3), keepdim=True)))
        return self.classifier(x.mean((2, 3)))


class GridHead(nn.Module):
    """YOLO-style detector: three scales, each decoding boxes on a grid built with ``arange`` /
    ``meshgrid`` from the feature-map size, concatenated."""

    def __init__(self, outputs: int = 6):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 2, 1)
        self.downs = nn.ModuleList(nn.Conv2d(8, 8, 3, 2, 1) for _ in range(3))
        self.heads = nn.ModuleList(nn.Conv2d(8, outputs, 1) for _ in range(3))
        self.outputs = outputs

    def forward(self, x):
        x, scales = self.stem(x), []
        for down, head, stride in zip(self.downs, self.heads, (4, 8, 16)):
            x = down(x)
            y = head(x)
            batch, _, height, width = y.shape
            grid_y, grid_x = torch.meshgrid(torch.arange(height, dtype=torch.float32),
                                            torch.arange(width, dtype=torch.float32), indexing="ij")
            grid = torch.stack((grid_x, grid_y), 0).view(1, 2, height * width)
            y = y.view(batch, self.outputs, height * width)
            scales.append(torch.cat(((y[:, :2].sigmoid() * 2 + grid) * stride, y[:, 2:].sigmoid()), 1))
        return torch.cat(scales, 2)


class UNetDecoder(nn.Module):
    """U-Net-style decoder: nearest ``Resize`` to the skip's size, bilinear upsampling, skip concat."""

    def __init__(self):
        super().__init__()
        self.encode1, self.encode2 = nn.Conv2d(3, 8, 3, 1, 1), nn.Conv2d(8, 16, 3, 2, 1)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.decode = nn.Conv2d(24, 8, 3, 1, 1)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        skip = F.relu(self.encode1(x))
        low = F.relu(self.encode2(skip))
        nearest = F.interpolate(low, size=skip.shape[-2:], mode="nearest")
        return self.out(F.relu(self.decode(torch.cat([skip, nearest], 1)))) + self.out(F.relu(self.decode(torch.cat([skip, self.up(low)], 1))))


def export_dynamic(model, path, shape, *, opset=17):
    """``torch.onnx.export`` with dynamic batch, height and width, as users ship detectors."""
    torch.manual_seed(0)
    model.eval()
    torch.onnx.export(model, (torch.randn(*shape),), str(path), dynamo=False, opset_version=opset,
                      input_names=["images"], output_names=["output"],
                      dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch"}})
    return path


def _onnxruntime(path, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _tvm(library, x):
    from deploy.runtimes import load_session

    return load_session("tvm", library).run_one(x)


@pytest.mark.parametrize("model,shape,opset", [
    pytest.param(SamePadNet, (1, 3, 30, 34), 17, id="same-padding"),
    pytest.param(UNetDecoder, (2, 3, 24, 20), 17, id="unet-resize"),
    pytest.param(UNetDecoder, (1, 3, 16, 12), 11, id="unet-resize-opset11"),  # Resize with sizes and empty scales
])
def test_compile_matches_onnxruntime_when_onnx_has_dynamic_axes_and_shape_arithmetic(tmp_path, model, shape, opset):
    path = export_dynamic(model(), tmp_path / "model.onnx", (1, 3, 32, 32), opset=opset)
    result = compile_onnx(path, target="host", out_dir=tmp_path / "host", input_shape=shape)
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    np.testing.assert_allclose(_tvm(result.library_path, x), _onnxruntime(path, x), rtol=0, atol=ATOL)


@pytest.fixture(scope="module")
def grid_head(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid-head")
    return export_dynamic(GridHead(), root / "detector.onnx", (1, 3, 64, 64)), root


def test_compile_matches_onnxruntime_when_a_detector_builds_its_grid_from_the_feature_map_size(grid_head):
    path, root = grid_head
    shape = (1, 3, 96, 64)
    result = compile_onnx(path, target="host", out_dir=root / "host", input_shape=shape)
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    expected = _onnxruntime(path, x)
    assert expected.shape == (1, 6, 24 * 16 + 12 * 8 + 6 * 4)
    np.testing.assert_allclose(_tvm(result.library_path, x), expected, rtol=0, atol=ATOL)


@pytest.mark.slow
def test_compile_arm64_bundle_matches_onnxruntime_under_qemu_for_the_detector(grid_head):
    import shutil

    from deploy.tvm.bundle import make_arm64_bundle, run_arm64_bundle

    if shutil.which("qemu-aarch64") is None:
        pytest.skip("qemu-aarch64 not installed (apt-get install qemu-user)")
    path, root = grid_head
    shape = (1, 3, 64, 64)
    arm = compile_onnx(path, target="arm64", out_dir=root / "arm64", input_shape=shape)
    bundle = make_arm64_bundle(arm.library_path, bundle_dir=root / "bundle", input_name=arm.input_name, input_shape=shape)
    x = np.random.default_rng(2).random(shape, dtype=np.float32)
    np.testing.assert_allclose(run_arm64_bundle(bundle, x[None]), _onnxruntime(path, x).reshape(1, -1), rtol=0, atol=ATOL)
