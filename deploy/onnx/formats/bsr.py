"""``bsr``: float32 ``r x c`` blocks of the layout's block shape with block-column indices and
block-row pointers (a forced ``bsr`` without a block uses 1x1 blocks)."""

from __future__ import annotations

import numpy as np

from deploy.onnx import codecs
from deploy.onnx.decode_functions import dims, scatter_blocks
from deploy.onnx.formats.record import WeightFormat, dims_array
from deploy.onnx.function_builder import FunctionBody


def encode(weight: np.ndarray, *, block=(1, 1), scales=None) -> dict[str, np.ndarray]:
    arrays = codecs.encode_bsr(weight, block=block)
    return {"values": arrays.values, "col_indices": arrays.col_indices, "row_ptrs": arrays.row_ptrs,
            "dims": dims_array(weight.shape)}


def decode(arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    return codecs.decode_bsr(codecs.BsrArrays(arrays["values"], arrays["col_indices"], arrays["row_ptrs"], shape))


def decode_body(body: FunctionBody) -> str:
    rows, cols, shape = dims(body)
    matrix = scatter_blocks(body, "values", "col_indices", "row_ptrs", rows, cols)
    return body.op("Reshape", matrix, shape)


FORMAT = WeightFormat(name="bsr", roles=("values", "col_indices", "row_ptrs", "dims"), bits=32, encode=encode,
                      decode=decode, function_name="Bsr", decode_body=decode_body, blocked=True)
