"""int8 linear layer of a QDQ graph: u8 x s8 -> s32 dot products over 16-row blocks, float epilogue.

``y = steps(s_x * s_w[o] * sum_k (q_x[k] - z) * Q[o, k] + bias[o])`` with ``Q`` the int8 weight.
The input arrives as unsigned byte quads (:mod:`deploy.tvm.kernels.int8_pack`, ``H = W = 1``:
``xq [M, ceil(K / 4)]``); the weight as blocks of 16 output rows by one quad of four input
columns, each an int32x16 vector of weight quads, all-zero blocks not stored (CSR over the
16-row block rows). Each step broadcasts one activation quad against one weight block::

    acc_u = dot(acc_u, broadcast(xq[m, indices[b]]), data[b, 0..15])     (u = b mod U accumulators)
    y[m, o] = steps(float(-comp[o] + sum_u acc_u) * scale[o] + bias[o])

``dot`` is :func:`deploy.tvm.kernels.int8_dot.dot_function` (``vpdpbusd`` with AVX-512 VNNI);
``U`` independent accumulators hide its latency. Block rows are padded with zero blocks to a
multiple of ``U``.
"""

from __future__ import annotations

from deploy.tvm.kernels.int8_dot import apply_steps, dot_function

ROWS = 16


def int8_qdq_linear_func(*, batch: int, in_quads: int, out_features: int, nnz_blocks: int, steps: tuple, flavour: str,
                         unroll: int, parallel: bool = False):
    """Build ``(xq, data, indices, indptr, init, scale, bias) -> y [batch, out_features]`` (float32)."""
    from tvm.script import tirx as T

    m_rows, k_quads, n_cols = batch, in_quads, out_features
    n_rows = -(-n_cols // ROWS)
    n_full, nnz = n_cols // ROWS, max(nnz_blocks, 1)
    dot = dot_function(flavour, ROWS)
    rows_loop = T.parallel if parallel else T.serial

    def lanes(base):
        return T.Ramp(base, 1, ROWS)

    def finish(acc_value, scale, bias, i):
        value = T.Cast("float32x16", acc_value) * scale[lanes(i * ROWS)] + bias[lanes(i * ROWS)]
        return apply_steps(value, steps, ROWS)

    @T.prim_func(private=True)
    def int8_qdq_linear(xq: T.Buffer((m_rows, k_quads), "int32"), data: T.Buffer((nnz * ROWS,), "int32"),
                        indices: T.Buffer((nnz,), "int32"), indptr: T.Buffer((n_rows + 1,), "int32"),
                        init: T.Buffer((n_rows * ROWS,), "int32"), scale: T.Buffer((n_rows * ROWS,), "float32"),
                        bias: T.Buffer((n_rows * ROWS,), "float32"), y: T.Buffer((m_rows, n_cols), "float32")):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        for m in T.serial(m_rows):
            for i in rows_loop(n_rows):
                acc = T.alloc_buffer((unroll,), "int32x16", scope="global")
                acc[0] = init[lanes(i * ROWS)]
                for u in T.unroll(1, unroll):
                    acc[u] = T.Broadcast(T.int32(0), ROWS)
                for q in T.serial(T.floordiv(indptr[i + 1] - indptr[i], unroll)):
                    for u in T.unroll(unroll):
                        acc[u] = dot(acc[u], T.Broadcast(xq[m, indices[indptr[i] + q * unroll + u]], ROWS),
                                     data[lanes((indptr[i] + q * unroll + u) * ROWS)])
                for u in T.unroll(1, unroll):
                    acc[0] = acc[0] + acc[u]
                if i < n_full:
                    y[m, lanes(i * ROWS)] = finish(acc[0], scale, bias, i)
                else:
                    tail = T.alloc_buffer((ROWS,), "float32", scope="global")
                    tail[lanes(0)] = finish(acc[0], scale, bias, i)
                    for r in T.serial(n_cols - n_full * ROWS):
                        y[m, i * ROWS + r] = tail[r]

    return int8_qdq_linear
