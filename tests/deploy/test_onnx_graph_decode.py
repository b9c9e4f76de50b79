"""ONNX-level round trip: onnxruntime's in-graph decode and the numpy reader both return the weight."""

from __future__ import annotations

import numpy as np
import onnx
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from deploy.onnx.decode_functions import DOMAIN
from deploy.onnx.densify import densify
from deploy.onnx.encodings import encode_as
from deploy.onnx.graph_rewrite import EncodedWeight, encode_graph
from deploy.onnx.metadata import LAYOUTS_KEY, read_layouts, set_metadata
from deploy.onnx.parity import onnxruntime_session
from deploy.onnx.reader import read_compressed_weights

SHAPES = st.one_of(
    st.tuples(st.integers(1, 9), st.integers(1, 40)),
    st.tuples(st.integers(1, 6), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)),
)
BLOCKS = st.tuples(st.integers(1, 4), st.integers(1, 4))


def _weight(shape, density, seed, *, ternary: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = shape[0]
    if ternary:
        pos = rng.uniform(0.1, 2, (rows, 1)).astype(np.float32)
        neg = -rng.uniform(0.1, 2, (rows, 1)).astype(np.float32)
        codes = rng.integers(1, 3, (rows, int(np.prod(shape[1:]))))
        matrix = np.where(codes == 1, pos, neg).astype(np.float32)
    else:
        matrix = rng.standard_normal((rows, int(np.prod(shape[1:])))).astype(np.float32)
    matrix[rng.random(matrix.shape) >= density] = 0
    return matrix.reshape(shape)


def _identity_model(weight: np.ndarray) -> onnx.ModelProto:
    """A graph whose output is the weight initializer ``w`` itself."""
    node = helper.make_node("Identity", ["w"], ["out"])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, list(weight.shape))
    graph = helper.make_graph([node], "g", [], [out], [numpy_helper.from_array(weight, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _encoded_model(weight: np.ndarray, fmt: str, block, scales=None) -> onnx.ModelProto:
    encoded = EncodedWeight("w", "layer.weight", "Gemm", encode_as(weight, fmt, block=block, scales=scales))
    model = encode_graph(_identity_model(weight), [encoded])
    set_metadata(model, key=LAYOUTS_KEY, value=[encoded.layout_record()])
    onnx.checker.check_model(model, full_check=True)
    return model


def _assert_round_trip(weight: np.ndarray, fmt: str, block=(1, 1), scales=None) -> None:
    model = _encoded_model(weight, fmt, block, scales)
    from_ort = onnxruntime_session(model).run(None, {})[0]
    from_numpy = read_compressed_weights(model)["w"]
    assert from_ort.shape == weight.shape and from_numpy.shape == weight.shape
    assert np.array_equal(from_ort.view(np.uint32), weight.view(np.uint32))
    assert np.array_equal(from_numpy.view(np.uint32), weight.view(np.uint32))


@settings(max_examples=12, deadline=None)
@given(shape=SHAPES, density=st.sampled_from([0.0, 0.05, 0.5, 1.0]), seed=st.integers(0, 2**31))
def test_onnx_graph_decode_csr_matches_weight(shape, density, seed):
    _assert_round_trip(_weight(shape, density, seed, ternary=False), "csr")


@settings(max_examples=12, deadline=None)
@given(shape=SHAPES, density=st.sampled_from([0.0, 0.002, 0.05, 1.0]), seed=st.integers(0, 2**31))
def test_onnx_graph_decode_delta_matches_weight(shape, density, seed):
    _assert_round_trip(_weight(shape, density, seed, ternary=False), "delta")


def test_onnx_graph_decode_delta_matches_weight_when_gaps_need_fillers():
    weight = np.zeros((3, 700), dtype=np.float32)
    weight[0, 0], weight[1, 600], weight[2, 699] = 1.0, -2.0, 3.0
    _assert_round_trip(weight, "delta")
    _assert_round_trip(weight.clip(-1, 1) * np.float32(0.5), "ternary-delta")


@settings(max_examples=12, deadline=None)
@given(shape=SHAPES, density=st.sampled_from([0.0, 0.05, 0.5, 1.0]), seed=st.integers(0, 2**31), block=BLOCKS)
def test_onnx_graph_decode_bsr_matches_weight(shape, density, seed, block):
    _assert_round_trip(_weight(shape, density, seed, ternary=False), "bsr", block)


@settings(max_examples=12, deadline=None)
@given(shape=SHAPES, density=st.sampled_from([0.0, 0.3, 1.0]), seed=st.integers(0, 2**31),
       fmt=st.sampled_from(["ternary", "ternary-csr", "ternary-delta"]))
def test_onnx_graph_decode_ternary_matches_weight(shape, density, seed, fmt):
    _assert_round_trip(_weight(shape, density, seed, ternary=True), fmt)


@settings(max_examples=12, deadline=None)
@given(shape=SHAPES, density=st.sampled_from([0.0, 0.3, 1.0]), seed=st.integers(0, 2**31), block=BLOCKS)
def test_onnx_graph_decode_ternary_bsr_matches_weight(shape, density, seed, block):
    _assert_round_trip(_weight(shape, density, seed, ternary=True), "ternary-bsr", block)


@settings(max_examples=10, deadline=None)
@given(shape=SHAPES, seed=st.integers(0, 2**31))
def test_onnx_graph_decode_binary_matches_weight(shape, seed):
    _assert_round_trip(_weight(shape, 1.0, seed, ternary=True), "binary")


@settings(max_examples=10, deadline=None)
@given(shape=SHAPES, seed=st.integers(0, 2**31))
def test_onnx_graph_decode_int8_matches_weight(shape, seed):
    rng = np.random.default_rng(seed)
    scales = rng.uniform(1e-3, 1, shape[0]).astype(np.float32)
    codes = rng.integers(-127, 128, (shape[0], int(np.prod(shape[1:])))).astype(np.float32)
    _assert_round_trip((codes * scales[:, None]).reshape(shape), "int8", scales=scales)


def test_onnx_graph_decode_densify_leaves_plain_initializer():
    weight = _weight((5, 12), 0.2, 0, ternary=True)
    model = densify(_encoded_model(weight, "ternary-csr", (1, 1)))
    onnx.checker.check_model(model, full_check=True)
    assert [init.name for init in model.graph.initializer] == ["w"]
    assert not model.functions and all(o.domain != DOMAIN for o in model.opset_import)
    assert np.array_equal(numpy_helper.to_array(model.graph.initializer[0]), weight)
    assert read_layouts(model)[0]["encoded_format"] == "ternary-csr"
