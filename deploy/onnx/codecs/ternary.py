"""Ternary and binary codecs: 2-bit / 1-bit codes plus per-row (per-output-channel) scales.

Ternary: on the GEMM view every row holds values in ``{0, pos[row], neg[row]}`` with
``pos > 0 > neg``; codes are 0 (zero), 1 (pos), 2 (neg), packed 4 per byte. TTQ (different positive
and negative magnitudes) is covered since ``pos`` and ``neg`` are stored separately.

Binary: every row holds at most two bit patterns ``pos[row] >= neg[row]``; code 1 is ``pos``, 0 is
``neg``, packed 8 per byte.

Decoding is ``where(code == 1, pos, where(code == 2, neg, 0))`` (ternary) and
``where(code == 1, pos, neg)`` (binary), so the round trip is bit-exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deploy.onnx.codecs.bitpack import pack_bits, unpack_bits
from deploy.onnx.codecs.common import canonical_zeros, check_float, check_shape, gemm_shape, gemm_view, nonzero_mask
from deploy.onnx.errors import OnnxFormatError

CODE_ZERO, CODE_POS, CODE_NEG = 0, 1, 2


@dataclass(frozen=True)
class TernaryArrays:
    """Packed codes and per-row scales of a ternary or binary weight.

    Attributes:
        codes: packed codes (uint8).
        pos_scales: value of code 1 per GEMM row, shape ``[rows]`` (or ``[1]``: one per tensor).
        neg_scales: value of code 2 (ternary) or 0 (binary) per GEMM row, shape ``[rows]`` or ``[1]``.
        shape: the weight's shape.
    """

    codes: np.ndarray
    pos_scales: np.ndarray
    neg_scales: np.ndarray
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        """Bytes of the stored arrays."""
        return self.codes.nbytes + self.pos_scales.nbytes + self.neg_scales.nbytes


def _row_value(matrix: np.ndarray, mask: np.ndarray, *, side: str) -> np.ndarray:
    """The value per row under ``mask``, compacted to one entry when all rows agree.

    Rows without such a value take any; when every row that has one agrees (a per-tensor scale)
    a single value is returned, which decoding broadcasts.

    Raises:
        OnnxFormatError: when a row holds more than one value under ``mask``.
    """
    pick = np.max if side == "positive" else np.min
    values = pick(np.where(mask, matrix, 0), axis=1).astype(matrix.dtype)
    bad = mask & (matrix != values[:, None])
    if bad.any():
        row = int(np.nonzero(bad.any(axis=1))[0][0])
        found = np.unique(matrix[row][mask[row]])[:4].tolist()
        raise OnnxFormatError(f"row {row} has several {side} values {found}; a ternary row has at most one")
    used = np.unique(values[mask.any(axis=1)])
    if used.size <= 1 and values.size:
        return (used if used.size else values)[:1].astype(matrix.dtype)
    return values


def ternary_codes(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes (uint8, shape of ``matrix``) and per-row (or per-tensor) pos / neg values of a ternary matrix.

    Raises:
        OnnxFormatError: when a row has -0.0, NaN, or more than one positive or negative value.
    """
    check_float(matrix, role="weight")
    pos_mask, neg_mask = matrix > 0, matrix < 0
    odd = nonzero_mask(matrix) & ~pos_mask & ~neg_mask
    if odd.any():
        raise OnnxFormatError(f"ternary weight holds non-ternary value {matrix[odd][0]!r}")
    pos = _row_value(matrix, pos_mask, side="positive")
    neg = _row_value(matrix, neg_mask, side="negative")
    codes = np.where(pos_mask, CODE_POS, np.where(neg_mask, CODE_NEG, CODE_ZERO)).astype(np.uint8)
    return codes, pos, neg


def check_scales(pos: np.ndarray, neg: np.ndarray, *, rows: int) -> None:
    """Raise unless pos / neg scales are float arrays of length ``rows`` or 1, same dtype."""
    for role, scales in (("pos_scales", pos), ("neg_scales", neg)):
        check_float(np.asarray(scales), role=role)
        if scales.shape not in ((rows,), (1,)):
            raise OnnxFormatError(f"{role} must have shape ({rows},) or (1,), got {scales.shape}")
    if pos.dtype != neg.dtype:
        raise OnnxFormatError(f"pos_scales dtype {pos.dtype} != neg_scales dtype {neg.dtype}")


def ternary_values(codes: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Map 2-D codes to values with per-row scales: ``where(c==1, pos, where(c==2, neg, 0))``."""
    if codes.size and int(codes.max()) > CODE_NEG:
        raise OnnxFormatError(f"ternary codes must be 0, 1 or 2, got {int(codes.max())}")
    zero = np.zeros((), dtype=pos.dtype)
    values = np.where(codes == CODE_POS, pos[:, None], np.where(codes == CODE_NEG, neg[:, None], zero))
    return values.astype(pos.dtype).reshape(codes.shape)


def pack_ternary(weight: np.ndarray) -> TernaryArrays:
    """Encode a ternary weight as 2-bit codes (4 per byte) plus per-row pos / neg scales."""
    codes, pos, neg = ternary_codes(gemm_view(np.ascontiguousarray(weight)))
    return TernaryArrays(pack_bits(codes, bits=2), pos, neg, tuple(int(v) for v in weight.shape))


def unpack_ternary(arrays: TernaryArrays) -> np.ndarray:
    """Decode ``pack_ternary`` output back to the dense weight (bit-exact)."""
    shape = check_shape(arrays.shape)
    rows, cols = gemm_shape(shape)
    check_scales(arrays.pos_scales, arrays.neg_scales, rows=rows)
    codes = unpack_bits(arrays.codes, bits=2, count=rows * cols).reshape(rows, cols)
    return ternary_values(codes, arrays.pos_scales, arrays.neg_scales).reshape(shape)


def pack_binary(weight: np.ndarray) -> TernaryArrays:
    """Encode a weight with at most two bit patterns per row as 1-bit codes plus two scales per row.

    Raises:
        OnnxFormatError: when a row holds three or more distinct values.
    """
    matrix = gemm_view(canonical_zeros(np.ascontiguousarray(weight)))
    uint = np.uint32 if matrix.dtype == np.float32 else np.uint16
    pos = np.zeros(matrix.shape[0], dtype=matrix.dtype)
    neg = np.zeros(matrix.shape[0], dtype=matrix.dtype)
    codes = np.zeros(matrix.shape, dtype=np.uint8)
    for row in range(matrix.shape[0]):
        patterns = np.unique(matrix[row].view(uint))
        if patterns.size > 2:
            raise OnnxFormatError(f"row {row} has {patterns.size} distinct values; a binary row has at most 2")
        if patterns.size == 0:
            continue
        values = patterns.view(matrix.dtype)
        high = 0 if values[0] > values[-1] else patterns.size - 1
        pos[row], neg[row] = values[high], values[patterns.size - 1 - high]
        codes[row] = matrix[row].view(uint) == patterns[high]
    if matrix.shape[0] > 1 and np.unique(pos.view(uint)).size == 1 and np.unique(neg.view(uint)).size == 1:
        pos, neg = pos[:1], neg[:1]
    return TernaryArrays(pack_bits(codes, bits=1), pos, neg, tuple(int(v) for v in weight.shape))


def unpack_binary(arrays: TernaryArrays) -> np.ndarray:
    """Decode ``pack_binary`` output back to the dense weight (bit-exact)."""
    shape = check_shape(arrays.shape)
    rows, cols = gemm_shape(shape)
    check_scales(arrays.pos_scales, arrays.neg_scales, rows=rows)
    codes = unpack_bits(arrays.codes, bits=1, count=rows * cols).reshape(rows, cols)
    values = np.where(codes == 1, arrays.pos_scales[:, None], arrays.neg_scales[:, None])
    return values.astype(arrays.pos_scales.dtype).reshape(codes.shape).reshape(shape)
