"""Per-layer quantization report: scheme, bits per weight, fraction of zeros, scales."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from torch import nn

from compress.selection import ALL_LAYERS
from compress.types import QuantRecord


@dataclass(frozen=True)
class LayerQuantReport:
    """One conv / linear weight after quantization.

    Attributes:
        fqn: dotted weight name.
        scheme: ``QuantRecord.scheme``, or ``"none"`` for a float layer.
        bits: storage bits per weight (the float width for a float layer).
        numel: number of weights.
        zero_ratio: fraction of exactly-zero weights.
        scales: the record's scales (empty for a float layer).
        neg_scales: TTQ signed negative levels, else ``None``.
    """

    fqn: str
    scheme: str
    bits: int
    numel: int
    zero_ratio: float
    scales: tuple[float, ...] = ()
    neg_scales: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "fqn": self.fqn,
            "scheme": self.scheme,
            "bits": self.bits,
            "numel": self.numel,
            "zero_ratio": self.zero_ratio,
            "scales": list(self.scales),
            "neg_scales": None if self.neg_scales is None else list(self.neg_scales),
        }


def quant_report(model: nn.Module, records: Sequence[QuantRecord]) -> list[LayerQuantReport]:
    """Report every conv / linear weight of ``model``, using ``records`` for the quantized ones.

    Raises:
        ValueError: if a record names a weight the model does not have.
    """
    by_fqn = {record.fqn: record for record in records}
    rows = []
    for name, module in ALL_LAYERS.modules(model):
        fqn = f"{name}.weight"
        weight = module.weight.detach()
        zero_ratio = float((weight == 0).sum()) / max(weight.numel(), 1)
        record = by_fqn.pop(fqn, None)
        if record is None:
            rows.append(LayerQuantReport(fqn, "none", weight.element_size() * 8, weight.numel(), zero_ratio))
        else:
            rows.append(
                LayerQuantReport(
                    fqn, record.scheme, record.bits, weight.numel(), zero_ratio, record.scales, record.neg_scales
                )
            )
    if by_fqn:
        raise ValueError(f"records name weights not in the model: {', '.join(sorted(by_fqn))}")
    return rows


def mean_bits_per_weight(rows: Sequence[LayerQuantReport]) -> float:
    """Storage bits per weight averaged over all reported weights (scales not counted)."""
    numel = sum(row.numel for row in rows)
    return sum(row.bits * row.numel for row in rows) / max(numel, 1)


def zero_ratio(rows: Sequence[LayerQuantReport]) -> float:
    """Fraction of zero weights over all reported weights."""
    numel = sum(row.numel for row in rows)
    return sum(row.zero_ratio * row.numel for row in rows) / max(numel, 1)
