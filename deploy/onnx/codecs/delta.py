"""Delta-coded COO codec: gaps between consecutive flat indices in one narrow uint per entry.

The stored entries' flat indices (row-major over the weight) ``p_0 < p_1 < ...`` are written as
gaps ``d_i = p_i - p_{i-1}`` with ``p_{-1} = -1`` (so every gap is >= 1). A gap larger than the index
dtype's maximum ``M`` is split with filler entries of gap ``M`` and value zero (the Deep Compression
trick), so positions cost one uint8 (or uint16, whichever is smaller in total) per entry. Decoding
is ``flat = cumsum(deltas) - 1`` then a scatter into zeros, with no row pointers.

Storage: ``values`` (entries, weight dtype; fillers hold +0.0) and ``deltas`` (entries).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deploy.onnx.codecs.common import canonical_zeros, check_float, check_shape, nonzero_mask
from deploy.onnx.errors import OnnxFormatError

DELTA_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))


@dataclass(frozen=True)
class DeltaArrays:
    """Delta-coded COO arrays of one weight (``values`` and ``deltas`` have one entry each)."""

    values: np.ndarray
    deltas: np.ndarray
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        """Bytes of the stored arrays."""
        return self.values.nbytes + self.deltas.nbytes


def encode_positions(flat: np.ndarray, *, value_bytes: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaps with fillers for sorted flat indices, in the dtype minimising the total bytes.

    Args:
        flat: strictly increasing flat indices of the stored entries.
        value_bytes: bytes each entry's value costs (picks uint8 vs uint16).

    Returns:
        ``(deltas, real)``: the gaps and the entry index of each original position.
    """
    gaps = np.diff(np.concatenate([[-1], flat.astype(np.int64)]))
    best = None
    for dtype in DELTA_DTYPES:
        top = int(np.iinfo(dtype).max)
        fillers = (gaps - 1) // top
        size = (gaps.size + int(fillers.sum())) * (dtype.itemsize + value_bytes)
        if best is None or size < best[0]:
            best = (size, dtype, top, fillers)
    _, dtype, top, fillers = best
    real = np.cumsum(fillers + 1) - 1
    deltas = np.full(int(real[-1]) + 1 if real.size else 0, top, dtype=np.int64)
    deltas[real] = gaps - top * fillers
    return deltas.astype(dtype), real


def decode_positions(deltas: np.ndarray, *, numel: int) -> np.ndarray:
    """Validated flat indices ``cumsum(deltas) - 1`` (strictly increasing, all < ``numel``).

    Raises:
        OnnxFormatError: wrong dtype or rank, a zero gap, or an index past the end.
    """
    if not isinstance(deltas, np.ndarray) or deltas.dtype not in DELTA_DTYPES or deltas.ndim != 1:
        raise OnnxFormatError(f"deltas must be a 1-D uint8 / uint16 array, got {getattr(deltas, 'dtype', deltas)!r}")
    if deltas.size and int(deltas.min()) == 0:
        raise OnnxFormatError("deltas must be >= 1 (a zero gap repeats a position)")
    flat = np.cumsum(deltas.astype(np.int64)) - 1
    if flat.size and int(flat[-1]) >= numel:
        raise OnnxFormatError(f"deltas reach flat index {int(flat[-1])}, past the weight's {numel} entries")
    return flat


def encode_delta(weight: np.ndarray) -> DeltaArrays:
    """Encode the non-zeros of a float32 / float16 weight as values plus index gaps."""
    flat_weight = canonical_zeros(np.ascontiguousarray(weight)).reshape(-1)
    flat = np.flatnonzero(nonzero_mask(flat_weight))
    deltas, real = encode_positions(flat, value_bytes=flat_weight.itemsize)
    values = np.zeros(deltas.size, dtype=flat_weight.dtype)
    values[real] = flat_weight[flat]
    return DeltaArrays(values, deltas, tuple(int(v) for v in weight.shape))


def decode_delta(arrays: DeltaArrays) -> np.ndarray:
    """Decode ``encode_delta`` output back to the dense weight (bit-exact, -0.0 read as +0.0)."""
    values = np.asarray(arrays.values)
    check_float(values, role="values")
    shape = check_shape(arrays.shape)
    numel = int(np.prod(shape, dtype=np.int64))
    flat = decode_positions(arrays.deltas, numel=numel)
    if values.shape != flat.shape:
        raise OnnxFormatError(f"values shape {values.shape} != deltas shape {flat.shape}")
    dense = np.zeros(numel, dtype=values.dtype)
    dense[flat] = values
    return dense.reshape(shape)
