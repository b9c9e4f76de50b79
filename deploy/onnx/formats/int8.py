"""``int8``: symmetric per-output-channel int8 codes, ``W = scales[o] * codes`` (exact or refused),
decoded by the standard ``DequantizeLinear`` op (no decode function)."""

from __future__ import annotations

import numpy as np
from onnx import helper

from deploy.onnx import codecs
from deploy.onnx.formats.record import WeightFormat


def encode(weight: np.ndarray, *, block=(1, 1), scales=None) -> dict[str, np.ndarray]:
    arrays = codecs.encode_int8(weight, scales=scales)
    return {"codes": arrays.codes, "scales": arrays.scales}


def decode(arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    return codecs.decode_int8(codecs.Int8Arrays(arrays["codes"], arrays["scales"]))


def decode_node(inputs: list[str], output: str):
    return helper.make_node("DequantizeLinear", inputs, [output], axis=0)


FORMAT = WeightFormat(name="int8", roles=("codes", "scales"), bits=8, encode=encode, decode=decode,
                      decode_node=decode_node)
