"""The bundled int8 recipe through every stage on the bundled LeNet-5 (few steps): calibrated int8
activations, a QDQ ONNX that onnxruntime runs with integer kernels, int8 weights in the file, pruned
zeros kept, and the TVM build agreeing with onnxruntime within one quantization step."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from pipeline.cli import main
from pipeline.manifest import read_manifest
from pipeline.recipe import DEFAULT_RECIPE

INT8_RECIPE = DEFAULT_RECIPE.parent / "int8.yaml"
FAST = ["--epoch-steps", "2", "--train-limit", "256", "--test-limit", "128", "--target", "host"]


@pytest.fixture(scope="module")
def int8_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["--quiet", "run", "--recipe", str(INT8_RECIPE), "--out", str(out), *FAST])
    assert exit_info.value.code == 0
    manifest = read_manifest(out)
    return out, {record["name"]: record for record in manifest["stages"]}


def _path(out, record, kind):
    return out / record["outputs"][kind]["path"]


@pytest.mark.slow
def test_int8_recipe_runs_every_stage_with_calibrated_int8_layers(int8_run):
    _, stages = int8_run
    assert list(stages) == ["train-sparse", "prune", "quantize", "export", "compile", "report"]
    assert all(record["status"] == "done" for record in stages.values())
    quantize = stages["quantize"]["metrics"]
    assert quantize["method"] == "int8" and quantize["calibration_batches"] == 16
    assert quantize["quantized_layers"] == ["0.weight", "3.weight", "7.weight", "9.weight"]  # first and last too
    assert all(s["input_scale"] > 0 and s["output_scale"] > 0 for s in quantize["activation_scales"].values())


@pytest.mark.slow
def test_int8_recipe_exports_int8_weights_that_onnxruntime_runs_as_integer_kernels(int8_run):
    out, stages = int8_run
    export = stages["export"]["metrics"]
    assert export["onnxruntime_int8_ops"].get("QLinearConv") == 2
    assert sum(export["onnxruntime_int8_ops"].get(op, 0) for op in ("QGemm", "QLinearMatMul")) == 2
    model = onnx.load(str(_path(out, stages["export"], "onnx")))
    assert not [i.name for i in model.graph.initializer if i.data_type == TensorProto.FLOAT and len(i.dims) > 1]
    codes = [numpy_helper.to_array(i) for i in model.graph.initializer if i.data_type == TensorProto.INT8 and len(i.dims) > 1]
    layers = export["sizes"]["layers"]
    assert sum(c.size for c in codes) == sum(layer["numel"] for layer in layers)
    assert sum(layer["stored_bytes"] for layer in layers) <= 1.05 * sum(layer["numel"] for layer in layers) + 4096
    pruned = {layer["fqn"]: layer["nnz"] for layer in stages["prune"]["metrics"]["layers"]}
    assert sum(int(np.count_nonzero(c)) for c in codes) <= sum(pruned.values())  # pruned zeros stay zero


@pytest.mark.slow
def test_int8_recipe_tvm_build_matches_onnxruntime_within_one_step(int8_run):
    from deploy.onnx.qdq import output_step
    from deploy.runtimes import load_session

    out, stages = int8_run
    onnx_path = _path(out, stages["export"], "onnx")
    step = output_step(onnx.load(str(onnx_path)))
    assert step is not None and stages["compile"]["metrics"]["host_vs_onnxruntime_max_abs_error"] <= step * (1 + 1e-5)
    tvm = load_session("tvm", _path(out, stages["compile"], "host-library"))
    ort = load_session("onnxruntime", onnx_path)
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.random((1, 1, 28, 28), dtype=np.float32)
        assert np.abs(tvm.run_one(x) - ort.run_one(x)).max() <= step * (1 + 1e-5)
