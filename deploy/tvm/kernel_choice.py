"""Choose the kernel of one constant weight: sparse BSR / CSR, ternary, or TVM dense.

Rule, per layer with weight ``W [N, K]`` and activation rows ``M``:

1. For every sparse candidate (BSR with ``R`` in ``BSR_BLOCK_ROWS`` dividing ``N``, and CSR) take
   the sparsity ``s`` of its own blocks and the entry of the nearest measured shape in the
   break-even table: break-even ``b`` and the fitted time ``t(s) = a + c * (1 - s)`` relative to
   TVM dense. A candidate is eligible when ``s >= b`` (or ``s >= sparse_threshold`` when that is
   given). The eligible candidate with the smallest predicted time wins (without a table entry:
   the highest sparsity).
2. Otherwise, a ternary weight (one positive and one negative value per row) uses the ternary
   kernel: int8 codes, 4x smaller than float, no float weight materialised.
3. Otherwise the layer stays dense (TVM's normal pipeline).

A layout hint from the export stage (``compress.layouts``; after ``deploy.onnx.densify`` the stored
format is in ``encoded_format``) with a ``bsr`` block ``[r, 1]`` puts that block shape first on
ties; hints never force a sparse kernel below break-even.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deploy.tvm.breakeven import BreakevenTable
from deploy.tvm.weight_formats import (CSR_UNROLL_DEFAULT, SparseArrays, TernaryArrays, block_sparsity,
                                       detect_ternary, encode_bsr, encode_csr)

BSR_BLOCK_ROWS = (16, 8, 4)


@dataclass(frozen=True)
class KernelChoice:
    """Decision for one layer (JSON-ready through ``to_dict``)."""

    kernel: str
    block_rows: int
    sparsity_ratio: float
    breakeven_ratio: float | None
    estimated_speedup: float | None
    reason: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class _Candidate:
    kernel: str
    block_rows: int
    sparsity_ratio: float
    breakeven_ratio: float | None
    time_ratio: float | None

    @property
    def eligible(self) -> bool:
        return self.breakeven_ratio is not None and self.sparsity_ratio >= self.breakeven_ratio

    @property
    def rank(self) -> float:
        return self.time_ratio if self.time_ratio is not None else 1.0 - self.sparsity_ratio

    @property
    def speedup(self) -> float | None:
        return None if self.time_ratio is None else round(1.0 / max(self.time_ratio, 1e-9), 3)


def choose_kernel(weight: np.ndarray, *, batch: int, table: BreakevenTable | None,
                  sparse_threshold: float | None = None, hint: dict | None = None
                  ) -> tuple[KernelChoice, SparseArrays | TernaryArrays | None]:
    """Decide the kernel of ``weight [N, K]`` for ``batch`` activation rows and encode it.

    Returns:
        The decision and the encoded arrays (``None`` for dense).
    """
    element_sparsity = _element_sparsity(weight)
    candidates = [_candidate(weight, kernel, rows, batch, table, sparse_threshold)
                  for kernel, rows in _candidate_shapes(weight.shape[0], hint)]
    eligible = [c for c in candidates if c.eligible]
    if eligible:
        best = min(eligible, key=lambda c: c.rank)
        reason = (f"{best.kernel} {best.block_rows}x1 block sparsity {best.sparsity_ratio:.3f} >= "
                  f"break-even {best.breakeven_ratio:.3f}")
        choice = KernelChoice(f"sparse-{best.kernel}", best.block_rows, best.sparsity_ratio,
                              best.breakeven_ratio, best.speedup, reason)
        arrays = (encode_bsr(weight, block_rows=best.block_rows) if best.kernel == "bsr"
                  else encode_csr(weight, unroll=CSR_UNROLL_DEFAULT))
        return choice, arrays
    ternary = detect_ternary(weight)
    if ternary is not None:
        return KernelChoice("ternary", 1, element_sparsity, None, None,
                            "ternary values, sparsity below every break-even: int8 codes + scales"), ternary
    return KernelChoice("dense", 1, element_sparsity, None, None, _dense_reason(candidates)), None


def _candidate_shapes(out_features: int, hint: dict | None) -> list[tuple[str, int]]:
    rows = [r for r in BSR_BLOCK_ROWS if out_features % r == 0]
    hinted = _hinted_rows(hint)
    if hinted is not None and out_features % hinted == 0 and hinted > 1:
        rows = [hinted] + [r for r in rows if r != hinted]
    return [("bsr", r) for r in rows] + [("csr", 1)]


def _hinted_rows(hint: dict | None) -> int | None:
    if not hint or "bsr" not in str(hint.get("encoded_format") or hint.get("format", "")):
        return None
    block = hint.get("block") or [1, 1]
    return int(block[0]) if int(block[1]) == 1 else None


def _candidate(weight: np.ndarray, kernel: str, rows: int, batch: int, table: BreakevenTable | None,
               sparse_threshold: float | None) -> _Candidate:
    sparsity = block_sparsity(weight, block_rows=rows) if kernel == "bsr" else _element_sparsity(weight)
    entry = None if table is None else table.lookup(kernel=kernel, block_rows=rows, out_features=weight.shape[0],
                                                     in_features=weight.shape[1], batch=batch)
    time_ratio = None if entry is None else entry.time_ratio(sparsity)
    breakeven = float(sparse_threshold) if sparse_threshold is not None else (
        None if entry is None else entry.breakeven_ratio)
    return _Candidate(kernel, rows, sparsity, breakeven, time_ratio)


def _element_sparsity(weight: np.ndarray) -> float:
    return float(1.0 - np.count_nonzero(weight) / weight.size)


def _dense_reason(candidates: list[_Candidate]) -> str:
    measured = [c for c in candidates if c.breakeven_ratio is not None]
    if not measured:
        return "no break-even measured for this shape"
    best = max(measured, key=lambda c: c.sparsity_ratio - c.breakeven_ratio)
    return (f"below break-even: {best.kernel} {best.block_rows}x1 sparsity {best.sparsity_ratio:.3f} "
            f"< {best.breakeven_ratio:.3f}")
