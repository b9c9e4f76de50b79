"""Measure a break-even table on this machine (``python -m deploy.tvm.breakeven_measure``).

For each layer shape ``(N, K, M)`` (weight ``[N, K]``, ``M`` activation rows), TVM dense is timed
once and each sparse kernel at a few sparsities; the sparse time is fitted as
``t = intercept + slope * density`` (least squares; time is close to linear in the stored blocks)
and the break-even sparsity solves ``t = dense``, clipped to ``[0, 1]``. Timings are medians of
TVM's ``time_evaluator`` in one process, so all numbers of a table are side by side.
"""

from __future__ import annotations

import argparse
import platform
import sys

import numpy as np

from deploy.tvm.breakeven import DEFAULT_TABLE, BreakevenEntry, BreakevenTable, save_breakeven_table
from deploy.tvm.layer_bench import layer_module, random_block_sparse, time_layer

DEFAULT_SHAPES = ((128, 512, 1), (512, 2048, 1), (256, 1024, 8), (16, 144, 1024), (64, 576, 64))
DEFAULT_KERNELS = (("bsr", 16), ("bsr", 8), ("bsr", 4), ("csr", 1))
DEFAULT_SPARSITIES = (0.5, 0.8, 0.95)


def measure_breakeven(*, shapes=DEFAULT_SHAPES, kernels=DEFAULT_KERNELS, sparsities=DEFAULT_SPARSITIES,
                      repeat: int = 5, command: str = "", log=None) -> BreakevenTable:
    """Time TVM dense and every sparse kernel on every shape; return the fitted table.

    Args:
        shapes: ``(out_features, in_features, batch)`` triples.
        kernels: ``(kernel, block_rows)`` pairs, kernel ``"bsr"`` or ``"csr"``.
        sparsities: sparsities at which each kernel is timed (at least two).
        repeat: timing repeats (median taken).
        command: the command line recorded in the table.
        log: optional ``print``-like callable for progress.
    """
    entries = []
    for out_features, in_features, batch in shapes:
        dense = random_block_sparse(out_features=out_features, in_features=in_features, block_rows=1,
                                    sparsity_ratio=0.0)
        dense_s = time_layer(layer_module(dense, batch=batch, kernel="dense"), batch=batch,
                             in_features=in_features, repeat=repeat)
        for kernel, rows in kernels:
            entry = _measure_kernel(kernel, rows, (out_features, in_features, batch), dense_s, sparsities, repeat)
            entries.append(entry)
            if log is not None:
                log(f"{kernel} {rows}x1 N={out_features} K={in_features} M={batch}: dense {dense_s * 1e3:.3f} ms, "
                    f"break-even {entry.breakeven_ratio:.3f}")
    machine = f"{platform.machine()} {_cpu_model()} ({_cpu_count()} cpus)"
    return BreakevenTable(machine=machine, command=command, entries=tuple(entries))


def _measure_kernel(kernel: str, rows: int, shape: tuple[int, int, int], dense_s: float,
                    sparsities, repeat: int) -> BreakevenEntry:
    out_features, in_features, batch = shape
    times = []
    for sparsity in sparsities:
        weight = random_block_sparse(out_features=out_features, in_features=in_features, block_rows=rows,
                                     sparsity_ratio=sparsity)
        mod = layer_module(weight, batch=batch, kernel=f"sparse-{kernel}", block_rows=rows)
        times.append(time_layer(mod, batch=batch, in_features=in_features, repeat=repeat))
    densities = 1.0 - np.asarray(sparsities, dtype=float)
    slope, intercept = np.polyfit(densities, np.asarray(times), 1)
    return BreakevenEntry(kernel=kernel, block_rows=rows, out_features=out_features, in_features=in_features,
                          batch=batch, breakeven_ratio=round(_breakeven(intercept, slope, dense_s), 4),
                          dense_ms=round(dense_s * 1e3, 5), intercept_ms=round(float(intercept) * 1e3, 5),
                          slope_ms=round(float(slope) * 1e3, 5))


def _breakeven(intercept: float, slope: float, dense_s: float) -> float:
    if slope <= 0:
        return 0.0 if intercept < dense_s else 1.0
    return float(np.clip(1.0 - (dense_s - intercept) / slope, 0.0, 1.0))


def _cpu_model() -> str:
    try:
        lines = open("/proc/cpuinfo", encoding="utf-8").read().splitlines()
    except OSError:
        return platform.processor() or "unknown cpu"
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown cpu"


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main(argv: list[str] | None = None) -> int:
    """CLI: measure the default shapes and write the table (default: the shipped host table)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_TABLE), help="output JSON path")
    parser.add_argument("--repeat", type=int, default=5, help="timing repeats (median)")
    args = parser.parse_args(argv)
    command = "python -m deploy.tvm.breakeven_measure " + " ".join(argv if argv is not None else sys.argv[1:])
    table = measure_breakeven(repeat=args.repeat, command=command.strip(), log=print)
    save_breakeven_table(table, args.out)
    print(f"wrote {args.out} ({len(table.entries)} entries)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
