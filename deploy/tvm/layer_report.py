"""What the compile did with each constant weight (JSON-ready records for compile reports)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KernelChoice:
    """The kernel of one layer: ``direct-conv``, ``depthwise-conv``, ``block-linear`` or ``dense``
    (a GPU preset's dlight schedule). ``sparsity_ratio`` is the fraction of the kernel's weight
    blocks that are zero and skipped (``block_rows x 1`` blocks; element sparsity for ``dense``).
    ``reason`` says why: for a convolution the register tile (channels x vectors x lanes) the cost
    model picked, its estimate and the runner-up, so a dense layer reads as the dense tile."""

    kernel: str
    block_rows: int
    sparsity_ratio: float
    reason: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class LayerReport:
    """One constant weight: name, operator, shape, activation rows and the kernel chosen."""

    name: str
    op: str
    weight_shape: tuple[int, ...]
    batch: int
    choice: KernelChoice

    def to_dict(self) -> dict:
        return {"name": self.name, "op": self.op, "weight_shape": list(self.weight_shape),
                "batch": self.batch, **self.choice.to_dict()}
