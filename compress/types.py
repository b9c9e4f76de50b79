"""Plain data records shared between ``compress`` (producer) and ``deploy`` (consumer).

Everything here is JSON-serialisable through ``to_dict`` / ``from_dict`` so it can travel inside
model checkpoints (``torch.save`` of plain dicts, loadable with ``weights_only=True``) and inside
ONNX ``metadata_props``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SPARSE_FORMATS = ("dense", "csr", "bsr")
QUANT_SCHEMES = ("none", "binary", "ternary", "int8")


@dataclass(frozen=True)
class BlockShape:
    """Block of ``rows`` x ``cols`` in the GEMM view ``[out, in*kh*kw]`` of a weight."""

    rows: int = 1
    cols: int = 1

    def to_list(self) -> list[int]:
        return [self.rows, self.cols]

    @classmethod
    def from_list(cls, value: list[int] | tuple[int, int]) -> "BlockShape":
        rows, cols = (int(v) for v in value)
        if rows < 1 or cols < 1:
            raise ValueError(f"block shape must be positive, got {rows}x{cols}")
        return cls(rows, cols)


@dataclass(frozen=True)
class SparsityLayout:
    """How the non-zeros of one weight are arranged (decided by the prune stage).

    Attributes:
        fqn: dotted name of the parameter, e.g. ``"features.0.weight"``.
        pattern: ``"unstructured"``, ``"block"``, ``"n:m"``, ``"bcr"`` or ``"channel"``.
        block: block shape in the GEMM view (1x1 for unstructured).
        nnz: number of non-zero weights.
        numel: total number of weights.
    """

    fqn: str
    pattern: str
    block: BlockShape
    nnz: int
    numel: int

    @property
    def sparsity_ratio(self) -> float:
        return 1.0 - self.nnz / max(self.numel, 1)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["block"] = self.block.to_list()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SparsityLayout":
        return cls(
            fqn=str(data["fqn"]),
            pattern=str(data["pattern"]),
            block=BlockShape.from_list(data["block"]),
            nnz=int(data["nnz"]),
            numel=int(data["numel"]),
        )


@dataclass(frozen=True)
class QuantRecord:
    """Low-bit form of one weight, produced by the quantize stage.

    The dequantized weight is ``codes * scales`` broadcast along ``axis`` (per-output-channel when
    ``scales`` has one entry per channel, per-tensor when it has one entry). For TTQ the positive and
    negative scales differ: ``w = where(codes > 0, scales, neg_scales) * codes.abs()``, so
    ``neg_scales`` holds the *signed* negative level ``-W_n`` (values <= 0).

    Attributes:
        fqn: dotted parameter name.
        scheme: one of ``QUANT_SCHEMES``.
        bits: storage bits per weight (1 binary, 2 ternary, 8 int8).
        shape: weight shape.
        scales: positive scales (per tensor: length 1; per channel: length ``shape[0]``).
        neg_scales: TTQ signed negative levels ``-W_n`` (<= 0, same length as ``scales``), else ``None``.
        axis: channel axis the scales apply to (0).
    """

    fqn: str
    scheme: str
    bits: int
    shape: tuple[int, ...]
    scales: tuple[float, ...]
    neg_scales: tuple[float, ...] | None = None
    axis: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["shape"] = list(self.shape)
        data["scales"] = list(self.scales)
        data["neg_scales"] = None if self.neg_scales is None else list(self.neg_scales)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "QuantRecord":
        scheme = str(data["scheme"])
        if scheme not in QUANT_SCHEMES:
            raise ValueError(f"unknown quantization scheme {scheme!r}; allowed: {', '.join(QUANT_SCHEMES)}")
        neg = data.get("neg_scales")
        return cls(
            fqn=str(data["fqn"]),
            scheme=scheme,
            bits=int(data["bits"]),
            shape=tuple(int(v) for v in data["shape"]),
            scales=tuple(float(v) for v in data["scales"]),
            neg_scales=None if neg is None else tuple(float(v) for v in neg),
            axis=int(data.get("axis", 0)),
        )


@dataclass(frozen=True)
class LayerStats:
    """Size and sparsity of one conv / linear weight."""

    fqn: str
    kind: str
    shape: tuple[int, ...]
    numel: int
    nnz: int
    zero_channels: int = 0
    channels: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sparsity_ratio(self) -> float:
        return 1.0 - self.nnz / max(self.numel, 1)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["shape"] = list(self.shape)
        data["sparsity_ratio"] = self.sparsity_ratio
        return data
