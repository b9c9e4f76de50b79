"""ONNX input preparation: sparse initializers densified, declared sizes checked before allocating."""

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from deploy.tvm.errors import CompileError
from deploy.tvm.onnx_input import graph_input_name, load_onnx_for_tvm


def _model(tmp_path, *, metadata=None, sparse=False):
    weight = np.zeros((4, 3), np.float32)
    weight[1, 2], weight[3, 0] = 2.0, -1.0
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])])
    if sparse:
        flat = np.flatnonzero(weight)
        graph.sparse_initializer.append(helper.make_sparse_tensor(
            numpy_helper.from_array(weight.reshape(-1)[flat], "w"), numpy_helper.from_array(flat, "w_idx"), [4, 3]))
    else:
        graph.initializer.append(numpy_helper.from_array(weight, "w"))
    model = helper.make_model(graph)
    if metadata is not None:
        helper.set_model_props(model, {"compress.layouts": metadata})
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return path, weight


def test_onnx_input_densifies_sparse_initializer(tmp_path):
    path, weight = _model(tmp_path, sparse=True)
    model = load_onnx_for_tvm(path)
    assert len(model.graph.sparse_initializer) == 0
    np.testing.assert_array_equal(numpy_helper.to_array(model.graph.initializer[0]), weight)


def test_onnx_input_reads_single_graph_input_name(tmp_path):
    path, _ = _model(tmp_path)
    assert graph_input_name(load_onnx_for_tvm(path)) == "x"


def test_onnx_input_raises_one_line_compile_error_when_layout_metadata_is_not_json(tmp_path):
    path, _ = _model(tmp_path, metadata="{not json")
    with pytest.raises(CompileError, match="compress.layouts") as info:
        load_onnx_for_tvm(path)
    assert "\n" not in str(info.value)


def test_onnx_input_refuses_a_sparse_initializer_declaring_an_absurd_size_before_allocating(tmp_path):
    from onnx import helper, numpy_helper

    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 100000])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 100000])])
    graph.sparse_initializer.append(helper.make_sparse_tensor(
        numpy_helper.from_array(np.ones(1, np.float32), "w"), numpy_helper.from_array(np.zeros(1, np.int64), "w_idx"),
        [100000, 100000]))
    path = tmp_path / "huge.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(CompileError, match="exceeds"):
        load_onnx_for_tvm(path)


def test_onnx_input_refuses_negative_sparse_indices(tmp_path):
    from onnx import helper, numpy_helper

    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])])
    graph.sparse_initializer.append(helper.make_sparse_tensor(
        numpy_helper.from_array(np.ones(1, np.float32), "w"), numpy_helper.from_array(np.array([-5], np.int64), "w_idx"), [4, 3]))
    path = tmp_path / "negative.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(CompileError, match="indices outside"):
        load_onnx_for_tvm(path)
