"""export_onnx on small models: BN folding, residual adds, concats, every encoding, parity, metadata."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from compress.models import create_model
from compress.types import BlockShape, QuantRecord, SparsityLayout
from deploy.onnx import OnnxFormatError, densify, export_onnx, read_compressed_weights, read_layouts, read_preprocess
from deploy.onnx.decode_functions import DOMAIN
from deploy.onnx.parity import onnxruntime_session, run_onnx
from deploy.onnx.torch_export import export_dense


class ResidualNet(nn.Module):
    """conv-BN-relu stem, one residual block with BN, global pool, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        x = torch.relu(x + self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return self.fc(x.mean(dim=(2, 3)))


class ConcatNet(nn.Module):
    """Two conv branches concatenated on channels, then a 1x1 conv and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.left = nn.Conv2d(3, 4, 3, padding=1)
        self.right = nn.Conv2d(3, 6, 1)
        self.mix = nn.Conv2d(10, 8, 1)
        self.head = nn.Linear(8 * 6 * 6, 5)

    def forward(self, x):
        x = self.mix(torch.cat([torch.relu(self.left(x)), self.right(x)], dim=1))
        return self.head(torch.flatten(x, 1))


def _randomize_bn(model: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=gen) + 0.5)


@torch.no_grad()
def _sparsify(model: nn.Module, *, keep_ratio: float, ternary: bool = False, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            w = module.weight
            w.mul_((torch.rand(w.shape, generator=gen) < keep_ratio).float())
            if ternary:
                alpha = w.abs().flatten(1).amax(dim=1).clamp_min(1e-3)
                w.copy_(torch.sign(w) * alpha.view(-1, *[1] * (w.dim() - 1)))
    return model


def _residual(**kwargs) -> nn.Module:
    torch.manual_seed(0)
    model = ResidualNet()
    _randomize_bn(model)
    return _sparsify(model, **kwargs).eval()


def _batch(shape=(4, 3, 6, 6), seed: int = 1) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("encoding", ["auto", "dense", "csr", "bsr", "delta", "ternary"])
def test_onnx_export_parity_within_1e4_when_residual_net_with_bn(tmp_path, encoding):
    model, batch = _residual(keep_ratio=0.2, ternary=True), _batch()
    result = export_onnx(model, batch, tmp_path / "m.onnx", encoding=encoding)
    assert result.max_abs_error <= 1e-4
    assert result.path.exists() and result.path.stat().st_size == result.sizes.compressed_bytes
    ternary = {"ternary", "ternary-csr", "ternary-delta"}
    expected = {"dense": {"dense"}, "csr": {"csr"}, "bsr": {"bsr"}, "delta": {"delta"}, "ternary": ternary}
    formats = {record["format"] for record in result.layers}
    assert formats <= expected.get(encoding, formats)


def test_onnx_export_parity_within_1e4_when_concat_net(tmp_path):
    torch.manual_seed(0)
    model, batch = _sparsify(ConcatNet(), keep_ratio=0.1).eval(), _batch()
    result = export_onnx(model, batch, tmp_path / "m.onnx")
    assert result.max_abs_error <= 1e-4
    assert [r["fqn"] for r in result.layers] == ["left.weight", "right.weight", "mix.weight", "head.weight"]


def test_onnx_export_folds_bn_and_maps_weights_to_fqn(tmp_path):
    result = export_onnx(_residual(keep_ratio=0.5), _batch(), tmp_path / "m.onnx")
    model = onnx.load(result.path)
    assert not any(node.op_type == "BatchNormalization" for node in model.graph.node)
    records = read_layouts(model)
    assert [r["fqn"] for r in records] == ["stem.weight", "conv1.weight", "conv2.weight", "fc.weight"]
    assert [r["op"] for r in records] == ["Conv", "Conv", "Conv", "Gemm"]
    assert records[0]["shape"] == [8, 3, 3, 3]


def test_onnx_export_compressed_arrays_decode_to_dense_weights_bit_exact(tmp_path):
    model, batch = _residual(keep_ratio=0.2, ternary=True), _batch()
    reference = export_dense(model, batch, opset=17)
    result = export_onnx(model, batch, tmp_path / "m.onnx")
    decoded = read_compressed_weights(onnx.load(result.path))
    dense = {init.name: numpy_helper.to_array(init) for init in reference.graph.initializer}
    assert set(decoded) == {r["initializer"] for r in result.layers}
    for name, weight in decoded.items():
        expected = np.where(dense[name] == 0, np.float32(0), dense[name])  # -0.0 is stored as +0.0
        assert np.array_equal(weight.view(np.uint32), expected.view(np.uint32)), name


def test_onnx_export_decode_subgraphs_constant_folded_when_session_created(tmp_path):
    result = export_onnx(_residual(keep_ratio=0.2, ternary=True), _batch(), tmp_path / "m.onnx")
    onnxruntime_session(onnx.load(result.path), optimized_path=tmp_path / "opt.onnx")
    optimized = onnx.load(tmp_path / "opt.onnx")
    op_types = {node.op_type for node in optimized.graph.node}
    assert op_types.isdisjoint({"ScatterElements", "ScatterND", "BitShift", "CumSum", "TernaryCsr", "Csr"})
    assert "Conv" in op_types


def test_onnx_export_batch_dimension_dynamic(tmp_path):
    model = _residual(keep_ratio=0.3)
    result = export_onnx(model, _batch((2, 3, 6, 6)), tmp_path / "m.onnx")
    bigger = _batch((7, 3, 6, 6), seed=5)
    actual = run_onnx(onnx.load(result.path), bigger.numpy())
    with torch.no_grad():
        expected = model(bigger).numpy()
    assert actual.shape == (7, 10) and np.max(np.abs(actual - expected)) <= 1e-4


def test_onnx_export_densify_keeps_outputs_and_uses_plain_initializers(tmp_path):
    batch = _batch()
    result = export_onnx(_residual(keep_ratio=0.2, ternary=True), batch, tmp_path / "m.onnx")
    compressed = onnx.load(result.path)
    dense = densify(compressed)
    onnx.checker.check_model(dense, full_check=True)
    assert not dense.functions and all(node.domain != DOMAIN for node in dense.graph.node)
    names = {init.name for init in dense.graph.initializer}
    assert {r["initializer"] for r in result.layers} <= names
    difference = run_onnx(dense, batch.numpy()) - run_onnx(compressed, batch.numpy())
    assert np.max(np.abs(difference)) <= 1e-6  # same weights; onnxruntime may fuse differently


def test_onnx_export_size_table_smaller_when_weights_sparse(tmp_path):
    result = export_onnx(_residual(keep_ratio=0.05, ternary=True), _batch(), tmp_path / "m.onnx")
    sizes = result.sizes
    assert sizes.compressed_bytes < sizes.dense_bytes
    assert sizes.ratio == pytest.approx(sizes.dense_bytes / sizes.compressed_bytes)
    assert 0 < sizes.compressed_gzip_bytes <= sizes.compressed_bytes + 64
    assert len(sizes.layers) == 4 and all(layer.stored_bytes < layer.dense_bytes for layer in sizes.layers)
    assert [layer.nnz for layer in sizes.layers] == [r["nnz"] for r in result.layers]


def test_onnx_export_writes_preprocess_metadata(tmp_path):
    preprocess = {"mean": [0.1307], "std": [0.3081], "layout": "NCHW"}
    result = export_onnx(_residual(keep_ratio=0.5), _batch(), tmp_path / "m.onnx", preprocess=preprocess)
    assert read_preprocess(onnx.load(result.path)) == preprocess


def test_onnx_export_uses_bsr_when_layout_has_blocks(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(256, 128)).eval()
    with torch.no_grad():
        mask = (torch.rand(32, 64) < 0.1).float().repeat_interleave(4, 0).repeat_interleave(4, 1)
        model[1].weight.mul_(mask)
    layout = SparsityLayout("1.weight", "block", BlockShape(4, 4), int(mask.sum()), 256 * 128)
    result = export_onnx(model, torch.randn(2, 256), tmp_path / "m.onnx", layouts=[layout])
    assert result.layers[0]["format"] == "bsr" and result.layers[0]["block"] == [4, 4]
    assert result.max_abs_error <= 1e-4


def test_onnx_export_uses_int8_when_forced_and_weights_are_quantized(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6)).eval()
    scales = torch.rand(6) * 0.1 + 0.01
    with torch.no_grad():
        model[1].weight.copy_(torch.randint(-127, 128, (6, 12)).float() * scales[:, None])
    record = QuantRecord("1.weight", "int8", 8, (6, 12), tuple(scales.tolist()))
    result = export_onnx(model, torch.randn(3, 12), tmp_path / "m.onnx", encoding="int8", quant=[record])
    assert result.layers[0]["format"] == "int8" and result.layers[0]["bits"] == 8
    assert any(n.op_type == "DequantizeLinear" for n in onnx.load(result.path).graph.node)
    assert result.max_abs_error <= 1e-4
    dense = densify(onnx.load(result.path))
    assert not any(n.op_type == "DequantizeLinear" for n in dense.graph.node)
    assert np.array_equal(numpy_helper.to_array(dense.graph.initializer[-1]), model[1].weight.detach().numpy())


def test_onnx_export_packs_one_bit_per_weight_when_forced_binary(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.sign(torch.randn(16, 64)) * 0.125)
    result = export_onnx(model, torch.randn(3, 64), tmp_path / "m.onnx", encoding="binary")
    assert result.layers[0]["format"] == "binary" and result.layers[0]["bits"] == 1
    codes = [i for i in onnx.load(result.path).graph.initializer if i.name == result.layers[0]["arrays"]["codes"]]
    assert list(codes[0].dims) == [16 * 64 // 8]
    assert result.max_abs_error <= 1e-4


def test_onnx_export_lenet5_maps_all_weights(tmp_path):
    torch.manual_seed(0)
    model = _sparsify(create_model("lenet5"), keep_ratio=0.05, ternary=True).eval()
    result = export_onnx(model, torch.randn(2, 1, 28, 28), tmp_path / "m.onnx")
    assert [r["fqn"] for r in result.layers] == ["0.weight", "3.weight", "7.weight", "9.weight"]
    assert result.max_abs_error <= 1e-4 and result.sizes.ratio > 5


def test_onnx_export_raises_naming_weight_when_forced_ternary_on_float_weights(tmp_path):
    with pytest.raises(OnnxFormatError, match="stem.weight"):
        export_onnx(_residual(keep_ratio=0.5), _batch(), tmp_path / "m.onnx", encoding="ternary")


@pytest.mark.parametrize(("kwargs", "match"), [({"opset": 13}, "opset"), ({"encoding": "zip"}, "zip")])
def test_onnx_export_raises_format_error_when_arguments_bad(tmp_path, kwargs, match):
    with pytest.raises(OnnxFormatError, match=match):
        export_onnx(_residual(keep_ratio=0.5), _batch(), tmp_path / "m.onnx", **kwargs)
