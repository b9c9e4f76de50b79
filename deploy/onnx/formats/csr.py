"""``csr``: float32 non-zeros with narrow column indices and row pointers of the GEMM view."""

from __future__ import annotations

import numpy as np

from deploy.onnx import codecs
from deploy.onnx.decode_functions import dims, flat_positions, scatter_flat
from deploy.onnx.formats.record import WeightFormat, dims_array
from deploy.onnx.function_builder import FunctionBody


def encode(weight: np.ndarray, *, block=(1, 1), scales=None) -> dict[str, np.ndarray]:
    arrays = codecs.encode_csr(weight)
    return {"values": arrays.values, "col_indices": arrays.col_indices, "row_ptrs": arrays.row_ptrs,
            "dims": dims_array(weight.shape)}


def decode(arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    return codecs.decode_csr(codecs.CsrArrays(arrays["values"], arrays["col_indices"], arrays["row_ptrs"], shape))


def decode_body(body: FunctionBody) -> str:
    rows, cols, shape = dims(body)
    flat = flat_positions(body, "col_indices", "row_ptrs", rows, cols)
    dense = scatter_flat(body, "values", flat, body.op("Mul", rows, cols))
    return body.op("Reshape", dense, shape)


FORMAT = WeightFormat(name="csr", roles=("values", "col_indices", "row_ptrs", "dims"), bits=32, encode=encode,
                      decode=decode, function_name="Csr", decode_body=decode_body)
