"""Compressed sparse row (CSR) codec on the GEMM view ``[out, in*kh*kw]`` of a weight.

Storage: ``values`` (nnz, the weight's dtype), ``col_indices`` (nnz, narrowest uint that holds
``cols - 1``) and ``row_ptrs`` (rows + 1, narrowest uint that holds ``nnz``). A stored value is any
entry not equal to zero (NaN included). All codecs treat -0.0 as +0.0 (masking ``w * 0`` yields
-0.0 for negative ``w``; storing those would waste space), so ``decode_csr(encode_csr(w))`` is
bit-exact for every ``w`` without -0.0, and decodes -0.0 as +0.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from deploy.onnx.codecs.common import (
    check_float,
    check_index_array,
    check_row_ptrs,
    check_shape,
    gemm_shape,
    gemm_view,
    narrowest_uint,
    nonzero_mask,
)
from deploy.onnx.codecs.row_arrays import RowCompressedArrays
from deploy.onnx.errors import OnnxFormatError


@dataclass(frozen=True)
class CsrArrays(RowCompressedArrays):
    """CSR arrays of one weight.

    Attributes:
        values: stored values, shape ``[nnz]``.
        col_indices: column of each stored value in the GEMM view, shape ``[nnz]``.
        row_ptrs: ``row_ptrs[i]:row_ptrs[i+1]`` are the entries of row ``i``, shape ``[rows + 1]``.
        shape: the weight's shape.
    """


def encode_csr(weight: np.ndarray) -> CsrArrays:
    """Encode a float32 / float16 weight as CSR on its GEMM view (structure from ``scipy.sparse.csr_array``).

    Args:
        weight: dense weight of rank >= 1.

    Returns:
        The CSR arrays; index dtypes are the narrowest unsigned types that fit.
    """
    check_float(weight, role="weight")
    matrix = gemm_view(np.ascontiguousarray(weight))
    rows, cols = matrix.shape
    structure = scipy.sparse.csr_array(nonzero_mask(matrix))  # the sparsity structure (dtype-agnostic: float16 too)
    row_ids = np.repeat(np.arange(rows), np.diff(structure.indptr))
    return CsrArrays(
        values=matrix[row_ids, structure.indices].copy(),
        col_indices=structure.indices.astype(narrowest_uint(max(cols - 1, 0))),
        row_ptrs=structure.indptr.astype(narrowest_uint(int(structure.nnz))),
        shape=tuple(int(v) for v in weight.shape),
    )


def csr_row_ids(row_ptrs: np.ndarray, *, rows: int, nnz: int) -> np.ndarray:
    """Row index of each stored entry, validated (int64, length ``nnz``)."""
    ptrs = check_row_ptrs(row_ptrs, rows=rows, nnz=nnz)
    return np.repeat(np.arange(rows, dtype=np.int64), np.diff(ptrs))


def csr_flat_indices(col_indices: np.ndarray, row_ptrs: np.ndarray, *, shape: tuple[int, ...]) -> np.ndarray:
    """Validated flat indices (into the GEMM view, row-major) of the stored entries.

    Written here rather than left to ``scipy.sparse``'s ``check_format``: the arrays come from an
    untrusted ONNX file, so every fault must be an ``OnnxFormatError`` naming it before anything is
    allocated, and scipy accepts duplicate columns (it sums them), which would not decode exactly.

    Raises:
        OnnxFormatError: wrong dtypes or lengths, a column out of range, or a duplicate / unsorted
            column within a row.
    """
    rows, cols = gemm_shape(check_shape(shape))
    col = check_index_array(col_indices, role="col_indices")
    row = csr_row_ids(row_ptrs, rows=rows, nnz=col.shape[0])
    if col.size and int(col.max()) >= cols:
        raise OnnxFormatError(f"col_indices must be < cols={cols}, got max {int(col.max())}")
    flat = row * cols + col
    if np.any(np.diff(flat) <= 0):
        raise OnnxFormatError("col_indices must be strictly increasing within each row")
    return flat


def decode_csr(arrays: CsrArrays) -> np.ndarray:
    """Decode CSR arrays back to the dense weight (bit-exact inverse of ``encode_csr``).

    Raises:
        OnnxFormatError: malformed arrays (see ``csr_flat_indices``) or a values length mismatch.
    """
    values = np.asarray(arrays.values)
    check_float(values, role="values")
    shape = check_shape(arrays.shape)
    if values.ndim != 1:
        raise OnnxFormatError(f"values must be 1-D, got shape {values.shape}")
    flat = csr_flat_indices(arrays.col_indices, arrays.row_ptrs, shape=shape)
    if flat.shape[0] != values.shape[0]:
        raise OnnxFormatError(f"values length {values.shape[0]} != col_indices length {flat.shape[0]}")
    dense = np.zeros(int(np.prod(shape, dtype=np.int64)), dtype=values.dtype)
    dense[flat] = values
    return dense.reshape(shape)
