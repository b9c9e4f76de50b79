"""``ternary-csr``: CSR positions of the non-zeros of a ternary weight, one sign bit each, two scales
per row (tried by a forced ``ternary`` without a block)."""

from __future__ import annotations

import numpy as np

from deploy.onnx import codecs
from deploy.onnx.decode_functions import dims, flat_positions, scatter_flat, ternary_map, unpack
from deploy.onnx.formats.record import WeightFormat, dims_array
from deploy.onnx.function_builder import FunctionBody

ROLES = ("codes", "col_indices", "row_ptrs", "pos_scales", "neg_scales", "dims")


def encode(weight: np.ndarray, *, block=(1, 1), scales=None) -> dict[str, np.ndarray]:
    arrays = codecs.encode_ternary_csr(weight)
    return {"codes": arrays.codes, "col_indices": arrays.col_indices, "row_ptrs": arrays.row_ptrs,
            "pos_scales": arrays.pos_scales, "neg_scales": arrays.neg_scales, "dims": dims_array(weight.shape)}


def decode(arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    return codecs.decode_ternary_csr(codecs.SparseTernaryArrays(*(arrays[role] for role in ROLES[:5]), shape))


def decode_body(body: FunctionBody) -> str:
    rows, cols, shape = dims(body)
    flat = flat_positions(body, "col_indices", "row_ptrs", rows, cols)
    signs = unpack(body, "codes", body.op("Shape", flat), bits=1)
    codes = body.op("Sub", body.const([2], np.uint8), signs)
    dense = scatter_flat(body, codes, flat, body.op("Mul", rows, cols))
    codes2d = body.op("Reshape", dense, body.op("Concat", rows, cols, axis=0))
    return ternary_map(body, codes2d, "pos_scales", "neg_scales", shape, binary=False)


FORMAT = WeightFormat(name="ternary-csr", roles=ROLES, bits=1, encode=encode, decode=decode,
                      function_name="TernaryCsr", decode_body=decode_body, family="ternary", family_block="no-block")
