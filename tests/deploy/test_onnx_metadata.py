"""Metadata, reader and format selection: schema checks and failures with OnnxFormatError."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from deploy.onnx import OnnxFormatError, read_compressed_weights, read_layouts
from deploy.onnx.encodings import encode_candidates, encode_weight
from deploy.onnx.metadata import LAYOUTS_KEY, set_metadata
from deploy.onnx.reader import decode_arrays
from deploy.onnx.selection import select_encodings


def _model_with(layouts_text: str, initializers=()) -> onnx.ModelProto:
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1])
    graph = helper.make_graph([], "g", [], [out], list(initializers))
    model = helper.make_model(graph)
    model.metadata_props.add(key=LAYOUTS_KEY, value=layouts_text)
    return model


def _record(**overrides) -> dict:
    record = {"fqn": "fc.weight", "initializer": "w", "op": "Gemm", "shape": [2, 3], "format": "csr",
              "block": [1, 1], "nnz": 1, "bits": 32, "arrays": {}}
    record.update(overrides)
    return record


@pytest.mark.parametrize("text", ["{not json", '{"a": 1}', '[{"fqn": "x"}]', '[{"fqn": 1, "arrays": 3}]'])
def test_onnx_metadata_read_layouts_raises_format_error_when_malformed(text):
    with pytest.raises(OnnxFormatError, match="compress.layouts"):
        read_layouts(_model_with(text))


def test_onnx_metadata_read_layouts_returns_empty_list_when_absent():
    assert read_layouts(helper.make_model(helper.make_graph([], "g", [], []))) == []


def test_onnx_metadata_set_metadata_replaces_existing_key():
    model = _model_with("[]")
    set_metadata(model, key=LAYOUTS_KEY, value=[_record()])
    assert len(model.metadata_props) == 1 and read_layouts(model)[0]["fqn"] == "fc.weight"


def test_onnx_metadata_reader_raises_format_error_when_array_missing():
    model = _model_with("[]")
    set_metadata(model, key=LAYOUTS_KEY, value=[_record(arrays={"values": "nope"})])
    with pytest.raises(OnnxFormatError, match="nope"):
        read_compressed_weights(model)


def test_onnx_metadata_decode_arrays_raises_format_error_when_dims_disagree():
    arrays = dict(encode_weight(np.eye(2, 3, dtype=np.float32), encoding="csr").arrays)
    arrays["dims"] = np.asarray([3, 2, 3, 2], np.int64)
    with pytest.raises(OnnxFormatError, match="dims"):
        decode_arrays("csr", arrays, shape=(2, 3))


def test_onnx_metadata_decode_arrays_raises_format_error_when_format_unknown():
    with pytest.raises(OnnxFormatError, match="zip"):
        decode_arrays("zip", {}, shape=(2, 3))


def test_onnx_metadata_reader_decodes_dense_record():
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    model = _model_with("[]", [numpy_helper.from_array(weight, "w")])
    set_metadata(model, key=LAYOUTS_KEY, value=[_record(format="dense", arrays={"values": "w"})])
    assert np.array_equal(read_compressed_weights(model)["w"], weight)


def test_onnx_selection_keeps_dense_when_decode_function_costs_more_than_it_saves():
    weight = np.zeros((4, 4), np.float32)
    weight[0, 0] = 1.0
    chosen = select_encodings([encode_candidates(weight)], opset=17)
    assert chosen[0].format == "dense"


def test_onnx_selection_picks_sparse_format_when_weight_large_and_sparse():
    weight = np.zeros((64, 256), np.float32)
    weight[::7, ::5] = 1.5
    chosen = select_encodings([encode_candidates(weight)], opset=17)
    assert chosen[0].format not in ("dense", "int8")
    assert chosen[0].stored_bytes < weight.nbytes // 10


def test_onnx_selection_shares_one_format_across_weights_when_cheaper():
    rng = np.random.default_rng(0)
    weights = [np.where(rng.random((32, 64)) < 0.05, rng.standard_normal((32, 64)), 0).astype(np.float32)
               for _ in range(3)]
    chosen = select_encodings([encode_candidates(w) for w in weights], opset=17)
    assert len({enc.format for enc in chosen}) == 1
