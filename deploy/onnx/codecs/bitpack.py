"""Pack small unsigned codes (1, 2, 4 or 8 bits) into bytes, little-end first.

Code ``i`` lives in byte ``i * bits // 8`` at bit offset ``(i * bits) % 8``; the unused high bits of
the last byte are zero. ``unpack_bits(pack_bits(c, bits=b), bits=b, count=len(c)) == c``.
"""

from __future__ import annotations

import numpy as np

from deploy.onnx.errors import OnnxFormatError

ALLOWED_BITS = (1, 2, 4, 8)


def _codes_per_byte(bits: int) -> int:
    if bits not in ALLOWED_BITS:
        raise OnnxFormatError(f"bits must be one of {ALLOWED_BITS}, got {bits!r}")
    return 8 // bits


def packed_length(count: int, *, bits: int) -> int:
    """Number of bytes holding ``count`` codes of ``bits`` bits."""
    per_byte = _codes_per_byte(bits)
    return -(-int(count) // per_byte)


def pack_bits(codes: np.ndarray, *, bits: int) -> np.ndarray:
    """Pack a 1-D array of codes in ``[0, 2**bits)`` into a uint8 array.

    Args:
        codes: non-negative integer codes.
        bits: bits per code (1, 2, 4 or 8).

    Returns:
        ``uint8`` array of ``packed_length(len(codes), bits=bits)`` bytes.
    """
    per_byte = _codes_per_byte(bits)
    flat = np.asarray(codes).reshape(-1)
    if flat.size and (int(flat.min()) < 0 or int(flat.max()) >= 2**bits):
        raise OnnxFormatError(f"codes must lie in [0, {2**bits}), got [{int(flat.min())}, {int(flat.max())}]")
    padded = np.zeros(packed_length(flat.size, bits=bits) * per_byte, dtype=np.uint8)
    padded[: flat.size] = flat
    shifts = (np.arange(per_byte, dtype=np.uint8) * bits).astype(np.uint8)
    return np.bitwise_or.reduce(padded.reshape(-1, per_byte) << shifts, axis=1).astype(np.uint8)


def unpack_bits(packed: np.ndarray, *, bits: int, count: int) -> np.ndarray:
    """Inverse of ``pack_bits``: return ``count`` uint8 codes.

    Raises:
        OnnxFormatError: wrong dtype or length, or non-zero padding bits.
    """
    per_byte = _codes_per_byte(bits)
    if not isinstance(packed, np.ndarray) or packed.dtype != np.uint8 or packed.ndim != 1:
        raise OnnxFormatError(f"packed codes must be a 1-D uint8 array, got {getattr(packed, 'dtype', packed)!r}")
    if int(count) < 0 or packed.shape[0] != packed_length(count, bits=bits):
        raise OnnxFormatError(
            f"{count} codes of {bits} bits need {packed_length(max(count, 0), bits=bits)} bytes, got {packed.shape[0]}"
        )
    shifts = (np.arange(per_byte, dtype=np.uint8) * bits).astype(np.uint8)
    codes = ((packed[:, None] >> shifts) & np.uint8(2**bits - 1)).reshape(-1)
    if np.any(codes[count:]):
        raise OnnxFormatError("padding bits after the last code must be zero")
    return codes[:count]
