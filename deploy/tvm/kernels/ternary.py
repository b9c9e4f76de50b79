"""Ternary matmul kernel: weights stay int8 codes in {-1, 0, +1} plus per-channel scales.

Float weights are never materialised. For output channel ``n``::

    y[m, n] = pos_scale[n] * sum_{k: code[k, n] = +1} x[m, k]
            - neg_scale[n] * sum_{k: code[k, n] = -1} x[m, k]

(symmetric ternary has ``pos_scale == neg_scale``; TTQ has two scales). Codes are stored
packed channel-tile major, ``codes[N / NT, K, NT]``: a task streams one contiguous ``K x NT`` int8
panel and each load feeds a vector of ``NT`` output channels.
The two sums are accumulated branch-free in registers as ``x * max(code, 0)`` and
``x * min(code, 0)`` (the int8 code converted in a register; a select with ``if_then_else`` was
scalarised into branches and ran 3x slower than TVM dense), then scaled once per channel. Runs
``T.parallel`` over (batch tile, channel tile). Ternary weights as in Zhu et al., "Trained
Ternary Quantization", ICLR 2017.
"""

from __future__ import annotations


def ternary_matmul_func(*, batch: int, in_features: int, out_features: int, batch_tile: int,
                        channel_tile: int):
    """Build the ternary matmul PrimFunc for static shapes.

    Args:
        batch: rows ``M`` of ``x``.
        in_features: ``K``.
        out_features: ``N``.
        batch_tile: rows of ``x`` per task; divides ``batch``.
        channel_tile: ``NT``, output channels per task (the vector width); divides ``N``.

    Returns:
        A private ``PrimFunc(x, codes, pos_scale, neg_scale, y)`` with ``codes`` int8
        ``[N / channel_tile, K, channel_tile]`` (see :func:`pack_codes`).
    """
    from tvm.script import tirx as T

    m_rows, k_cols, n_cols, m_tile, n_tile = batch, in_features, out_features, batch_tile, channel_tile
    n_channel_tiles = n_cols // n_tile
    n_tasks = (m_rows // m_tile) * n_channel_tiles

    @T.prim_func(private=True)
    def ternary_matmul(x: T.Buffer((m_rows, k_cols), "float32"),
                       codes: T.Buffer((n_channel_tiles, k_cols, n_tile), "int8"),
                       pos_scale: T.Buffer((n_cols,), "float32"), neg_scale: T.Buffer((n_cols,), "float32"),
                       y: T.Buffer((m_rows, n_cols), "float32")):
        T.func_attr({"tir.noalias": True, "tirx.is_scheduled": True})
        for task in T.parallel(n_tasks):
            acc_pos = T.alloc_buffer((m_tile, n_tile), "float32", scope="global")
            acc_neg = T.alloc_buffer((m_tile, n_tile), "float32", scope="global")
            for m in T.serial(m_tile):
                for n in T.vectorized(n_tile):
                    acc_pos[m, n] = T.float32(0)
                    acc_neg[m, n] = T.float32(0)
            for k in T.serial(k_cols):
                for m in T.unroll(m_tile):
                    for n in T.vectorized(n_tile):
                        acc_pos[m, n] = acc_pos[m, n] + x[(task // n_channel_tiles) * m_tile + m, k] * T.max(
                            T.Cast("float32", codes[task % n_channel_tiles, k, n]), T.float32(0))
                        acc_neg[m, n] = acc_neg[m, n] + x[(task // n_channel_tiles) * m_tile + m, k] * T.min(
                            T.Cast("float32", codes[task % n_channel_tiles, k, n]), T.float32(0))
            for m in T.serial(m_tile):
                for n in T.vectorized(n_tile):
                    y[(task // n_channel_tiles) * m_tile + m, (task % n_channel_tiles) * n_tile + n] = (
                        pos_scale[(task % n_channel_tiles) * n_tile + n] * acc_pos[m, n]
                        + neg_scale[(task % n_channel_tiles) * n_tile + n] * acc_neg[m, n])

    return ternary_matmul


def pack_codes(codes, *, channel_tile: int):
    """Repack ``codes [K, N]`` into the kernel's panel layout ``[N / channel_tile, K, channel_tile]``."""
    import numpy as np

    k_cols, n_cols = codes.shape
    return np.ascontiguousarray(codes.reshape(k_cols, n_cols // channel_tile, channel_tile).transpose(1, 0, 2))
