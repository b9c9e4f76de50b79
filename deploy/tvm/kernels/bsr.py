"""Block-sparse (BSR) matmul kernel: ``y[M, N] = x[M, K] @ W.T`` with ``W`` stored as R x 1 blocks.

Layout (the one XNNPACK uses for sparse inference): a block is ``R`` consecutive output rows times
one input column. ``data[b, r]`` is the weight ``W[i * R + r, indices[b]]`` of block ``b`` in block
row ``i``, where ``indptr[i] <= b < indptr[i + 1]``. The kernel runs ``T.parallel`` over
(batch tile, block row), keeps an ``(MT, R)`` accumulator in registers, walks the data-dependent
block list and vectorises the update over the ``R`` rows of a block::

    acc[m, r] += data[b, r] * x[m, indices[b]]

Batch 1 uses ``MT = 1``; the batch variant (``MT > 1``, also used for im2col convolutions where
``M = N * Ho * Wo``) reuses every loaded block for ``MT`` rows of ``x``.
"""

from __future__ import annotations


def bsr_matmul_func(*, batch: int, in_features: int, out_features: int, nnz_blocks: int,
                    block_rows: int, batch_tile: int):
    """Build the BSR matmul PrimFunc for static shapes.

    Args:
        batch: rows ``M`` of ``x``.
        in_features: ``K``.
        out_features: ``N``; a multiple of ``block_rows``.
        nnz_blocks: number of stored blocks (at least 1; pad with a zero block when empty).
        block_rows: ``R``, output rows per block (the vector width).
        batch_tile: ``MT``, rows of ``x`` per task; divides ``batch``.

    Returns:
        A private ``PrimFunc(x, data, indices, indptr, y)``.
    """
    from tvm.script import tirx as T

    m_rows, k_cols, n_cols, nnz, r_rows, m_tile = (batch, in_features, out_features, nnz_blocks,
                                                   block_rows, batch_tile)
    n_block_rows = n_cols // r_rows
    n_tasks = (m_rows // m_tile) * n_block_rows

    @T.prim_func(private=True)
    def bsr_matmul(x: T.Buffer((m_rows, k_cols), "float32"), data: T.Buffer((nnz, r_rows), "float32"),
                   indices: T.Buffer((nnz,), "int32"), indptr: T.Buffer((n_block_rows + 1,), "int32"),
                   y: T.Buffer((m_rows, n_cols), "float32")):
        T.func_attr({"tir.noalias": True, "tirx.is_scheduled": True})
        for task in T.parallel(n_tasks):
            acc = T.alloc_buffer((m_tile, r_rows), "float32", scope="global")
            for m in T.serial(m_tile):
                for r in T.vectorized(r_rows):
                    acc[m, r] = T.float32(0)
            for b in T.serial(indptr[task % n_block_rows], indptr[task % n_block_rows + 1]):
                for m in T.unroll(m_tile):
                    for r in T.vectorized(r_rows):
                        acc[m, r] = acc[m, r] + data[b, r] * x[(task // n_block_rows) * m_tile + m,
                                                                indices[b]]
            for m in T.serial(m_tile):
                for r in T.vectorized(r_rows):
                    y[(task // n_block_rows) * m_tile + m, (task % n_block_rows) * r_rows + r] = acc[m, r]

    return bsr_matmul
