"""Choose and compute the compact encoding of one weight (numpy side of the export).

``encode_weight`` returns the arrays to store, keyed by role (the decode function's input names),
with the encoder of the format's record (:mod:`deploy.onnx.formats`). ``encoding="auto"`` tries
every applicable format; sizes are ``TensorProto.ByteSize`` of the
initializers (names excluded). ``encode_weight`` keeps the smallest for one weight; the export picks
formats for all weights together (``selection.select_encodings``) since each decode function used
also costs bytes once per model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import numpy_helper

from deploy.onnx import formats
from deploy.onnx.codecs.common import nonzero_mask
from deploy.onnx.errors import OnnxFormatError


@dataclass(frozen=True)
class WeightEncoding:
    """The stored form of one weight.

    Attributes:
        format: a format name (:data:`deploy.onnx.formats.FORMATS`).
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


def encode_as(weight: np.ndarray, fmt: str, *, block=(1, 1), scales=None) -> WeightEncoding:
    """Encode ``weight`` in format ``fmt`` (bit-exact; raises ``OnnxFormatError`` if impossible).

    Args:
        weight: float32 dense weight.
        fmt: a format name (:data:`deploy.onnx.formats.FORMATS`).
        block: BSR block shape ``(r, c)``.
        scales: int8 scales from a ``QuantRecord`` (optional).
    """
    if weight.dtype != np.float32:
        raise OnnxFormatError(f"ONNX weights must be float32, got {weight.dtype}")
    record = formats.get_format(fmt)
    block = (int(block[0]), int(block[1]))
    arrays = record.encode(weight, block=block, scales=scales)
    nnz = int(np.count_nonzero(nonzero_mask(weight)))
    used_block = block if record.blocked else (1, 1)
    return WeightEncoding(fmt, arrays, tuple(int(v) for v in weight.shape), nnz, record.bits, used_block)


def _candidates(encoding: str, *, block: tuple[int, int] | None) -> tuple[str, ...]:
    """Formats tried for a requested ``encoding`` (``WeightFormat.tried_for``), in list order."""
    allowed = formats.encoding_names()
    if encoding not in allowed:
        raise OnnxFormatError(f"unknown encoding {encoding!r}; allowed: {', '.join(allowed)}")
    has_block = block is not None and tuple(block) != (1, 1)
    return tuple(f.name for f in formats.FORMATS if f.tried_for(encoding, has_block=has_block))


def encode_candidates(
    weight: np.ndarray, *, encoding: str = "auto", block: tuple[int, int] | None = None, scales=None
) -> dict[str, WeightEncoding]:
    """Every exact encoding of one weight allowed by ``encoding``, keyed by format.

    ``"auto"`` tries all formats (blocked ones only with a block other than 1x1); a forced family
    tries its formats (``"ternary"``: dense ternary, delta, and CSR or BSR when a block is given); a
    forced ``"bsr"`` without a block uses 1x1 blocks.

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
    return min(found.values(), key=lambda enc: (enc.stored_bytes, formats.format_rank(enc.format)))
