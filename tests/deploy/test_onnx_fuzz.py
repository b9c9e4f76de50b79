"""Fuzz the ONNX-level readers: corrupted weight arrays and metadata of a real compact export are
either decoded or rejected with OnnxFormatError, never another exception and never a hang."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from deploy.onnx import OnnxFormatError, densify, export_onnx, read_compressed_weights, read_layouts

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module", params=["auto", "csr", "bsr", "ternary", "delta"])
def compact_model(tmp_path_factory, request):
    import onnx

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 48), torch.nn.ReLU(), torch.nn.Linear(48, 10))
    with torch.no_grad():
        for layer in (model[1], model[3]):
            weight = layer.weight
            weight.mul_((weight.abs() > weight.abs().quantile(0.9)).float())
            weight.copy_(weight.sign() * 0.05)  # sparse ternary values, so every encoding applies
    path = tmp_path_factory.mktemp("fuzz") / "model.onnx"
    export_onnx(model.eval(), torch.rand(4, 1, 8, 8), path, encoding=request.param)
    return onnx.load(str(path))


def _readers_accept_or_reject(model) -> None:
    for reader in (read_layouts, read_compressed_weights, densify):
        try:
            reader(model)
        except OnnxFormatError as error:
            assert str(error)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_onnx_readers_reject_corrupted_weight_arrays_with_our_error(compact_model, data):
    model = copy.deepcopy(compact_model)
    names = sorted({name for record in read_layouts(model) for name in record["arrays"].values()})
    target = data.draw(st.sampled_from(names))
    initializer = next(i for i in model.graph.initializer if i.name == target)
    array = numpy_helper.to_array(initializer)
    size = data.draw(st.integers(0, max(2 * array.size, 4)))
    raw = data.draw(st.binary(min_size=size * array.dtype.itemsize, max_size=size * array.dtype.itemsize))
    corrupted = np.frombuffer(raw, dtype=array.dtype).copy()
    initializer.CopyFrom(numpy_helper.from_array(corrupted, name=target))
    _readers_accept_or_reject(model)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=200), st.builds(json.dumps, st.recursive(st.none() | st.integers() | st.text(max_size=5), lambda x: st.lists(x, max_size=3) | st.dictionaries(st.text(max_size=8), x, max_size=4), max_leaves=10))))
def test_onnx_readers_reject_random_layout_metadata_with_our_error(compact_model, text):
    model = copy.deepcopy(compact_model)
    for prop in model.metadata_props:
        if prop.key == "compress.layouts":
            prop.value = text
    _readers_accept_or_reject(model)
