"""``ternary``: 2-bit codes (0, +, -) of every weight with one positive and one negative scale per row."""

from __future__ import annotations

import numpy as np

from deploy.onnx import codecs
from deploy.onnx.decode_functions import dense_codes, ternary_map
from deploy.onnx.formats.record import WeightFormat, dims_array
from deploy.onnx.function_builder import FunctionBody


def encode(weight: np.ndarray, *, block=(1, 1), scales=None) -> dict[str, np.ndarray]:
    arrays = codecs.pack_ternary(weight)
    return {"codes": arrays.codes, "pos_scales": arrays.pos_scales, "neg_scales": arrays.neg_scales,
            "dims": dims_array(weight.shape)}


def decode(arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    packed = codecs.TernaryArrays(arrays["codes"], arrays["pos_scales"], arrays["neg_scales"], shape)
    return codecs.unpack_ternary(packed)


def decode_body(body: FunctionBody) -> str:
    codes, shape = dense_codes(body, bits=2)
    return ternary_map(body, codes, "pos_scales", "neg_scales", shape, binary=False)


FORMAT = WeightFormat(name="ternary", roles=("codes", "pos_scales", "neg_scales", "dims"), bits=2, encode=encode,
                      decode=decode, function_name="Ternary", decode_body=decode_body)
