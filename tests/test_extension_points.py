"""The three how-tos are true: the weight format of ``docs/adding-a-weight-format.md``, the kernel of
``docs/adding-a-kernel.md`` and the target of ``docs/adding-a-target.md`` each work end to end on a
small network once added to a copy of their list; every format of the list round-trips; no stage or
command names a target."""

from __future__ import annotations

import ast
import re
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

REPO = Path(__file__).resolve().parents[1]
TARGET_FREE = ("pipeline/stages", "pipeline/cli")


def _doc_module(name: str) -> types.ModuleType:
    """The first python code block of ``docs/<name>.md``, executed as a module."""
    text = (REPO / "docs" / f"{name}.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S)
    assert block, f"docs/{name}.md lost its code block"
    module = types.ModuleType(name.replace("-", "_"))
    exec(compile(block.group(1), f"docs/{name}.md", "exec"), module.__dict__)  # noqa: S102 - our own doc
    return module


def _mlp_onnx(path: Path, *, hidden: int = 32) -> Path:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, hidden), nn.ReLU(), nn.Linear(hidden, 10)).eval()
    torch.onnx.export(model, (torch.randn(1, 16),), str(path), opset_version=17, input_names=["input"], dynamo=False)
    return path


def _onnxruntime(path: Path, x: np.ndarray) -> np.ndarray:
    from deploy.runtimes import load_session

    return load_session("onnxruntime", path).run_one(x)


# -- weight formats -----------------------------------------------------------------------------------


def _half_exact(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.half().float())
    return model.eval()


def test_the_guide_s_weight_format_exports_decodes_and_wins_auto_from_one_list_entry(tmp_path, monkeypatch):
    from deploy.onnx import export_onnx, formats, read_compressed_weights

    guide = _doc_module("adding-a-weight-format")
    monkeypatch.setattr(formats, "FORMATS", (*formats.FORMATS, guide.FORMAT))
    assert "float16" in formats.encoding_names()
    torch.manual_seed(0)
    model = _half_exact(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 64)))
    x = torch.randn(2, 1, 8, 8)
    forced = export_onnx(model, x, tmp_path / "forced.onnx", encoding="float16")
    auto = export_onnx(model, x, tmp_path / "auto.onnx", encoding="auto")
    assert [layer["format"] for layer in forced.layers] == ["float16", "float16"]
    assert forced.layers[0]["bits"] == 16
    assert auto.layers[1]["format"] == "float16"  # 2 bytes per value beat 4, and no other format is exact
    assert forced.max_abs_error <= 1e-5 and auto.max_abs_error <= 1e-5
    decoded = read_compressed_weights(onnx.load(str(forced.path)))
    assert np.array_equal(decoded[forced.layers[1]["initializer"]], model[3].weight.detach().numpy())
    assert forced.sizes.compressed_bytes < 0.6 * forced.sizes.dense_bytes


def test_the_guide_s_weight_format_refuses_a_weight_it_cannot_hold(monkeypatch):
    from deploy.onnx import formats
    from deploy.onnx.encodings import encode_weight
    from deploy.onnx.errors import OnnxFormatError

    guide = _doc_module("adding-a-weight-format")
    monkeypatch.setattr(formats, "FORMATS", (*formats.FORMATS, guide.FORMAT))
    with pytest.raises(OnnxFormatError, match="float16"):
        encode_weight(np.asarray([[0.1, 0.2]], np.float32), encoding="float16")


def _candidate_weights() -> list[np.ndarray]:
    """Weights of several kinds; every format of the list holds at least one of them exactly."""
    rng = np.random.default_rng(0)
    scales = rng.uniform(0.5, 2, (6, 1)).astype(np.float32)
    ternary = (rng.integers(-1, 2, (6, 8)) * scales).astype(np.float32)
    ternary[:, ::3] = 0
    binary = np.where(rng.random((6, 8)) < 0.5, -1.0, 1.0).astype(np.float32) * scales
    int8 = (rng.integers(-127, 128, (6, 8)).astype(np.float32) * (scales / 127)).astype(np.float32)
    int8[:, 0] = 127 * scales[:, 0] / 127
    return [ternary, binary, int8, rng.standard_normal((6, 8)).astype(np.float32)]


def _identity_model(weight: np.ndarray) -> onnx.ModelProto:
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, list(weight.shape))
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["out"])], "g", [], [out],
                              [numpy_helper.from_array(weight, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("name", [fmt.name for fmt in __import__("deploy.onnx.formats", fromlist=["FORMATS"]).FORMATS])
def test_every_format_of_the_list_round_trips_through_its_reader_and_its_onnx_decoder(name):
    from deploy.onnx.encodings import encode_as
    from deploy.onnx.errors import OnnxFormatError
    from deploy.onnx.formats import get_format
    from deploy.onnx.graph_rewrite import EncodedWeight, encode_graph
    from deploy.onnx.parity import onnxruntime_session

    record = get_format(name)
    for weight in _candidate_weights():
        try:
            encoding = encode_as(weight, name, block=(2, 2))
        except OnnxFormatError:
            continue
        break
    else:
        pytest.fail(f"format {name!r} holds none of the test weights")
    assert tuple(encoding.arrays) == record.roles and encoding.bits == record.bits
    assert np.array_equal(record.decode(encoding.arrays, weight.shape).view(np.uint32), weight.view(np.uint32))
    model = encode_graph(_identity_model(weight), [EncodedWeight("w", "layer.weight", "Gemm", encoding)])
    onnx.checker.check_model(model, full_check=True)
    decoded = onnxruntime_session(model).run(None, {})[0]
    assert np.array_equal(decoded.view(np.uint32), weight.view(np.uint32))


# -- kernels --------------------------------------------------------------------------------------------


def test_the_guide_s_kernel_takes_the_linear_layers_and_matches_onnxruntime(tmp_path, monkeypatch):
    from deploy.runtimes import load_session
    from deploy.tvm import fusion
    from deploy.tvm.compile import compile_onnx

    guide = _doc_module("adding-a-kernel")
    monkeypatch.setattr(fusion, "FUSION_RULES", (guide.RULE, *fusion.FUSION_RULES))
    path = _mlp_onnx(tmp_path / "mlp.onnx")
    result = compile_onnx(path, target="host", out_dir=tmp_path / "tvm", input_shape=(1, 16))
    assert [layer.choice.kernel for layer in result.layers] == ["gemv", "gemv"]
    assert "relu" in result.layers[0].choice.reason
    x = np.random.default_rng(0).standard_normal((1, 16)).astype(np.float32)
    actual = load_session("tvm", result.library_path).run_one(x)
    assert np.max(np.abs(actual - _onnxruntime(path, x))) <= 1e-5


def test_a_chain_no_rule_takes_is_left_to_the_generic_schedule(tmp_path):
    from deploy.runtimes import load_session
    from deploy.tvm import fusion
    from deploy.tvm.compile import compile_onnx

    path = _mlp_onnx(tmp_path / "mlp.onnx")
    convolutions_only = tuple(rule for rule in fusion.FUSION_RULES if rule.pattern is not fusion.FUSION_RULES[-1].pattern)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fusion, "FUSION_RULES", convolutions_only)
        result = compile_onnx(path, target="host", out_dir=tmp_path / "tvm", input_shape=(1, 16))
    assert result.layers == ()
    x = np.ones((1, 16), np.float32)
    assert np.max(np.abs(load_session("tvm", result.library_path).run_one(x) - _onnxruntime(path, x))) <= 1e-5


# -- targets --------------------------------------------------------------------------------------------


def _compile_stage_run(tmp_path: Path, target: str, onnx_path: Path, *, attempt: str):
    from pipeline.stage import RunOptions, StageContext
    from pipeline.stages.compile import CompileConfig, CompileStage

    stage_dir = tmp_path / f"stage-{attempt}"
    stage_dir.mkdir()
    ctx = StageContext(run_dir=tmp_path, stage_dir=stage_dir, stage_id="compile-test", options=RunOptions(target=target),
                       history=[], load_data=lambda shape: None, log=lambda line: None)
    return CompileStage().run(ctx, CompileConfig(target=target), {"onnx": onnx_path})


def test_the_guide_s_target_compiles_runs_here_and_is_shipped_as_its_preset_says(tmp_path, monkeypatch):
    from deploy.runtimes import load_session
    from deploy.tvm import targets
    from deploy.tvm.bundle import BundleCheck, BundleKind

    guide = _doc_module("adding-a-target")
    monkeypatch.setattr(targets, "PRESETS", (*targets.PRESETS, guide.PRESET))
    assert "x86-64-avx2" in targets.list_targets()
    path = _mlp_onnx(tmp_path / "mlp.onnx")
    plain = _compile_stage_run(tmp_path, "x86-64-avx2", path, attempt="plain")
    assert "bundle-manifest" not in plain.outputs
    x = np.random.default_rng(0).standard_normal((1, 16)).astype(np.float32)
    actual = load_session("tvm", plain.outputs["compiled"]).run_one(x)
    assert np.max(np.abs(actual - _onnxruntime(path, x))) <= 1e-5

    made = []

    def make(library, *, bundle_dir, input_name, input_shape, target):
        bundle_dir.mkdir(parents=True)
        (bundle_dir / "model.so").write_bytes(Path(library).read_bytes())
        (bundle_dir / "manifest.json").write_text('{"files": []}')
        made.append(target)
        return bundle_dir

    def verify(bundle_dir, x, expected, *, atol):
        return BundleCheck(0.0, atol, tuple(expected.shape), 0.0)

    kind = BundleKind("copy", "true", make, run=None, verify=verify, description="the library copied")
    monkeypatch.setattr(targets, "PRESETS", (*targets.PRESETS[:-1], replace(guide.PRESET, bundle=kind)))
    bundled = _compile_stage_run(tmp_path, "x86-64-avx2", path, attempt="bundled")
    assert made == ["x86-64-avx2"] and bundled.outputs["bundle-manifest"].is_file()
    assert bundled.metrics["bundle_check"]["status"] == "passed"


def _target_literals(path: Path, names: set[str]) -> list[str]:
    """String constants of ``path`` equal to a target name, except click parameter declarations."""
    tree = ast.parse(path.read_text())
    declarations = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call)
                    and getattr(node.func, "attr", "") in ("option", "argument") for arg in node.args}
    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    return [f"{where}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in names and id(node) not in declarations]


def test_no_stage_or_command_names_a_target():
    from deploy.tvm.targets import list_targets

    names = set(list_targets())
    files = [path for folder in TARGET_FREE for path in sorted((REPO / folder).rglob("*.py"))]
    assert files
    assert [hit for path in files for hit in _target_literals(path, names)] == []


def test_the_target_literal_check_finds_a_named_target(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text('import click\n\n@click.option("--host", "host")\ndef f(target="arm64"):\n    return target == "host"\n')
    hits = _target_literals(source, {"arm64", "host"})
    assert [hit.split(": ", 1)[1] for hit in hits] == ["'arm64'", "'host'"]
