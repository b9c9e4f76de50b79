"""``delta``: float32 non-zeros with the narrow gaps between their flat positions."""

from __future__ import annotations

import numpy as np

from deploy.onnx import codecs
from deploy.onnx.decode_functions import delta_flat, dims, scatter_flat
from deploy.onnx.formats.record import WeightFormat, dims_array
from deploy.onnx.function_builder import FunctionBody


def encode(weight: np.ndarray, *, block=(1, 1), scales=None) -> dict[str, np.ndarray]:
    arrays = codecs.encode_delta(weight)
    return {"values": arrays.values, "deltas": arrays.deltas, "dims": dims_array(weight.shape)}


def decode(arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    return codecs.decode_delta(codecs.DeltaArrays(arrays["values"], arrays["deltas"], shape))


def decode_body(body: FunctionBody) -> str:
    rows, cols, shape = dims(body)
    dense = scatter_flat(body, "values", delta_flat(body), body.op("Mul", rows, cols))
    return body.op("Reshape", dense, shape)


FORMAT = WeightFormat(name="delta", roles=("values", "deltas", "dims"), bits=32, encode=encode, decode=decode,
                      function_name="Delta", decode_body=decode_body)
