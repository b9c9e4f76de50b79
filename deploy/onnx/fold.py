"""Constant folding of an ONNX graph before TVM (or a user) sees it.

Exporters leave shape arithmetic in the graph: ``Shape -> Gather -> Range / ConstantOfShape /
Expand`` for anchor grids, ``Constant -> Reshape -> Slice -> Transpose -> Cast`` chains for
TF-style "same" padding, ``Concat``-built ``Reshape`` targets. For a static input shape each of
these is a constant; TVM's importer cannot evaluate them (``Dynamic pads are not supported yet``,
``emit_te now only supports Tensor that has ShapeExpr shape``).

Folding is onnxruntime's own offline graph optimisation at the basic level, saved through
``SessionOptions.optimized_model_filepath``: ONNX shape inference, constant folding (``Shape`` of a
static tensor included) and redundant-node elimination, all in the ONNX domain (the extended level
would introduce ``com.microsoft`` fused ops). Using the library that will also check the result
keeps one definition of every operator's semantics. The folded graph is checked against the
original on onnxruntime with a random input before it is returned.

Initializers named in ``keep`` are marked overridable (listed as graph inputs) while onnxruntime
optimises, so they are neither folded nor fused into (a weight whose encoding depends on its exact
values stays as exported); they are plain initializers again in the result.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from deploy.onnx.errors import OnnxFormatError

FOLD_ATOL = 1e-5
RANDOM_OPS = ("RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli")
STANDARD_DOMAINS = ("", "ai.onnx")
DYNAMIC_DIM_PROBE = 2  # the size given to a dimension left dynamic when the fold is checked


def fix_input_shapes(model, shapes: dict[str, tuple[int, ...]]):
    """A copy of ``model`` whose graph inputs named in ``shapes`` have those static shapes.

    Raises:
        OnnxFormatError: an unknown input, a rank that differs, or a static dimension that differs.
    """
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    inputs = {value.name: value for value in fixed.graph.input}
    for name, shape in shapes.items():
        if name not in inputs:
            raise OnnxFormatError(f"the model has no input {name!r}; inputs: {sorted(inputs)}")
        tensor_shape = inputs[name].type.tensor_type.shape
        declared = [_dim_text(dim) for dim in tensor_shape.dim]
        if tensor_shape.dim and len(declared) != len(shape):
            raise OnnxFormatError(f"input {name!r} has rank {len(declared)} ({_shape_text(declared)}), "
                                  f"cannot give it shape {list(shape)}")
        for index, (dim, value) in enumerate(zip(tensor_shape.dim, shape)):
            if dim.HasField("dim_value") and dim.dim_value != value:
                raise OnnxFormatError(f"input {name!r} dimension {index} is {dim.dim_value} in the model "
                                      f"({_shape_text(declared)}), not {value}")
        del tensor_shape.dim[:]
        for value in shape:
            tensor_shape.dim.add().dim_value = int(value)
    return fixed


def fold_constants(model, *, keep=(), atol: float = FOLD_ATOL):
    """``model`` with every constant subgraph replaced by an initializer (see module doc).

    Args:
        model: an ``onnx.ModelProto`` (fix its input shapes first to fold shape computations).
        keep: names of initializers that must stay exactly as they are.
        atol: largest allowed ``|folded - original|`` relative to ``max(1, |original|)``.

    Raises:
        OnnxFormatError: onnxruntime cannot load the model, folding introduced a non-ONNX operator,
            or the folded graph's outputs differ from the original's.
    """
    import onnx

    marked = _with_overridable(model, set(keep))
    _drop_trailing_empty_inputs(marked.graph)
    with tempfile.TemporaryDirectory(prefix="compress-fold-") as folder:
        path = os.path.join(folder, "folded.onnx")
        _optimize(marked, path)
        folded = onnx.load(path)
    _unmark(folded, original=model)
    _check_domains(folded, original=model)
    if not any(node.op_type in RANDOM_OPS for node in model.graph.node):  # random outputs cannot be compared
        check_same_outputs(model, folded, atol=atol)
    return folded


def check_same_outputs(original, folded, *, atol: float = FOLD_ATOL, seed: int = 0) -> float:
    """Largest relative output difference of ``folded`` from ``original`` on onnxruntime.

    Raises:
        OnnxFormatError: a difference above ``atol`` (relative to ``max(1, |original|)``).
    """
    feeds = _random_feeds(original, seed=seed)
    expected = _session(original).run(None, feeds)
    actual = _session(folded).run(None, feeds)
    worst = 0.0
    for index, (want, got) in enumerate(zip(expected, actual)):
        want, got = np.asarray(want), np.asarray(got)
        if want.shape != got.shape:
            raise OnnxFormatError(f"constant folding changed output {index}'s shape from {list(want.shape)} to {list(got.shape)}")
        if want.size and np.issubdtype(want.dtype, np.number):
            scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
            worst = max(worst, float(np.max(np.abs(want.astype(np.float64) - got.astype(np.float64)))) / scale)
    if not worst <= atol:
        raise OnnxFormatError(f"constant folding changed the outputs by {worst:.3g} (relative) > {atol}")
    return worst


def _optimize(model, path: str) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = path
    options.log_severity_level = 3
    try:
        ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own, unexported, error types
        raise OnnxFormatError(f"onnxruntime cannot load the model: {_first_line(error)}") from None


def _session(model):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    try:
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001
        raise OnnxFormatError(f"onnxruntime cannot load the model: {_first_line(error)}") from None


def _random_feeds(model, *, seed: int) -> dict[str, np.ndarray]:
    """One random array per graph input that is not an initializer; dynamic dimensions get size 2."""
    from onnx import helper

    rng = np.random.default_rng(seed)
    initializers = {init.name for init in model.graph.initializer}
    feeds = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        shape = [dim.dim_value if dim.HasField("dim_value") else DYNAMIC_DIM_PROBE for dim in tensor.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        if np.issubdtype(dtype, np.floating):
            feeds[value.name] = rng.random(shape).astype(dtype)
        else:
            feeds[value.name] = np.zeros(shape, dtype)
    return feeds


def _with_overridable(model, keep: set[str]):
    """A copy of ``model`` in which the initializers named in ``keep`` are also graph inputs."""
    import onnx
    from onnx import helper

    marked = onnx.ModelProto()
    marked.CopyFrom(model)
    listed = {value.name for value in marked.graph.input}
    for init in marked.graph.initializer:
        if init.name in keep and init.name not in listed:
            marked.graph.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    if keep and marked.ir_version < 4:
        marked.ir_version = 4  # overridable initializers need IR 4
    return marked


def _drop_trailing_empty_inputs(graph) -> None:
    """``Pad(x, pads, "")`` -> ``Pad(x, pads)``: an omitted trailing optional input means the same as
    an empty name, and onnxruntime's Pad-into-Conv fusion only accepts the short form."""
    for node in graph.node:
        while node.input and not node.input[-1]:
            node.input.pop()


def _unmark(folded, *, original) -> None:
    """Graph inputs and opset imports as in ``original`` (onnxruntime adds every domain it knows)."""
    originals = [value.name for value in original.graph.input]
    by_name = {value.name: value for value in folded.graph.input}
    kept = [by_name[name] for name in originals if name in by_name]
    del folded.graph.input[:]
    folded.graph.input.extend(kept)
    used = {node.domain for node in folded.graph.node} | {function.domain for function in folded.functions}
    opsets = [entry for entry in folded.opset_import if entry.domain in used or entry.domain in STANDARD_DOMAINS]
    del folded.opset_import[:]
    folded.opset_import.extend(opsets)


def _check_domains(folded, *, original) -> None:
    allowed = set(STANDARD_DOMAINS) | {node.domain for node in original.graph.node}
    for node in folded.graph.node:
        if node.domain not in allowed:
            raise OnnxFormatError(f"constant folding introduced node {node.name} ({node.domain}.{node.op_type}), "
                                  "which is not a standard ONNX operator")


def _dim_text(dim) -> str:
    return str(dim.dim_value) if dim.HasField("dim_value") else (dim.dim_param or "?")


def _shape_text(dims) -> str:
    return "[" + ", ".join(dims) + "]"


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
