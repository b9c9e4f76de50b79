"""Fused block-sparse linear layer ``y[M, N] = act(x[M, K] @ W.T + bias)``, dense weights included.

The weight is stored as ``R x 1`` blocks (``R`` consecutive outputs by one input, encoded by
:func:`deploy.tvm.linear_weights.encode_linear_blocks`), all-zero blocks dropped; a dense weight keeps every block. The
accumulator is one ``R``-lane vector per output block row, updated from the block list::

    acc_u += data[b] * x[m, indices[b]]        (b = start + U * q + u, vector over the R outputs)
    y[m, i * R : (i + 1) * R] = act(acc_0 + ... + acc_{U-1} + bias)

Every block row's list is padded with zero blocks to a multiple of ``U`` so that ``U`` independent
accumulators hide the FMA latency (one accumulator chain runs at a quarter of the FMA rate).
Hand-written for the same reason as :mod:`deploy.tvm.kernels.direct_conv`: TVM 0.27's CPU build
leaves ``matmul`` unscheduled.
"""

from __future__ import annotations

from deploy.tvm.kernels.direct_conv import Epilogue, broadcast, epilogue_function, ramp, vector_type


def block_linear_func(*, batch: int, in_features: int, out_features: int, block_rows: int, nnz_blocks: int,
                      unroll: int, epilogue: Epilogue, parallel: bool = False):
    """Build the fused linear PrimFunc ``(x, data[nnz * R], indices[nnz], indptr, bias) -> y``.

    ``indptr`` counts blocks; every block row holds a multiple of ``unroll`` blocks; ``bias`` is
    padded with zeros to whole block rows.
    """
    from tvm.script import tirx as T

    m_rows, k_cols, n_cols, r_rows, u_len = batch, in_features, out_features, block_rows, unroll
    n_rows, nnz = -(-n_cols // r_rows), max(nnz_blocks, 1)
    n_full = n_cols // r_rows  # block rows stored as whole vectors; a partial last one lane by lane
    vtype = vector_type(r_rows)
    finish = epilogue_function(epilogue, r_rows)
    rows_loop = T.parallel if parallel else T.serial

    @T.prim_func(private=True)
    def block_linear(x: T.Buffer((m_rows, k_cols), "float32"), data: T.Buffer((nnz * r_rows,), "float32"),
                     indices: T.Buffer((nnz,), "int32"), indptr: T.Buffer((n_rows + 1,), "int32"),
                     bias: T.Buffer((n_rows * r_rows,), "float32"), y: T.Buffer((m_rows, n_cols), "float32")):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        for m in T.serial(m_rows):
            for i in rows_loop(n_rows):
                acc = T.alloc_buffer((u_len,), vtype, scope="global")
                for u in T.unroll(u_len):
                    acc[u] = broadcast(T.float32(0), r_rows)
                for q in T.serial(T.floordiv(indptr[i + 1] - indptr[i], u_len)):
                    for u in T.unroll(u_len):
                        acc[u] = acc[u] + data[ramp((indptr[i] + q * u_len + u) * r_rows, r_rows)] * broadcast(
                            x[m, indices[indptr[i] + q * u_len + u]], r_rows)
                for u in T.unroll(1, u_len):
                    acc[0] = acc[0] + acc[u]
                if i < n_full:
                    y[m, ramp(i * r_rows, r_rows)] = finish(acc[0] + bias[ramp(i * r_rows, r_rows)], None)
                else:
                    tail = T.alloc_buffer((r_rows,), "float32", scope="global")
                    tail[ramp(0, r_rows)] = finish(acc[0] + bias[ramp(i * r_rows, r_rows)], None)
                    for r in T.serial(n_cols - n_full * r_rows):
                        y[m, i * r_rows + r] = tail[r]

    return block_linear
