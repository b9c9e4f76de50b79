"""Ternary code kernels keep TVM's no-alias compute scope (TVM 0.27 reads ``tirx.noalias``; without it
every kernel of the library lost its ``<name>_compute_`` function and the pad copies ran scalar)."""

from __future__ import annotations

import shutil
import subprocess

import onnx
import pytest
import torch

from compress.quant import project_twn
from deploy.onnx.torch_export import export_dense

pytest.importorskip("tvm")


class TwoConvs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.first = torch.nn.Conv2d(16, 16, 3, padding=1)
        self.second = torch.nn.Conv2d(16, 16, 3, padding=1)

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))


def test_ternary_build_has_no_alias_compute_functions_for_its_kernels_and_pad_copies(tmp_path):
    from deploy.tvm.compile import compile_onnx

    torch.manual_seed(0)
    model = TwoConvs().eval()
    with torch.no_grad():
        for conv in (model.first, model.second):
            flat = conv.weight.view(16, -1)
            flat.copy_(project_twn(flat, per_channel=True).dequantize().view_as(flat))
    path = tmp_path / "two.onnx"
    onnx.save(export_dense(model, torch.zeros(1, 16, 12, 12), opset=17), str(path))
    result = compile_onnx(path, target="host", out_dir=tmp_path / "tvm", input_shape=(1, 16, 12, 12))
    assert [layer.choice.kernel for layer in result.layers] == ["ternary-conv", "ternary-conv"]
    symbols = _function_symbols(result.library_path)
    for name in ("ternary_conv2d_0", "phase_pad_ternary_conv2d_1"):
        assert f"{name}_compute_" in symbols


def _function_symbols(library) -> set[str]:
    """Names of the functions defined in ``library`` (``nm``; debug info keeps inlined names too)."""
    if shutil.which("nm") is None:
        pytest.skip("nm (binutils) not installed")
    listing = subprocess.run(["nm", str(library)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in listing.splitlines() if len(line.split()) == 3 and line.split()[1] in "tT"}
