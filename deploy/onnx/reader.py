"""Decode the compressed weights of an exported model with each format's numpy reader (no onnxruntime)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from deploy.onnx.codecs.common import check_shape, gemm_shape
from deploy.onnx.errors import OnnxFormatError
from deploy.onnx.formats import get_format
from deploy.onnx.metadata import read_layouts


def _check_dims(arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> None:
    if "dims" in arrays:
        expected = [*gemm_shape(shape), *shape]
        if arrays["dims"].tolist() != expected:
            raise OnnxFormatError(f"dims array {arrays['dims'].tolist()} != {expected} for shape {shape}")


def decode_arrays(fmt: str, arrays: dict[str, np.ndarray], *, shape) -> np.ndarray:
    """Dense weight of ``shape`` from the stored ``arrays`` of format ``fmt`` (its ``WeightFormat.decode``).

    Raises:
        OnnxFormatError: unknown format, missing roles, or malformed arrays.
    """
    record = get_format(fmt)
    missing = [role for role in record.roles if role not in arrays]
    if missing:
        raise OnnxFormatError(f"format {fmt!r} needs arrays {missing}")
    shape = check_shape(shape)
    _check_dims(arrays, shape)
    weight = record.decode(arrays, shape)
    if tuple(weight.shape) != shape:
        raise OnnxFormatError(f"decoded weight has shape {tuple(weight.shape)}, metadata says {shape}")
    return weight


def read_compressed_weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Dense weights of every ``compress.layouts`` record, keyed by the initializer the graph consumes.

    Raises:
        OnnxFormatError: a record names a missing initializer or holds malformed arrays.
    """
    stored = {init.name: init for init in model.graph.initializer}
    weights = {}
    for record in read_layouts(model):
        arrays = {}
        for role, name in record["arrays"].items():
            if name not in stored:
                raise OnnxFormatError(f"layout of {record['initializer']!r} names missing initializer {name!r}")
            arrays[role] = numpy_helper.to_array(stored[name])
        weights[record["initializer"]] = decode_arrays(record["format"], arrays, shape=record["shape"])
    return weights
