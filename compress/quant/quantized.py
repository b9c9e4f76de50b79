"""The quantized form of one weight: integer codes plus scales, and its exact dequantization.

Every projection in ``compress.quant`` returns a :class:`QuantizedTensor`; the dequantized weight it
describes is, by construction, ``dequantize(codes, scales, neg_scales=...)``, so writing
``q.dequantize()`` into a model and re-encoding it later round-trips exactly. Scales are grouped along
the output-channel axis 0: one scale per tensor (``per_channel=False``) or one per output channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compress.types import QUANT_SCHEMES, QuantRecord

CODE_DTYPE = torch.int8


def group_rows(tensor: torch.Tensor, *, per_channel: bool) -> torch.Tensor:
    """View ``tensor`` as ``[groups, n]``: one row per output channel, or a single row."""
    if tensor.dim() == 0:
        raise ValueError("cannot quantize a 0-d tensor; expected a weight with an output-channel axis 0")
    rows = tensor.shape[0] if per_channel else 1
    return tensor.reshape(rows, -1)


def broadcast_scales(scales: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """Reshape per-group scales ``[G]`` so they broadcast along axis 0 of a tensor of ``shape``."""
    return scales.reshape(-1, *([1] * (len(shape) - 1)))


def dequantize(
    codes: torch.Tensor, scales: torch.Tensor, *, neg_scales: torch.Tensor | None = None
) -> torch.Tensor:
    """Dequantize codes with the ``QuantRecord`` convention.

    ``w = codes * scales`` when ``neg_scales`` is ``None``; otherwise (TTQ)
    ``w = where(codes > 0, scales, neg_scales) * |codes|`` where ``neg_scales`` holds the *signed*
    negative level ``-W_n``.

    Args:
        codes: integer codes of the weight's shape.
        scales: ``[1]`` (per tensor) or ``[shape[0]]`` (per channel) float scales.
        neg_scales: TTQ negative levels (``<= 0``), same length as ``scales``, else ``None``.

    Returns:
        The float weight, dtype of ``scales``.
    """
    positive = broadcast_scales(scales, codes.shape)
    values = codes.to(scales.dtype)
    if neg_scales is None:
        return values * positive
    negative = broadcast_scales(neg_scales.to(scales.dtype), codes.shape)
    return torch.where(codes > 0, positive, negative) * values.abs()


@dataclass(frozen=True)
class QuantizedTensor:
    """Codes and scales of one quantized weight.

    Attributes:
        codes: ``int8`` codes, same shape as the weight (``{-1, 1}`` binary, ``{-1, 0, 1}`` ternary,
            ``[-127, 127]`` int8).
        scales: float scales, ``[1]`` or ``[channels]``.
        scheme: one of ``compress.types.QUANT_SCHEMES``.
        bits: storage bits per weight.
        neg_scales: TTQ signed negative levels ``-W_n``, else ``None``.
    """

    codes: torch.Tensor
    scales: torch.Tensor
    scheme: str
    bits: int
    neg_scales: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.scheme not in QUANT_SCHEMES:
            raise ValueError(f"unknown quantization scheme {self.scheme!r}; allowed: {', '.join(QUANT_SCHEMES)}")
        if self.codes.dtype != CODE_DTYPE:
            raise ValueError(f"codes must be {CODE_DTYPE}, got {self.codes.dtype}")

    def dequantize(self) -> torch.Tensor:
        """The float weight these codes and scales stand for."""
        return dequantize(self.codes, self.scales, neg_scales=self.neg_scales)

    def to_record(self, *, fqn: str) -> QuantRecord:
        """The JSON-serialisable record the export stage encodes."""
        neg = None if self.neg_scales is None else tuple(float(v) for v in self.neg_scales.tolist())
        return QuantRecord(
            fqn=fqn,
            scheme=self.scheme,
            bits=self.bits,
            shape=tuple(self.codes.shape),
            scales=tuple(float(v) for v in self.scales.tolist()),
            neg_scales=neg,
            axis=0,
        )


def record_scales(
    record: QuantRecord, *, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(scales, neg_scales)`` of a record as tensors (``neg_scales`` may be ``None``)."""
    scales = torch.tensor(record.scales, dtype=dtype)
    neg = None if record.neg_scales is None else torch.tensor(record.neg_scales, dtype=dtype)
    return scales, neg


def codes_from_weight(weight: torch.Tensor, record: QuantRecord) -> torch.Tensor:
    """Recover the integer codes of a weight written by ``finalize`` (exact inverse of ``dequantize``).

    Args:
        weight: the dequantized weight stored in the model.
        record: its ``QuantRecord``.

    Returns:
        ``int8`` codes with ``dequantize(codes, *record_scales(record)) == weight``.

    Raises:
        ValueError: if the shapes differ or the weight is not representable by the record.
    """
    if tuple(weight.shape) != tuple(record.shape):
        raise ValueError(
            f"weight shape {tuple(weight.shape)} differs from record {record.fqn!r} shape {record.shape}"
        )
    scales, neg = record_scales(record, dtype=weight.dtype)
    if neg is not None:
        positive = broadcast_scales(scales, weight.shape)
        negative = broadcast_scales(neg, weight.shape)
        nonzero = weight != 0
        codes = torch.where((weight == positive) & nonzero, 1, torch.where((weight == negative) & nonzero, -1, 0))
    else:
        positive = broadcast_scales(scales, weight.shape)
        safe = torch.where(positive != 0, positive, torch.ones_like(positive))
        codes = torch.round(weight / safe).clamp(-127, 127)
    codes = codes.to(CODE_DTYPE)
    if not torch.equal(dequantize(codes, scales, neg_scales=neg), weight):
        raise ValueError(f"weight {record.fqn!r} is not exactly representable by its {record.scheme} record")
    return codes
