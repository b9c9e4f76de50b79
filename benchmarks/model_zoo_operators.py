"""Single operators at the sizes the 224 px zoo runs them: our schedule (``deploy.tvm.schedule_rest``,
compiled by ``compile_onnx`` for ``host``) against onnxruntime on the same one-operator ONNX graph.

Both at one thread (``TVM_NUM_THREADS=1``, ``intra_op_num_threads=1``), call by call, interleaved,
``--runs`` times; min and median in microseconds. Each graph has one input and one output, opset 17.

Usage::

    python benchmarks/model_zoo_operators.py [--runs 60] [--out benchmarks/model_zoo_operators.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
I64 = np.int64


def _cases() -> dict:
    """name -> (input shape, builder(node, const) -> output name)."""
    return {
        "MaxPool 3x3/2 pad 1, 1x64x112x112": ((1, 64, 112, 112), lambda n, c: n(
            "MaxPool", ["input"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
        "AveragePool 2x2/2, 1x128x56x56": ((1, 128, 56, 56), lambda n, c: n(
            "AveragePool", ["input"], kernel_shape=[2, 2], strides=[2, 2])),
        "GlobalAveragePool, 1x1280x7x7": ((1, 1280, 7, 7), lambda n, c: n("GlobalAveragePool", ["input"])),
        "Softmax last axis, 1x4x196x196": ((1, 4, 196, 196), lambda n, c: n("Softmax", ["input"], axis=-1)),
        "LayerNormalization, 1x196x192": ((1, 196, 192), lambda n, c: n(
            "LayerNormalization", ["input", c(np.ones(192)), c(np.zeros(192))], axis=-1)),
        "MatMul (4,196,48)x(4,48,196), both computed": ((4, 196, 96), lambda n, c: n("MatMul", [
            n("Slice", ["input", c([0], I64), c([48], I64), c([2], I64)]),
            n("Transpose", [n("Slice", ["input", c([48], I64), c([96], I64), c([2], I64)])], perm=[0, 2, 1])])),
        "GELU (Erf form), 1x196x768": ((1, 196, 768), lambda n, c: n("Mul", [n("Mul", ["input", n("Add", [
            n("Erf", [n("Div", ["input", c(np.sqrt(2.0))])]), c(1.0)])]), c(0.5)])),
        "SiLU (Sigmoid, Mul), 1x96x112x112": ((1, 96, 112, 112), lambda n, c: n("Mul", ["input", n("Sigmoid", ["input"])])),
        "HardSwish, 1x16x112x112": ((1, 16, 112, 112), lambda n, c: n("HardSwish", ["input"])),
        "Resize bilinear x2, 1x64x40x40": ((1, 64, 40, 40), lambda n, c: n(
            "Resize", ["input", "", c([1, 1, 2, 2])], mode="linear", coordinate_transformation_mode="half_pixel")),
        "Resize nearest x2, 1x64x40x40": ((1, 64, 40, 40), lambda n, c: n(
            "Resize", ["input", "", c([1, 1, 2, 2])], mode="nearest", coordinate_transformation_mode="asymmetric",
            nearest_mode="floor")),
        "Channel shuffle (Reshape, Transpose, Reshape), 1x232x14x14": ((1, 232, 14, 14), lambda n, c: n("Reshape", [
            n("Transpose", [n("Reshape", ["input", c([1, 2, 116, 14, 14], I64)])], perm=[0, 2, 1, 3, 4]),
            c([1, 232, 14, 14], I64)])),
        "Concat of 4, 1x64x56x56": ((1, 64, 56, 56), lambda n, c: n("Concat", [
            "input", n("Relu", ["input"]), n("Neg", ["input"]), n("Abs", ["input"])], axis=1)),
        "Pad reflect 1, 1x64x56x56": ((1, 64, 56, 56), lambda n, c: n(
            "Pad", ["input", c([0, 0, 1, 1, 0, 0, 1, 1], I64)], mode="reflect")),
    }


def graph(shape, build):
    """A one-input, one-output opset-17 model."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, initializers = [], []

    def node(op_type, inputs, **attrs):
        name = f"t{len(nodes)}"
        nodes.append(helper.make_node(op_type, inputs, [name], **attrs))
        return name

    def const(value, dtype=np.float32):
        name = f"c{len(initializers)}"
        initializers.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    output = build(node, const)
    model = helper.make_model(helper.make_graph(
        nodes, "op", [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(shape))],
        [helper.make_empty_tensor_value_info(output)], initializers),
        opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    model = onnx.shape_inference.infer_shapes(model)
    inferred = {value.name: value for value in model.graph.value_info}
    model.graph.output[0].CopyFrom(inferred[output])
    return model


def measure(name, shape, build, *, work: Path, runs: int) -> dict:
    import onnx
    import onnxruntime as ort
    import tvm
    from tvm import relax

    from deploy.bench.interleave import measure_interleaved
    from deploy.tvm.compile import compile_onnx

    folder = work / f"case{len(list(work.iterdir()))}"
    folder.mkdir()
    path = folder / "op.onnx"
    onnx.save(graph(shape, build), str(path))
    result = compile_onnx(path, target="host", out_dir=folder, input_shape=shape)
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(result.library_path)), tvm.cpu())
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    tensor = tvm.runtime.tensor(x)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    error = float(np.max(np.abs(vm["main"](tensor).numpy() - session.run(None, {"input": x})[0])))
    stats = measure_interleaved({"tvm": lambda: vm["main"](tensor), "onnxruntime": lambda: session.run(None, {"input": x})},
                                warmup=5, runs=runs, progress=False)
    return {"operator": name, "max_abs_error": error,
            "tvm_us": {"min": stats["tvm"].min_ms * 1e3, "median": stats["tvm"].median_ms * 1e3},
            "onnxruntime_us": {"min": stats["onnxruntime"].min_ms * 1e3, "median": stats["onnxruntime"].median_ms * 1e3}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "model_zoo_operators.json")
    args = parser.parse_args(argv)
    os.environ["TVM_NUM_THREADS"] = "1"
    from deploy.bench.machine import cpu_model

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (shape, build) in _cases().items():
            rows.append(measure(name, shape, build, work=Path(tmp), runs=args.runs))
            print(json.dumps(rows[-1]), flush=True)
    args.out.write_text(json.dumps({"cpu": cpu_model(), "threads": 1, "runs": args.runs,
                                    "load_average": os.getloadavg(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
