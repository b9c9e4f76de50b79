"""Decode the compressed weights of an exported model with the numpy codecs (no onnxruntime)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from deploy.onnx import codecs
from deploy.onnx.codecs.common import check_shape, gemm_shape
from deploy.onnx.errors import OnnxFormatError
from deploy.onnx.metadata import read_layouts

_ROLES = {
    "dense": ("values",),
    "int8": ("codes", "scales"),
    "csr": ("values", "col_indices", "row_ptrs", "dims"),
    "bsr": ("values", "col_indices", "row_ptrs", "dims"),
    "ternary": ("codes", "pos_scales", "neg_scales", "dims"),
    "binary": ("codes", "pos_scales", "neg_scales", "dims"),
    "ternary-csr": ("codes", "col_indices", "row_ptrs", "pos_scales", "neg_scales", "dims"),
    "ternary-bsr": ("codes", "col_indices", "row_ptrs", "pos_scales", "neg_scales", "dims", "block"),
    "delta": ("values", "deltas", "dims"),
    "ternary-delta": ("codes", "deltas", "pos_scales", "neg_scales", "dims"),
}


def _check_dims(arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> None:
    if "dims" in arrays:
        expected = [*gemm_shape(shape), *shape]
        if arrays["dims"].tolist() != expected:
            raise OnnxFormatError(f"dims array {arrays['dims'].tolist()} != {expected} for shape {shape}")


def _block(arrays: dict[str, np.ndarray]) -> tuple[int, int] | None:
    block = arrays.get("block")
    if block is None:
        return None
    if block.shape != (2,):
        raise OnnxFormatError(f"block array must have 2 entries, got {block.tolist()}")
    return int(block[0]), int(block[1])


def decode_arrays(fmt: str, arrays: dict[str, np.ndarray], *, shape) -> np.ndarray:
    """Dense weight of ``shape`` from the stored ``arrays`` of format ``fmt``.

    Raises:
        OnnxFormatError: unknown format, missing roles, or malformed arrays.
    """
    if fmt not in _ROLES:
        raise OnnxFormatError(f"unknown weight format {fmt!r}; allowed: {', '.join(_ROLES)}")
    missing = [role for role in _ROLES[fmt] if role not in arrays]
    if missing:
        raise OnnxFormatError(f"format {fmt!r} needs arrays {missing}")
    shape = check_shape(shape)
    _check_dims(arrays, shape)
    a = arrays
    if fmt == "dense":
        weight = a["values"]
    elif fmt == "int8":
        weight = codecs.decode_int8(codecs.Int8Arrays(a["codes"], a["scales"]))
    elif fmt == "csr":
        weight = codecs.decode_csr(codecs.CsrArrays(a["values"], a["col_indices"], a["row_ptrs"], shape))
    elif fmt == "bsr":
        weight = codecs.decode_bsr(codecs.BsrArrays(a["values"], a["col_indices"], a["row_ptrs"], shape))
    elif fmt == "delta":
        weight = codecs.decode_delta(codecs.DeltaArrays(a["values"], a["deltas"], shape))
    elif fmt == "ternary-delta":
        empty = np.zeros(0, np.uint8)
        sparse = codecs.SparseTernaryArrays(a["codes"], a["deltas"], empty, a["pos_scales"], a["neg_scales"], shape)
        weight = codecs.decode_ternary_delta(sparse)
    elif fmt in ("ternary", "binary"):
        packed = codecs.TernaryArrays(a["codes"], a["pos_scales"], a["neg_scales"], shape)
        weight = codecs.unpack_ternary(packed) if fmt == "ternary" else codecs.unpack_binary(packed)
    else:
        sparse = codecs.SparseTernaryArrays(
            a["codes"], a["col_indices"], a["row_ptrs"], a["pos_scales"], a["neg_scales"], shape, _block(a)
        )
        weight = codecs.decode_ternary_csr(sparse) if fmt == "ternary-csr" else codecs.decode_ternary_bsr(sparse)
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
