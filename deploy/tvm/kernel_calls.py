"""Emit calls of our TIR kernels into a Relax ``BlockBuilder``.

Each ``emit_*`` adds the specialised PrimFunc to the module under construction and returns the
``relax.call_tir`` expression ``x[M, K] -> y[M, N]`` with the weight arrays as Relax constants.
Tile sizes are chosen here, from the shapes, as the largest listed size that divides the extent.
"""

from __future__ import annotations

import numpy as np

from deploy.tvm.kernels.bsr import bsr_matmul_func
from deploy.tvm.kernels.csr import csr_matmul_func
from deploy.tvm.kernels.ternary import pack_codes, ternary_matmul_func
from deploy.tvm.weight_formats import CSR_UNROLL_DEFAULT, SparseArrays, TernaryArrays

BATCH_TILES = (8, 4, 2, 1)
ROW_TILES = (8, 4, 2, 1)
CHANNEL_TILES = (16, 8, 4, 2, 1)


def largest_divisor(extent: int, *, choices: tuple[int, ...]) -> int:
    """Largest value of ``choices`` that divides ``extent`` (``choices`` must contain 1)."""
    return next(choice for choice in choices if extent % choice == 0)


def emit_bsr_matmul(builder, x, arrays: SparseArrays, *, batch: int, in_features: int,
                    out_features: int, name: str):
    """Emit ``x @ W.T`` for a BSR weight; returns the Relax call (not yet bound)."""
    func = bsr_matmul_func(batch=batch, in_features=in_features, out_features=out_features,
                           nnz_blocks=arrays.data.shape[0], block_rows=arrays.data.shape[1],
                           batch_tile=largest_divisor(batch, choices=BATCH_TILES))
    return _call(builder, func, name, [x, arrays.data, arrays.indices, arrays.indptr],
                 (batch, out_features))


def emit_csr_matmul(builder, x, arrays: SparseArrays, *, batch: int, in_features: int,
                    out_features: int, name: str):
    """Emit ``x @ W.T`` for a CSR weight encoded with ``unroll == CSR_UNROLL_DEFAULT``."""
    func = csr_matmul_func(batch=batch, in_features=in_features, out_features=out_features,
                           nnz=arrays.data.shape[0], unroll=CSR_UNROLL_DEFAULT,
                           batch_tile=largest_divisor(batch, choices=BATCH_TILES[1:]),
                           row_tile=largest_divisor(out_features, choices=ROW_TILES))
    return _call(builder, func, name, [x, arrays.data, arrays.indices, arrays.indptr],
                 (batch, out_features))


def emit_ternary_matmul(builder, x, arrays: TernaryArrays, *, batch: int, in_features: int,
                        out_features: int, name: str):
    """Emit ``x @ W.T`` for a ternary weight kept as int8 codes plus scales."""
    channel_tile = largest_divisor(out_features, choices=CHANNEL_TILES)
    func = ternary_matmul_func(batch=batch, in_features=in_features, out_features=out_features,
                               batch_tile=largest_divisor(batch, choices=BATCH_TILES[1:]), channel_tile=channel_tile)
    codes = pack_codes(arrays.codes, channel_tile=channel_tile)
    return _call(builder, func, name, [x, codes, arrays.pos_scale, arrays.neg_scale], (batch, out_features))


def _call(builder, func, name: str, args: list, out_shape: tuple[int, int]):
    from tvm import relax

    gvar = builder.add_func(func.with_attr("global_symbol", name), name)
    operands = [arg if not isinstance(arg, np.ndarray) else relax.const(arg) for arg in args]
    return relax.call_tir(gvar, operands, relax.TensorType(out_shape, "float32"))
