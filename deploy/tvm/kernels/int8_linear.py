"""Fused linear layer with int8 weight codes in the library: ``y = act(scale * (x @ Q.T) + bias)``.

``W = diag(scale) Q`` with ``Q`` in ``[-127, 127]`` (symmetric per-channel int8, as the quantize stage
writes it). The kernel is :mod:`deploy.tvm.kernels.block_linear` with ``R`` int8 codes per kept
``R x 1`` block instead of ``R`` floats: each block is sign-extended and converted in registers
(``vpmovsxbd`` + ``vcvtdq2ps`` on x86, ``sxtl`` + ``scvtf`` on NEON) before the FMA, and the scale
is applied once per output in the epilogue::

    acc_u += float(codes[b]) * x[m, indices[b]]          (R lanes)
    y[m, o] = act(scale[o] * acc[o] + bias[o])

Weights only: activations stay float32 (an int8-activation kernel needs the calibrated activation
ranges, which this kernel does not use). Dense weights (no zero block) store no indices.
"""

from __future__ import annotations

from deploy.tvm.kernels.direct_conv import Epilogue, broadcast, epilogue_function, ramp, vector_type


def int8_linear_func(*, batch: int, in_features: int, out_features: int, block_rows: int, nnz_blocks: int,
                     unroll: int, epilogue: Epilogue, dense: bool, index_dtype: str = "int32", parallel: bool = False):
    """Build ``(x, codes[nnz * R], [indices, indptr,] scale, bias) -> y``; scale and bias padded to
    whole block rows, sparse rows padded to a multiple of ``unroll`` blocks (zero codes)."""
    from tvm.script import tirx as T

    m_rows, k_cols, n_cols, r_rows = batch, in_features, out_features, block_rows
    u_len = next(u for u in (unroll, 4, 2, 1) if not dense or k_cols % u == 0)
    n_rows = -(-n_cols // r_rows)
    nnz = n_rows * k_cols if dense else max(nnz_blocks, 1)
    n_full = n_cols // r_rows
    vtype = vector_type(r_rows)
    finish = epilogue_function(epilogue, r_rows)
    rows_loop = T.parallel if parallel else T.serial
    index_len, indptr_len = (1, 1) if dense else (nnz, n_rows + 1)

    def begin(indptr, i):
        return i * k_cols if dense else indptr[i]

    def count(indptr, i):
        return k_cols if dense else indptr[i + 1] - indptr[i]

    def column(indices, indptr, i, b):
        return b - i * k_cols if dense else T.Cast("int32", indices[b])

    def codes_at(codes, b):
        return T.Cast(vtype, codes[ramp(b * r_rows, r_rows)])

    @T.prim_func(private=True)
    def int8_linear(x: T.Buffer((m_rows, k_cols), "float32"), codes: T.Buffer((nnz * r_rows,), "int8"),
                    indices: T.Buffer((index_len,), index_dtype), indptr: T.Buffer((indptr_len,), "int32"),
                    scale: T.Buffer((n_rows * r_rows,), "float32"), bias: T.Buffer((n_rows * r_rows,), "float32"),
                    y: T.Buffer((m_rows, n_cols), "float32")):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        for m in T.serial(m_rows):
            for i in rows_loop(n_rows):
                acc = T.alloc_buffer((u_len,), vtype, scope="global")
                for u in T.unroll(u_len):
                    acc[u] = broadcast(T.float32(0), r_rows)
                for q in T.serial(T.floordiv(count(indptr, i), u_len)):
                    for u in T.unroll(u_len):
                        acc[u] = acc[u] + codes_at(codes, begin(indptr, i) + q * u_len + u) * broadcast(
                            x[m, column(indices, indptr, i, begin(indptr, i) + q * u_len + u)], r_rows)
                for u in T.unroll(1, u_len):
                    acc[0] = acc[0] + acc[u]
                if i < n_full:
                    y[m, ramp(i * r_rows, r_rows)] = finish(
                        acc[0] * scale[ramp(i * r_rows, r_rows)] + bias[ramp(i * r_rows, r_rows)], None)
                else:
                    tail = T.alloc_buffer((r_rows,), "float32", scope="global")
                    tail[ramp(0, r_rows)] = finish(acc[0] * scale[ramp(i * r_rows, r_rows)] + bias[ramp(i * r_rows, r_rows)], None)
                    for r in T.serial(n_cols - n_full * r_rows):
                        y[m, i * r_rows + r] = tail[r]

    return int8_linear
