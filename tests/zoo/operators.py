"""ONNX graphs, written with ``onnx.helper``, of the operators real exporters emit (torch.onnx,
ultralytics, tf2onnx): one graph per opset with one graph output per case.

Every case reads the single input ``input`` (:data:`INPUT_SHAPE`) so the whole graph compiles once
per opset; each case's output is named after it, so a mismatch names the operator. Where an operator
does not exist at an opset (``HardSwish`` before 14, ``LayerNormalization`` before 17) the case is
written the way exporters write it at that opset (``x * HardSigmoid(x)``; ``ReduceMean`` / ``Sub`` /
``Pow`` / ``Sqrt`` / ``Div``). Attributes that became inputs (``Split`` sizes at 13, ``ReduceMean``
axes at 18) follow the opset.
"""

from __future__ import annotations

import numpy as np

OPSETS = (11, 13, 17, 21)
INPUT_SHAPE = (1, 8, 16, 16)
_SEED = 0


class _Graph:
    """Collects nodes, initializers and outputs; names are unique per case."""

    def __init__(self, opset: int):
        self.opset, self.nodes, self.initializers, self.outputs = opset, [], [], []
        self._count = 0
        self._rng = np.random.default_rng(_SEED)

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value, dtype=np.float32) -> str:
        from onnx import numpy_helper

        name = self.name("c")
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def weight(self, *shape: int) -> str:
        return self.const(self._rng.standard_normal(shape).astype(np.float32) * 0.3)

    def op(self, op_type: str, inputs: list[str], *, outputs: int = 1, **attrs):
        from onnx import helper

        names = [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=self.name(op_type), **attrs))
        return names[0] if outputs == 1 else names

    def output(self, case: str, value: str) -> None:
        self.outputs.append((case, self.op("Identity", [value])))

    def slice(self, x: str, starts, ends, axes) -> str:
        i64 = np.int64
        return self.op("Slice", [x, self.const(starts, i64), self.const(ends, i64), self.const(axes, i64)])


def _resize(g: _Graph, x: str, *, mode: str, transform: str, scales=None, sizes=None, **attrs) -> str:
    roi = g.const([], np.float32) if g.opset < 13 else ""
    scale_input = g.const(scales, np.float32) if scales is not None else ("" if g.opset >= 13 else g.const([], np.float32))
    inputs = [x, roi, scale_input] + ([g.const(sizes, np.int64)] if sizes is not None else [])
    return g.op("Resize", inputs, mode=mode, coordinate_transformation_mode=transform, **attrs)


def _split(g: _Graph, x: str, sizes: list[int], axis: int) -> list[str]:
    if g.opset < 13:
        return g.op("Split", [x], outputs=len(sizes), axis=axis, split=sizes)
    return g.op("Split", [x, g.const(sizes, np.int64)], outputs=len(sizes), axis=axis)


def _reduce_mean(g: _Graph, x: str, axes: list[int], keepdims: int) -> str:
    if g.opset < 18:
        return g.op("ReduceMean", [x], axes=axes, keepdims=keepdims)
    return g.op("ReduceMean", [x, g.const(axes, np.int64)], keepdims=keepdims)


def _hard_swish(g: _Graph, x: str) -> str:
    if g.opset >= 14:
        return g.op("HardSwish", [x])
    return g.op("Mul", [x, g.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)])


def _layer_norm(g: _Graph, x: str, channels: int) -> str:
    scale, bias = g.weight(channels), g.weight(channels)
    if g.opset >= 17:
        return g.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=1e-5)
    centred = g.op("Sub", [x, _reduce_mean(g, x, [-1], 1)])
    variance = _reduce_mean(g, g.op("Pow", [centred, g.const(2.0)]), [-1], 1)
    normed = g.op("Div", [centred, g.op("Sqrt", [g.op("Add", [variance, g.const(1e-5)])])])
    return g.op("Add", [g.op("Mul", [normed, scale]), bias])


def _gelu_erf(g: _Graph, x: str) -> str:
    erf = g.op("Erf", [g.op("Div", [x, g.const(np.sqrt(2.0))])])
    return g.op("Mul", [g.op("Mul", [x, g.op("Add", [erf, g.const(1.0)])]), g.const(0.5)])


def _add_cases(g: _Graph, x: str) -> None:
    """Every case of the operator list, in the order of the list."""
    i64 = np.int64
    g.output("resize_nearest", _resize(g, x, mode="nearest", transform="asymmetric", scales=[1, 1, 2, 2],
                                       nearest_mode="floor"))
    g.output("resize_bilinear", _resize(g, x, mode="linear", transform="half_pixel", scales=[1, 1, 2, 2]))
    g.output("resize_bilinear_align_corners", _resize(g, x, mode="linear", transform="align_corners",
                                                      sizes=[1, 8, 24, 20]))
    first, second = _split(g, x, [3, 5], 1)
    g.output("split", g.op("Concat", [g.op("Sigmoid", [second]), first], axis=1))
    g.output("slice", g.op("Slice", [x, g.const([1, -12, 0], i64), g.const([7, 100, 16], i64),
                                     g.const([1, 2, 3], i64), g.const([2, 1, 3], i64)]))
    g.output("transpose", g.op("Transpose", [x], perm=[0, 2, 3, 1]))
    g.output("softmax_axis1", g.op("Softmax", [x], axis=1))
    odd = g.slice(x, [0, 0], [13, 13], [2, 3])
    g.output("maxpool_ceil_pad", g.op("MaxPool", [odd], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                      ceil_mode=1))
    for include in (0, 1):
        g.output(f"avgpool_pad_count_include_{include}",
                 g.op("AveragePool", [odd], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                      count_include_pad=include))
    g.output("global_average_pool", g.op("GlobalAveragePool", [x]))
    g.output("global_max_pool", g.op("GlobalMaxPool", [x]))
    g.output("silu", g.op("Mul", [x, g.op("Sigmoid", [x])]))
    g.output("hard_sigmoid", g.op("HardSigmoid", [x], alpha=0.2, beta=0.5))
    g.output("hard_swish", _hard_swish(g, x))
    g.output("gelu_erf", _gelu_erf(g, x))
    parts = [x, g.op("Relu", [x]), g.op("Sigmoid", [x]), g.op("Neg", [x]), g.op("Abs", [x]), g.op("Tanh", [x])]
    g.output("concat_many", g.op("Concat", parts, axis=1))
    g.output("pad_constant", g.op("Pad", [x, g.const([0, 0, 1, 2, 0, 0, 2, 1], i64), g.const(0.5)], mode="constant"))
    g.output("pad_reflect", g.op("Pad", [x, g.const([0, 0, 2, 1, 0, 0, 1, 2], i64)], mode="reflect"))
    g.output("clip_tensor_bounds", g.op("Clip", [x, g.const(-0.5), g.const(0.75)]))
    rows = g.op("Reshape", [x, g.const([32, 64], i64)])
    g.output("gemm_trans_a", g.op("Gemm", [rows, g.weight(32, 48), g.weight(48)], transA=1, alpha=0.5, beta=2.0))
    left = g.op("Reshape", [x, g.const([2, 1, 64, 16], i64)])
    right = g.op("Reshape", [g.op("Sigmoid", [x]), g.const([4, 16, 32], i64)])
    g.output("matmul_batch_broadcast", g.op("MatMul", [left, right]))
    g.output("matmul_constant_batched", g.op("MatMul", [left, g.weight(3, 16, 24)]))
    g.output("reduce_mean", _reduce_mean(g, x, [2, 3], 1))
    g.output("reduce_mean_no_keepdims", _reduce_mean(g, x, [1], 0))
    tokens = g.op("Reshape", [x, g.const([1, 32, 64], i64)])
    g.output("layer_norm", _layer_norm(g, tokens, 64))
    g.output("flatten", g.op("Flatten", [x], axis=2))
    g.output("identity", g.op("Relu", [g.op("Identity", [x])]))


CASES = ("resize_nearest", "resize_bilinear", "resize_bilinear_align_corners", "split", "slice", "transpose",
         "softmax_axis1", "maxpool_ceil_pad", "avgpool_pad_count_include_0", "avgpool_pad_count_include_1",
         "global_average_pool", "global_max_pool", "silu", "hard_sigmoid", "hard_swish", "gelu_erf", "concat_many",
         "pad_constant", "pad_reflect", "clip_tensor_bounds", "gemm_trans_a", "matmul_batch_broadcast",
         "matmul_constant_batched", "reduce_mean", "reduce_mean_no_keepdims", "layer_norm", "flatten", "identity")


def operator_graph(opset: int, *, cases: tuple[str, ...] = CASES):
    """The ONNX model holding ``cases`` at ``opset``; graph output ``i`` is ``cases[i]``."""
    from onnx import TensorProto, checker, helper, shape_inference

    g = _Graph(opset)
    _add_cases(g, "input")
    wanted = [(case, value) for case, value in g.outputs if case in cases]
    outputs = [helper.make_empty_tensor_value_info(value) for _, value in wanted]
    graph = helper.make_graph(g.nodes, f"operators_opset{opset}",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(INPUT_SHAPE))],
                              outputs, g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=min(10, helper.VERSION_TABLE[-1][1]))
    model = shape_inference.infer_shapes(_prune(model), strict_mode=True)
    inferred = {value.name: value for value in model.graph.value_info}
    for output in model.graph.output:
        output.CopyFrom(inferred[output.name])
    checker.check_model(model, full_check=True)
    return model, [case for case, _ in wanted]


def _prune(model):
    """Drop the nodes and initializers no kept output needs."""
    graph = model.graph
    needed = {output.name for output in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    initializers = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    return model
