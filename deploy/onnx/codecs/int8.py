"""Per-channel symmetric int8 codec: ``w = q * scale[row]`` with ``q`` in ``[-127, 127]``.

Exact (-0.0 read as +0.0) only for weights that already are ``q * scale`` in their float dtype (the output of the
quantize stage); ``encode_int8`` verifies the round trip and raises otherwise. The ONNX graph decodes
with a standard ``DequantizeLinear(q, scale, axis=0)``, i.e. ``(q - 0) * scale`` in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deploy.onnx.codecs.common import canonical_zeros, check_float, check_shape, gemm_shape, gemm_view
from deploy.onnx.errors import OnnxFormatError


@dataclass(frozen=True)
class Int8Arrays:
    """int8 codes in the weight's shape and one float32 scale per output channel."""

    codes: np.ndarray
    scales: np.ndarray

    @property
    def nbytes(self) -> int:
        """Bytes of the stored arrays."""
        return self.codes.nbytes + self.scales.nbytes


def _candidate_scales(matrix: np.ndarray, scales: np.ndarray | None) -> list[np.ndarray]:
    derived = (np.abs(matrix).max(axis=1, initial=0).astype(np.float32) / np.float32(127)).astype(np.float32)
    derived = np.where(derived > 0, derived, np.float32(1)).astype(np.float32)
    if scales is None:
        return [derived]
    given = np.asarray(scales, dtype=np.float32).reshape(-1)
    if given.size == 1:
        given = np.full(matrix.shape[0], given[0], dtype=np.float32)
    return [given, derived] if given.shape == (matrix.shape[0],) else [derived]


def encode_int8(weight: np.ndarray, *, scales: np.ndarray | None = None) -> Int8Arrays:
    """Encode a float32 weight as int8 codes with per-output-channel scales, exactly.

    Args:
        weight: float32 weight of rank >= 1.
        scales: known scales (per channel, or one per tensor), e.g. from a ``QuantRecord``; when
            absent or inexact, ``max|w| / 127`` per channel is tried.

    Raises:
        OnnxFormatError: when no scale reproduces the weight bit for bit.
    """
    if weight.dtype != np.float32:
        raise OnnxFormatError(f"int8 encoding needs a float32 weight, got {weight.dtype}")
    matrix = gemm_view(canonical_zeros(np.ascontiguousarray(weight)))
    for candidate in _candidate_scales(matrix, scales):
        if not np.all(np.isfinite(candidate)) or np.any(candidate <= 0):
            continue
        codes = np.clip(np.rint(matrix / candidate[:, None]), -127, 127).astype(np.int8)
        restored = codes.astype(np.float32) * candidate[:, None]
        if np.array_equal(restored.view(np.uint32), matrix.view(np.uint32)):
            return Int8Arrays(codes.reshape(weight.shape), candidate)
    raise OnnxFormatError(f"weight of shape {weight.shape} is not exactly int8 * per-channel scale")


def decode_int8(arrays: Int8Arrays) -> np.ndarray:
    """Decode int8 codes and scales back to the float32 weight."""
    codes, scales = np.asarray(arrays.codes), np.asarray(arrays.scales)
    if codes.dtype != np.int8:
        raise OnnxFormatError(f"int8 codes must be int8, got {codes.dtype}")
    check_float(scales, role="scales")
    rows, _ = gemm_shape(check_shape(codes.shape))
    if scales.dtype != np.float32 or scales.shape != (rows,):
        raise OnnxFormatError(f"scales must be float32 of shape ({rows},), got {scales.dtype} {scales.shape}")
    return (gemm_view(codes).astype(np.float32) * scales[:, None]).reshape(codes.shape)
