"""``ternary-bsr``: 2-bit codes of the non-zero ``r x c`` blocks of a ternary weight with BSR
positions and two scales per row (tried by a forced ``ternary`` with a block)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from deploy.onnx import codecs
from deploy.onnx.decode_functions import dims, scatter_blocks, ternary_map, unpack
from deploy.onnx.formats.record import WeightFormat, block_of, dims_array
from deploy.onnx.function_builder import FunctionBody

ROLES = ("codes", "col_indices", "row_ptrs", "pos_scales", "neg_scales", "dims", "block")


def encode(weight: np.ndarray, *, block=(1, 1), scales=None) -> dict[str, np.ndarray]:
    arrays = codecs.encode_ternary_bsr(weight, block=block)
    return {"codes": arrays.codes, "col_indices": arrays.col_indices, "row_ptrs": arrays.row_ptrs,
            "pos_scales": arrays.pos_scales, "neg_scales": arrays.neg_scales, "dims": dims_array(weight.shape),
            "block": np.asarray(block, dtype=np.int64)}


def decode(arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    sparse = codecs.SparseTernaryArrays(*(arrays[role] for role in ROLES[:5]), shape, block_of(arrays))
    return codecs.decode_ternary_bsr(sparse)


def decode_body(body: FunctionBody) -> str:
    rows, cols, shape = dims(body)
    nblocks = body.op("Shape", body.op("Cast", "col_indices", to=TensorProto.INT64))
    count = body.op("Mul", nblocks, body.op("Mul", body.slice1("block", 0, 1), body.slice1("block", 1, 2)))
    codes = unpack(body, "codes", count, bits=2)
    blocks = body.op("Reshape", codes, body.op("Concat", nblocks, "block", axis=0))
    codes2d = scatter_blocks(body, blocks, "col_indices", "row_ptrs", rows, cols)
    return ternary_map(body, codes2d, "pos_scales", "neg_scales", shape, binary=False)


FORMAT = WeightFormat(name="ternary-bsr", roles=ROLES, bits=2, encode=encode, decode=decode,
                      function_name="TernaryBsr", decode_body=decode_body, family="ternary", blocked=True,
                      family_block="block")
