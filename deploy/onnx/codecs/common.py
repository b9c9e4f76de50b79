"""Helpers shared by the codecs: GEMM view, narrow index dtypes, checks."""

from __future__ import annotations

import numpy as np

from deploy.onnx.errors import OnnxFormatError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))
INDEX_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32))
MAX_NUMEL = 2**30  # decoders refuse to allocate larger weights (malformed metadata guard)


def gemm_view(weight: np.ndarray) -> np.ndarray:
    """Return the ``[out, in*kh*kw]`` view of a weight (a 1-D weight becomes one row).

    Args:
        weight: array of rank >= 1.

    Returns:
        A 2-D view (no copy when the input is contiguous).
    """
    if weight.ndim == 0:
        raise OnnxFormatError(f"weight must have rank >= 1, got a scalar of shape {weight.shape}")
    if weight.ndim == 1:
        return weight.reshape(1, -1)
    return weight.reshape(weight.shape[0], -1)


def gemm_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """Rows and columns of the GEMM view of ``shape``."""
    if len(shape) == 0:
        raise OnnxFormatError(f"weight shape must have rank >= 1, got {shape}")
    if len(shape) == 1:
        return 1, int(shape[0])
    return int(shape[0]), int(np.prod(shape[1:], dtype=np.int64))


def narrowest_uint(max_value: int) -> np.dtype:
    """Smallest unsigned dtype (uint8 / uint16 / uint32) holding ``max_value``."""
    for dtype in INDEX_DTYPES:
        if max_value <= np.iinfo(dtype).max:
            return dtype
    raise OnnxFormatError(f"index {max_value} does not fit in uint32")


def nonzero_mask(values: np.ndarray) -> np.ndarray:
    """True where a value is stored: not equal to zero (NaN counts as stored, -0.0 does not)."""
    return values != 0


def canonical_zeros(values: np.ndarray) -> np.ndarray:
    """``values`` with every -0.0 replaced by +0.0 (the codecs' zero; all other bits unchanged)."""
    check_float(values, role="weight")
    return np.where(values == 0, np.zeros((), dtype=values.dtype), values)


def check_float(values: np.ndarray, *, role: str) -> None:
    """Raise unless ``values`` is float32 or float16."""
    if values.dtype not in FLOAT_DTYPES:
        raise OnnxFormatError(f"{role} dtype must be float32 or float16, got {values.dtype}")


def check_index_array(array: np.ndarray, *, role: str, length: int | None = None) -> np.ndarray:
    """Validate a 1-D unsigned index array and return it as int64.

    Args:
        array: the stored index array.
        role: its name, for error messages.
        length: required length, if known.
    """
    if not isinstance(array, np.ndarray) or array.dtype not in INDEX_DTYPES:
        dtype = getattr(array, "dtype", type(array).__name__)
        raise OnnxFormatError(f"{role} must be a uint8/uint16/uint32 array, got {dtype}")
    if array.ndim != 1:
        raise OnnxFormatError(f"{role} must be 1-D, got shape {array.shape}")
    if length is not None and array.shape[0] != length:
        raise OnnxFormatError(f"{role} must have length {length}, got {array.shape[0]}")
    return array.astype(np.int64)


def check_shape(shape: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """Validate a weight shape (non-negative ints, rank >= 1, at most ``MAX_NUMEL`` entries)."""
    try:
        result = tuple(int(v) for v in shape)
    except (TypeError, ValueError) as exc:
        raise OnnxFormatError(f"weight shape must be a sequence of ints, got {shape!r}") from exc
    if len(result) == 0 or any(v < 0 for v in result):
        raise OnnxFormatError(f"weight shape must have rank >= 1 and non-negative dims, got {result}")
    if int(np.prod(result, dtype=object)) > MAX_NUMEL:
        raise OnnxFormatError(f"weight shape {result} exceeds {MAX_NUMEL} entries")
    return result


def check_row_ptrs(row_ptrs: np.ndarray, *, rows: int, nnz: int, role: str = "row_ptrs") -> np.ndarray:
    """Validate CSR row pointers: length rows+1, start 0, end nnz, non-decreasing."""
    ptrs = check_index_array(row_ptrs, role=role, length=rows + 1)
    if ptrs[0] != 0 or ptrs[-1] != nnz:
        raise OnnxFormatError(f"{role} must start at 0 and end at nnz={nnz}, got {ptrs[0]} .. {ptrs[-1]}")
    if np.any(np.diff(ptrs) < 0):
        raise OnnxFormatError(f"{role} must be non-decreasing, got {ptrs.tolist()[:16]}...")
    return ptrs
