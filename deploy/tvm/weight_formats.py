"""Encode a dense ``[out, in]`` weight into the arrays our TIR kernels consume (numpy only).

* BSR with ``R x 1`` blocks (``data [nnz_blocks, R]``, ``indices``, ``indptr`` over block rows),
* CSR with every row padded to a multiple of ``U`` entries,
* ternary: int8 codes (transposed, ``[in, out]``) plus positive / negative per-channel scales,
  detected from the values themselves (at most one positive and one negative magnitude per row).

All encoders are exact: decoding gives back the input weight bit for bit (ternary up to the scale
tolerance used for detection).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

CSR_UNROLL_DEFAULT = 4


@dataclass(frozen=True)
class SparseArrays:
    """CSR / BSR arrays. ``data`` is ``[nnz_blocks, R]`` (BSR) or ``[nnz]`` (CSR)."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray


@dataclass(frozen=True)
class TernaryArrays:
    """Ternary weight: ``W[n, k] = pos_scale[n]`` if ``codes[k, n] = 1``, ``-neg_scale[n]`` if -1."""

    codes: np.ndarray
    pos_scale: np.ndarray
    neg_scale: np.ndarray


def block_sparsity(weight: np.ndarray, *, block_rows: int) -> float:
    """Fraction of ``block_rows x 1`` blocks of ``weight [out, in]`` that are all zero."""
    out_features, in_features = weight.shape
    if out_features % block_rows:
        return 0.0
    blocks = weight.reshape(out_features // block_rows, block_rows, in_features)
    return float(1.0 - np.any(blocks != 0, axis=1).mean())


def encode_bsr(weight: np.ndarray, *, block_rows: int) -> SparseArrays:
    """Encode ``weight [out, in]`` as ``block_rows x 1`` BSR; at least one (zero) block is stored."""
    out_features, in_features = weight.shape
    if out_features % block_rows:
        raise ValueError(f"out_features {out_features} is not a multiple of block_rows {block_rows}")
    blocks = weight.reshape(out_features // block_rows, block_rows, in_features).transpose(0, 2, 1)
    keep = np.any(blocks != 0, axis=2)
    rows, cols = np.nonzero(keep)
    data = blocks[rows, cols].astype(np.float32)
    indptr = np.zeros(out_features // block_rows + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=out_features // block_rows), out=indptr[1:])
    if len(data) == 0:
        return SparseArrays(np.zeros((1, block_rows), np.float32), np.zeros(1, np.int32), indptr)
    return SparseArrays(np.ascontiguousarray(data), cols.astype(np.int32), indptr)


def encode_csr(weight: np.ndarray, *, unroll: int) -> SparseArrays:
    """Encode ``weight [out, in]`` as CSR, each row padded with zeros to a multiple of ``unroll``."""
    counts = np.count_nonzero(weight, axis=1)
    padded = -(-counts // unroll) * unroll
    indptr = np.zeros(weight.shape[0] + 1, dtype=np.int32)
    np.cumsum(padded, out=indptr[1:])
    total = max(int(indptr[-1]), unroll)
    data = np.zeros(total, dtype=np.float32)
    indices = np.zeros(total, dtype=np.int32)
    for row in range(weight.shape[0]):
        cols = np.flatnonzero(weight[row])
        start = indptr[row]
        data[start:start + len(cols)] = weight[row, cols]
        indices[start:start + len(cols)] = cols
    return SparseArrays(data, indices, indptr)


def decode_sparse(arrays: SparseArrays, *, shape: tuple[int, int]) -> np.ndarray:
    """Dense ``[out, in]`` weight from BSR (2-D ``data``) or CSR (1-D ``data``) arrays."""
    dense = np.zeros(shape, dtype=np.float32)
    block_rows = arrays.data.shape[1] if arrays.data.ndim == 2 else 1
    for block_row in range(len(arrays.indptr) - 1):
        for entry in range(arrays.indptr[block_row], arrays.indptr[block_row + 1]):
            rows = slice(block_row * block_rows, (block_row + 1) * block_rows)
            dense[rows, arrays.indices[entry]] += arrays.data[entry]
    return dense


def detect_ternary(weight: np.ndarray, *, rtol: float = 1e-6) -> TernaryArrays | None:
    """Return the ternary form of ``weight [out, in]``, or ``None`` if it is not ternary.

    A row is ternary when all its positive entries share one value and all its negative entries
    share one value (relative tolerance ``rtol``). A weight with no non-zero at all, or whose rows
    hold at most one non-zero each, is not reported as ternary (nothing would be gained).
    """
    positive = np.where(weight > 0, weight, np.nan)
    negative = np.where(weight < 0, -weight, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pos_scale = np.nan_to_num(np.nanmax(positive, axis=1))
        neg_scale = np.nan_to_num(np.nanmax(negative, axis=1))
        pos_low = np.nan_to_num(np.nanmin(positive, axis=1))
        neg_low = np.nan_to_num(np.nanmin(negative, axis=1))
    if np.count_nonzero(weight) <= weight.shape[0]:
        return None
    if np.any(pos_scale - pos_low > rtol * pos_scale) or np.any(neg_scale - neg_low > rtol * neg_scale):
        return None
    codes = np.sign(weight).astype(np.int8).T
    return TernaryArrays(np.ascontiguousarray(codes), pos_scale.astype(np.float32),
                         neg_scale.astype(np.float32))


def decode_ternary(arrays: TernaryArrays) -> np.ndarray:
    """Dense ``[out, in]`` float weight of a ternary encoding (for tests and checks)."""
    codes = arrays.codes.T.astype(np.float32)
    return np.where(codes > 0, arrays.pos_scale[:, None], arrays.neg_scale[:, None]) * codes
