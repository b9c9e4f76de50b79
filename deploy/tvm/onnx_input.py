"""Read an ONNX model for TVM: decode compact weights, densify sparse constants, find the input,
fix its shape and fold what is constant for that shape.

TVM's ``from_onnx`` reads ``graph.initializer`` only (a ``sparse_initializer`` is ignored and then
fails with a KeyError) and cannot parse ``Constant(sparse_value)``. Both are turned into dense
tensors here, so any valid ONNX imports; our kernels recover the sparsity from the values. It also
cannot evaluate shape arithmetic (computed pads, anchor grids, ``Reshape`` targets built from
``Shape``): :func:`static_onnx_for_tvm` fixes the input shape and folds them into constants.
"""

from __future__ import annotations

import numpy as np

from deploy.tvm.errors import CompileError


def load_onnx_for_tvm(onnx_path):
    """Load ``onnx_path`` and densify its sparse initializers and sparse ``Constant`` nodes."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(onnx_path))
    except (OSError, ValueError, DecodeError) as error:
        raise CompileError(f"cannot read ONNX model {onnx_path}: {error}") from error
    model = _decode_compact_weights(model)
    _densify_sparse_initializers(model.graph)
    _densify_sparse_constants(model.graph)
    return model


def _decode_compact_weights(model):
    """Replace the export stage's in-graph decode functions (CSR, BSR, packed ternary, ...) by dense
    initializers: TVM's importer does not run ONNX model-local functions."""
    from deploy.onnx import OnnxFormatError, densify

    try:
        return densify(model)
    except OnnxFormatError as error:
        raise CompileError(f"cannot decode the compact weights of the ONNX model: {error}") from error


def static_onnx_for_tvm(model, *, input_shape: tuple[int, ...]):
    """``model`` (from :func:`load_onnx_for_tvm`) with its single input fixed to ``input_shape`` and
    every constant subgraph folded (:func:`deploy.onnx.fold.fold_constants`, checked on onnxruntime).

    Raises:
        CompileError: the shape does not fit the input, or onnxruntime cannot run the model.
    """
    from deploy.onnx.errors import OnnxFormatError
    from deploy.onnx.fold import fix_input_shapes, fold_constants

    name = graph_input_name(model)
    try:
        folded = fold_constants(fix_input_shapes(model, {name: tuple(int(v) for v in input_shape)}))
    except OnnxFormatError as error:
        raise CompileError(str(error)) from None
    _name_no_empty_resize_scales(folded.graph)
    return folded


def _name_no_empty_resize_scales(graph) -> None:
    """A ``Resize`` given ``sizes`` and an empty ``scales`` tensor (torch's export at opsets 11-12)
    names no ``scales`` instead: ONNX defines both forms as the same, TVM's importer accepts only
    the second ("Only one of scales and sizes can be provided"). Hand-written: one input renamed."""
    empty = {init.name for init in graph.initializer if list(init.dims) == [0]}
    for node in graph.node:
        if node.op_type == "Resize" and len(node.input) > 3 and node.input[3] and node.input[2] in empty:
            node.input[2] = ""


def graph_input_name(model) -> str:
    """The single graph input that is not an initializer."""
    initializers = {init.name for init in model.graph.initializer}
    names = [value.name for value in model.graph.input if value.name not in initializers]
    if len(names) != 1:
        raise CompileError(f"expected exactly one graph input, found {names}")
    return names[0]


def _dense_from_sparse(sparse) -> np.ndarray:
    """The dense array of a ``SparseTensorProto``; its declared size is checked before allocating."""
    from onnx import numpy_helper

    from deploy.onnx import OnnxFormatError
    from deploy.onnx.codecs.common import check_shape

    try:
        dims = check_shape(tuple(int(d) for d in sparse.dims))
    except OnnxFormatError as error:
        raise CompileError(f"sparse tensor {sparse.values.name!r}: {error}") from None
    values = numpy_helper.to_array(sparse.values)
    indices = numpy_helper.to_array(sparse.indices).astype(np.int64)
    if indices.size and (indices.min() < 0 or (indices.ndim == 1 and indices.max() >= int(np.prod(dims)))):
        raise CompileError(f"sparse tensor {sparse.values.name!r}: indices outside its {list(dims)} elements")
    dense = np.zeros(int(np.prod(dims)), dtype=values.dtype)
    if indices.ndim == 2:
        indices = np.ravel_multi_index(tuple(indices.T), dims)
    dense[indices.reshape(-1)] = values.reshape(-1)
    return dense.reshape(dims)


def _densify_sparse_initializers(graph) -> None:
    from onnx import numpy_helper

    for sparse in list(graph.sparse_initializer):
        graph.initializer.append(numpy_helper.from_array(_dense_from_sparse(sparse), sparse.values.name))
    del graph.sparse_initializer[:]


def _densify_sparse_constants(graph) -> None:
    from onnx import helper, numpy_helper

    for node in graph.node:
        if node.op_type != "Constant":
            continue
        for index, attr in enumerate(node.attribute):
            if attr.name == "sparse_value":
                dense = numpy_helper.from_array(_dense_from_sparse(attr.sparse_tensor))
                node.attribute[index].CopyFrom(helper.make_attribute("value", dense))
