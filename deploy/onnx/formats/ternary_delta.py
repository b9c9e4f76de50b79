"""``ternary-delta``: 2-bit codes of the non-zeros of a ternary weight with the gaps between their
flat positions and two scales per row (tried by a forced ``ternary``)."""

from __future__ import annotations

import numpy as np

from deploy.onnx import codecs
from deploy.onnx.decode_functions import delta_flat, dims, scatter_flat, ternary_map, unpack
from deploy.onnx.formats.record import WeightFormat, dims_array
from deploy.onnx.function_builder import FunctionBody


def encode(weight: np.ndarray, *, block=(1, 1), scales=None) -> dict[str, np.ndarray]:
    arrays = codecs.encode_ternary_delta(weight)
    return {"codes": arrays.codes, "deltas": arrays.col_indices, "pos_scales": arrays.pos_scales,
            "neg_scales": arrays.neg_scales, "dims": dims_array(weight.shape)}


def decode(arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    empty = np.zeros(0, np.uint8)
    sparse = codecs.SparseTernaryArrays(arrays["codes"], arrays["deltas"], empty, arrays["pos_scales"],
                                        arrays["neg_scales"], shape)
    return codecs.decode_ternary_delta(sparse)


def decode_body(body: FunctionBody) -> str:
    rows, cols, shape = dims(body)
    flat = delta_flat(body)
    codes = unpack(body, "codes", body.op("Shape", flat), bits=2)
    dense = scatter_flat(body, codes, flat, body.op("Mul", rows, cols))
    codes2d = body.op("Reshape", dense, body.op("Concat", rows, cols, axis=0))
    return ternary_map(body, codes2d, "pos_scales", "neg_scales", shape, binary=False)


FORMAT = WeightFormat(name="ternary-delta", roles=("codes", "deltas", "pos_scales", "neg_scales", "dims"), bits=2,
                      encode=encode, decode=decode, function_name="TernaryDelta", decode_body=decode_body,
                      family="ternary")
