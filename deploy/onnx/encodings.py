"""Choose and compute the compact encoding of one weight (numpy side of the export).

``encode_weight`` returns the arrays to store, keyed by role (the decode function's input names).
``encoding="auto"`` tries every applicable format; sizes are ``TensorProto.ByteSize`` of the
initializers (names excluded). ``encode_weight`` keeps the smallest for one weight; the export picks
formats for all weights together (``selection.select_encodings``) since each decode function used
also costs bytes once per model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import numpy_helper

from deploy.onnx import codecs
from deploy.onnx.codecs.common import gemm_shape, nonzero_mask
from deploy.onnx.errors import OnnxFormatError

ENCODINGS = ("auto", "dense", "csr", "bsr", "delta", "ternary", "binary", "int8")
AUTO_ORDER = (
    "dense", "int8", "csr", "bsr", "delta", "ternary", "binary", "ternary-csr", "ternary-bsr", "ternary-delta"
)


@dataclass(frozen=True)
class WeightEncoding:
    """The stored form of one weight.

    Attributes:
        format: one of ``AUTO_ORDER``.
        arrays: role -> array to store as an initializer.
        shape: the dense weight's shape.
        nnz: non-zero entries of the dense weight (bit pattern other than +0.0).
        bits: stored bits per weight value (32 float, 8 int8, 2 ternary, 1 binary / sign).
        block: block shape for BSR formats, else ``(1, 1)``.
    """

    format: str
    arrays: dict[str, np.ndarray]
    shape: tuple[int, ...]
    nnz: int
    bits: int
    block: tuple[int, int] = (1, 1)

    @property
    def stored_bytes(self) -> int:
        """Serialized bytes of the arrays (initializer protos without names)."""
        return sum(numpy_helper.from_array(a).ByteSize() for a in self.arrays.values())


def _dims(shape: tuple[int, ...]) -> np.ndarray:
    return np.asarray([*gemm_shape(shape), *shape], dtype=np.int64)


def _positions(arrays) -> dict[str, np.ndarray]:
    return {"col_indices": arrays.col_indices, "row_ptrs": arrays.row_ptrs}


def _scales(arrays) -> dict[str, np.ndarray]:
    return {"pos_scales": arrays.pos_scales, "neg_scales": arrays.neg_scales}


def _encode_arrays(weight: np.ndarray, fmt: str, block: tuple[int, int], scales) -> dict[str, np.ndarray]:
    """Arrays of ``weight`` in format ``fmt``; raises ``OnnxFormatError`` when not representable."""
    dims = {"dims": _dims(weight.shape)}
    if fmt == "dense":
        return {"values": weight}
    if fmt == "int8":
        arrays = codecs.encode_int8(weight, scales=scales)
        return {"codes": arrays.codes, "scales": arrays.scales}
    if fmt in ("csr", "bsr"):
        arrays = codecs.encode_csr(weight) if fmt == "csr" else codecs.encode_bsr(weight, block=block)
        return {"values": arrays.values, **_positions(arrays), **dims}
    if fmt in ("ternary", "binary"):
        arrays = codecs.pack_ternary(weight) if fmt == "ternary" else codecs.pack_binary(weight)
        return {"codes": arrays.codes, **_scales(arrays), **dims}
    if fmt == "ternary-csr":
        arrays = codecs.encode_ternary_csr(weight)
        return {"codes": arrays.codes, **_positions(arrays), **_scales(arrays), **dims}
    if fmt == "delta":
        arrays = codecs.encode_delta(weight)
        return {"values": arrays.values, "deltas": arrays.deltas, **dims}
    if fmt == "ternary-delta":
        arrays = codecs.encode_ternary_delta(weight)
        return {"codes": arrays.codes, "deltas": arrays.col_indices, **_scales(arrays), **dims}
    if fmt == "ternary-bsr":
        arrays = codecs.encode_ternary_bsr(weight, block=block)
        block_array = {"block": np.asarray(block, dtype=np.int64)}
        return {"codes": arrays.codes, **_positions(arrays), **_scales(arrays), **dims, **block_array}
    raise OnnxFormatError(f"unknown weight format {fmt!r}; allowed: {', '.join(AUTO_ORDER)}")


_BITS = {"int8": 8, "ternary": 2, "binary": 1, "ternary-csr": 1, "ternary-bsr": 2, "ternary-delta": 2}


def encode_as(weight: np.ndarray, fmt: str, *, block=(1, 1), scales=None) -> WeightEncoding:
    """Encode ``weight`` in format ``fmt`` (bit-exact; raises ``OnnxFormatError`` if impossible).

    Args:
        weight: float32 dense weight.
        fmt: one of ``AUTO_ORDER``.
        block: BSR block shape ``(r, c)``.
        scales: int8 scales from a ``QuantRecord`` (optional).
    """
    if weight.dtype != np.float32:
        raise OnnxFormatError(f"ONNX weights must be float32, got {weight.dtype}")
    block = (int(block[0]), int(block[1]))
    arrays = _encode_arrays(weight, fmt, block, scales)
    bits = _BITS.get(fmt, 32)
    nnz = int(np.count_nonzero(nonzero_mask(weight)))
    used_block = block if fmt in ("bsr", "ternary-bsr") else (1, 1)
    return WeightEncoding(fmt, arrays, tuple(int(v) for v in weight.shape), nnz, bits, used_block)


def _candidates(encoding: str, *, block: tuple[int, int] | None) -> tuple[str, ...]:
    """Formats tried for a requested ``encoding``."""
    if encoding not in ENCODINGS:
        raise OnnxFormatError(f"unknown encoding {encoding!r}; allowed: {', '.join(ENCODINGS)}")
    if encoding == "auto":
        has_block = block is not None and tuple(block) != (1, 1)
        return tuple(f for f in AUTO_ORDER if has_block or f not in ("bsr", "ternary-bsr"))
    if encoding == "ternary":
        sparse = "ternary-bsr" if block is not None and tuple(block) != (1, 1) else "ternary-csr"
        return ("ternary", sparse, "ternary-delta")
    return (encoding,)


def encode_candidates(
    weight: np.ndarray, *, encoding: str = "auto", block: tuple[int, int] | None = None, scales=None
) -> dict[str, WeightEncoding]:
    """Every exact encoding of one weight allowed by ``encoding``, keyed by format.

    ``"auto"`` tries all formats (BSR ones only with a block other than 1x1); a forced ``"ternary"``
    allows dense ternary and sparse ternary (delta, and CSR or BSR when a block is given); a forced
    ``"bsr"`` without a block uses 1x1 blocks.

    Raises:
        OnnxFormatError: an unknown encoding, or a forced encoding that cannot represent the weight
            exactly (the message names the reason).
    """
    errors, found = [], {}
    for fmt in _candidates(encoding, block=block):
        try:
            found[fmt] = encode_as(weight, fmt, block=block or (1, 1), scales=scales)
        except OnnxFormatError as exc:
            errors.append(f"{fmt}: {exc}")
    if not found:
        raise OnnxFormatError(f"encoding {encoding!r} cannot represent the weight exactly ({'; '.join(errors)})")
    return found


def encode_weight(
    weight: np.ndarray, *, encoding: str = "auto", block: tuple[int, int] | None = None, scales=None
) -> WeightEncoding:
    """The candidate of ``encode_candidates`` with the fewest stored bytes (ties: earlier format)."""
    found = encode_candidates(weight, encoding=encoding, block=block, scales=scales)
    return min(found.values(), key=lambda enc: (enc.stored_bytes, AUTO_ORDER.index(enc.format)))
