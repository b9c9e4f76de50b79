"""Unstructured sparse (CSR) matmul kernel: ``y[M, N] = x[M, K] @ W.T`` with ``W`` in CSR.

A plain scalar gather loop loses to scipy at batch 1, so each row's non-zeros are padded (with zero
weights pointing at column 0) to a multiple of ``U`` and the inner loop is unrolled ``U`` times::

    for c in range(indptr[n] // U, indptr[n + 1] // U):
        for u in unroll(U):
            acc[m] += data[c * U + u] * x[m, indices[c * U + u]]

Tasks are (batch tile, block of ``row_tile`` output rows) in ``T.parallel``.
"""

from __future__ import annotations


def csr_matmul_func(*, batch: int, in_features: int, out_features: int, nnz: int, unroll: int,
                    batch_tile: int, row_tile: int):
    """Build the CSR matmul PrimFunc for static shapes.

    Args:
        batch: rows ``M`` of ``x``.
        in_features: ``K``.
        out_features: ``N``; a multiple of ``row_tile``.
        nnz: stored entries, a multiple of ``unroll`` (padding included).
        unroll: ``U``; every row holds a multiple of ``U`` entries.
        batch_tile: rows of ``x`` per task; divides ``batch``.
        row_tile: output rows per task; divides ``out_features``.

    Returns:
        A private ``PrimFunc(x, data, indices, indptr, y)``; ``indptr`` counts entries.
    """
    from tvm.script import tirx as T

    m_rows, k_cols, n_cols, u_len, m_tile, n_tile = (batch, in_features, out_features, unroll,
                                                     batch_tile, row_tile)
    nnz_len = nnz
    n_row_tiles = n_cols // n_tile
    n_tasks = (m_rows // m_tile) * n_row_tiles

    @T.prim_func(private=True)
    def csr_matmul(x: T.Buffer((m_rows, k_cols), "float32"), data: T.Buffer((nnz_len,), "float32"),
                   indices: T.Buffer((nnz_len,), "int32"), indptr: T.Buffer((n_cols + 1,), "int32"),
                   y: T.Buffer((m_rows, n_cols), "float32")):
        T.func_attr({"tir.noalias": True, "tirx.is_scheduled": True})
        for task in T.parallel(n_tasks):
            acc = T.alloc_buffer((m_tile,), "float32", scope="global")
            for row in T.serial(n_tile):
                for m in T.serial(m_tile):
                    acc[m] = T.float32(0)
                for c in T.serial(indptr[(task % n_row_tiles) * n_tile + row] // u_len,
                                  indptr[(task % n_row_tiles) * n_tile + row + 1] // u_len):
                    for m in T.unroll(m_tile):
                        for u in T.unroll(u_len):
                            acc[m] = acc[m] + data[c * u_len + u] * x[
                                (task // n_row_tiles) * m_tile + m, indices[c * u_len + u]]
                for m in T.serial(m_tile):
                    y[(task // n_row_tiles) * m_tile + m, (task % n_row_tiles) * n_tile + row] = acc[m]

    return csr_matmul
