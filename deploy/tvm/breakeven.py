"""Break-even sparsity table: the sparsity from which a sparse kernel beats TVM's dense matmul.

A table is JSON (``compress-breakeven/1``) with one entry per (kernel, block rows, layer shape,
batch), measured on one machine by :mod:`deploy.tvm.breakeven_measure`. Lookups for a layer shape
that was not measured take the nearest measured shape (log distance over output features, input
features and batch) of the same kernel and block shape.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from deploy.tvm.errors import CompileError

TABLE_FORMAT = "compress-breakeven/1"
DEFAULT_TABLE = Path(__file__).with_name("breakeven_host.json")


@dataclass(frozen=True)
class BreakevenEntry:
    """Measured break-even of one sparse kernel on one layer shape.

    Attributes:
        kernel: ``"bsr"`` or ``"csr"``.
        block_rows: rows of an ``R x 1`` block (1 for CSR).
        out_features: ``N`` of the ``[N, K]`` weight.
        in_features: ``K``.
        batch: rows of the activation matrix (``N * Ho * Wo`` for an im2col convolution).
        breakeven_ratio: sparsity (of this kernel's blocks) from which the kernel is faster.
        dense_ms: TVM dense time of the layer in the same run.
        intercept_ms: fitted sparse time at density 0 (``t = intercept + slope * density``).
        slope_ms: fitted sparse time per unit of density.
    """

    kernel: str
    block_rows: int
    out_features: int
    in_features: int
    batch: int
    breakeven_ratio: float
    dense_ms: float
    intercept_ms: float
    slope_ms: float

    def time_ratio(self, sparsity_ratio: float) -> float:
        """Predicted sparse time over dense time at this sparsity (below 1: sparse is faster)."""
        return (self.intercept_ms + self.slope_ms * (1.0 - sparsity_ratio)) / self.dense_ms


@dataclass(frozen=True)
class BreakevenTable:
    """A set of measured entries plus where they were measured."""

    machine: str
    command: str
    entries: tuple[BreakevenEntry, ...]

    def lookup(self, *, kernel: str, block_rows: int, out_features: int, in_features: int,
               batch: int) -> BreakevenEntry | None:
        """Entry of the nearest measured shape for this kernel and block; ``None`` if unmeasured."""
        same = [e for e in self.entries if e.kernel == kernel and e.block_rows == block_rows]
        if not same:
            return None
        return min(same, key=lambda e: _log_distance(e, out_features, in_features, batch))

    def to_dict(self) -> dict:
        return {"format": TABLE_FORMAT, "machine": self.machine, "command": self.command,
                "entries": [asdict(entry) for entry in self.entries]}

    @classmethod
    def from_dict(cls, data: dict) -> "BreakevenTable":
        if data.get("format") != TABLE_FORMAT:
            raise CompileError(f"break-even table format {data.get('format')!r}; expected {TABLE_FORMAT!r}")
        return cls(machine=str(data["machine"]), command=str(data["command"]),
                   entries=tuple(BreakevenEntry(**entry) for entry in data["entries"]))


def load_breakeven_table(path: str | Path | None = None) -> BreakevenTable:
    """Read a table; ``None`` reads the default host table shipped with the package."""
    path = Path(path) if path is not None else DEFAULT_TABLE
    if not path.is_file():
        raise CompileError(f"break-even table not found: {path}")
    return BreakevenTable.from_dict(json.loads(path.read_text()))


def save_breakeven_table(table: BreakevenTable, path: str | Path) -> None:
    """Write a table as indented JSON."""
    Path(path).write_text(json.dumps(table.to_dict(), indent=1) + "\n")


def _log_distance(entry: BreakevenEntry, out_features: int, in_features: int, batch: int) -> float:
    return (abs(math.log(entry.out_features / out_features)) + abs(math.log(entry.in_features / in_features))
            + abs(math.log(entry.batch / batch)))
