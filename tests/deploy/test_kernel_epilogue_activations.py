"""SiLU (swish), HardSwish and sigmoid fold into the conv / depthwise / linear kernels' epilogue and
match onnxruntime, with the sigmoid as vector arithmetic (no ``expf`` call per lane)."""

import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deploy.tvm.compile import compile_onnx

ATOL = 1e-4
SHAPE = (1, 3, 20, 20)


class GatedNet(nn.Module):
    """Each gated activation after each kernel family, in the operand orders exporters write."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.strided = nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16)  # the row depthwise kernel
        self.expand = nn.Conv2d(16, 24, 1)
        self.project = nn.Conv2d(24, 24, 1)
        self.hard = nn.Conv2d(24, 24, 1)
        self.excite = nn.Conv2d(24, 24, 1)  # squeeze-excite on a 1x1 image: one-lane kernel
        self.shared = nn.Conv2d(24, 24, 1)
        self.fc = nn.Linear(24, 32)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = F.silu(self.stem(x))                        # Sigmoid + Mul(y, s)
        y = self.depthwise(x)
        x = torch.sigmoid(y) * y                        # Mul(s, y)
        x = F.silu(self.strided(x))
        x = F.hardswish(self.expand(x))                 # ONNX HardSwish
        y = self.project(x) + x                         # residual add, then swish
        x = F.silu(y)
        y = self.hard(x)
        x = y * F.hardsigmoid(y)                        # HardSigmoid + Mul
        x = x * torch.sigmoid(self.excite(x.mean((2, 3), keepdim=True)))  # plain sigmoid
        y = self.shared(x)
        x = F.silu(y) + y                               # y has a third use: not folded
        x = F.silu(self.fc(x.mean((2, 3))))
        return torch.sigmoid(self.head(x))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("gated")
    torch.manual_seed(0)
    path = root / "model.onnx"
    torch.onnx.export(GatedNet().eval(), torch.randn(SHAPE), path, input_names=["x"], opset_version=17, dynamo=False)
    return path, compile_onnx(path, target="host", out_dir=root / "host", input_shape=SHAPE)


def test_gated_activations_match_onnxruntime(built):
    import onnxruntime as ort
    from deploy.runtimes import load_session

    path, result = built
    x = 8.0 * np.random.default_rng(0).standard_normal(SHAPE, dtype=np.float32)  # saturating and tiny sigmoids too
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(load_session("tvm", result.library_path).run_one(x), expected, rtol=0, atol=ATOL)


def test_report_shows_each_activation_fused(built):
    _, result = built
    reasons = [layer["reason"] for layer in json.loads(result.report_path.read_text())["layers"]]
    fused = [reason.rsplit("; ", 1)[-1] for reason in reasons]
    assert fused == ["fused bias + silu"] * 3 + ["fused bias + hardswish (x * clip(0.166667 x + 0.5, 0, 1))",
                                                 "fused bias + residual add + silu",
                                                 "fused bias + hardswish (x * clip(0.166667 x + 0.5, 0, 1))",
                                                 "fused bias + sigmoid", "fused bias", "fused bias + silu",
                                                 "fused bias + sigmoid"]
    assert "depthwise" in reasons[1] and "depthwise" in reasons[2]


def test_library_has_no_separate_sigmoid_pass_nor_scalar_exp(built):
    _, result = built
    library = result.library_path.read_bytes()
    assert b"expf" not in library
    functions = {name.removeprefix(b"__tvm_ffi_").removesuffix(b"_compute_") for name in re.findall(rb"\w*sigmoid\w*", library)}
    assert len(functions) == 1  # only the swish whose input has a third use


def test_chain_finder_folds_hardswish_written_as_add_clip_divide():
    """TVM's own ONNX ``HardSwish`` form, ``y * (clip(y + 3, 0, 6) / 6)``, and a conv output used a
    third time (not folded)."""
    from tvm import relax

    from deploy.tvm.fusion_chains import find_chains

    def build(third_use: bool):
        builder = relax.BlockBuilder()
        x = relax.Var("x", relax.TensorType((1, 4, 8, 8), "float32"))
        weight = relax.const(np.ones((4, 4, 1, 1), np.float32))
        with builder.function("main", [x]):
            with builder.dataflow():
                y = builder.emit(relax.op.nn.conv2d(x, weight))
                gate = builder.emit(relax.op.add(y, relax.const(3.0, "float32")))
                gate = builder.emit(relax.op.clip(gate, 0, 6))
                gate = builder.emit(relax.op.divide(gate, relax.const(6.0, "float32")))
                out = builder.emit(relax.op.multiply(y, gate))
                if third_use:
                    out = builder.emit(relax.op.add(out, y))
                out = builder.emit_output(out)
            builder.emit_func_output(out)
        return builder.get()["main"]

    (chain,) = find_chains(build(third_use=False))[0].values()
    assert (chain.activation, chain.gate, len(chain.absorbed)) == ("hardswish", (1.0 / 6.0, 0.5), 4)
    (chain,) = find_chains(build(third_use=True))[0].values()
    assert chain.activation == "none"
