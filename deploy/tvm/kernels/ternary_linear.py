"""Fused ternary / binary linear layer ``y = act(scale * (x @ C.T) + bias)`` with 2-bit codes in the library.

The weight ``W = diag(scale) @ C`` has codes ``C`` in ``{-1, 0, +1}`` (ternary) or ``{-1, +1}``
(binary). It is stored in the ``R x 1`` block layout of :mod:`deploy.tvm.kernels.block_linear`
(``R`` consecutive outputs by one input), but a kept block holds *bit masks* instead of ``R``
floats: one unsigned word per block whose bit ``r`` says "output ``r`` adds ``x[k]``" and whose bit
``R + r`` says "output ``r`` subtracts ``x[k]``" (2 bits per kept weight). The kernel turns each
word into two lane masks with one ``and`` against the constant lane bits (``vptestmd`` into mask
registers on AVX-512, ``cmtst`` on NEON) and updates two ``R``-lane accumulators without multiplying::

    plus_u = select(plus_b, plus_u + x[m, k_b], plus_u);   minus_u likewise with minus_b
    y[m, o] = act(pos_scale[o] * plus[o] - neg_scale[o] * minus[o] + bias[o])   (in the epilogue)

Two scales per output channel cover symmetric ternary (``pos = neg``) and trained ternary
quantization's ``{-W_n, 0, +W_p}`` (Zhu et al., ICLR 2017) alike.

Binary layers keep every block, so they store no block indices and only the minus mask (1 bit per
weight) and use ``x @ C.T = sum(x) - 2 * (x restricted to the -1 codes)``::

    acc_u += select(minus_b, x[m, k], 0);   y = act(scale * (sum_k x[m, k] - 2 * acc) + bias)

Dense ternary layers (no zero block) also drop the indices. Hand-written because TVM 0.27 has no
sub-byte weight kernels; the bit-mask form follows the sign-bitmap kernels of XNOR-Net (Rastegari
et al., ECCV 2016) and TWN (Li et al., 2016) applied to XNNPACK-style ``R x 1`` blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy.tvm.kernels.direct_conv import Epilogue, broadcast, epilogue_function, ramp, vector_type

CODE_DTYPES = {1: "uint8", 2: "uint8", 4: "uint8", 8: "uint16", 16: "uint32"}  # 2 * R bits per block word
BINARY_CODE_DTYPES = {1: "uint8", 2: "uint8", 4: "uint8", 8: "uint8", 16: "uint16"}  # R bits


@dataclass(frozen=True)
class TernaryLinearShape:
    """Static shape of one ternary linear kernel.

    Attributes:
        batch: rows of ``x``.
        in_features: columns of ``x``.
        out_features: outputs.
        block_rows: ``R``, outputs per block (a power of two up to 16).
        nnz_blocks: stored blocks (padded rows included); ignored when ``dense``.
        scheme: ``"ternary"`` or ``"binary"`` (binary implies ``dense``).
        scale_mode: how the scales are stored, see ``scale_lengths``.
        dense: every block kept: no ``indices`` / ``indptr`` operands, column = position in the row.
        index_dtype: ``"int16"`` or ``"int32"`` block column indices.
    """

    batch: int
    in_features: int
    out_features: int
    block_rows: int
    nnz_blocks: int
    scheme: str = "ternary"
    dense: bool = False
    index_dtype: str = "int32"
    scale_mode: str = "asymmetric"

    @property
    def scale_lengths(self) -> tuple[int, int]:
        """Entries of ``pos_scale`` and ``neg_scale``: ``"uniform"`` one scale for the whole layer (1, 1),
        ``"symmetric"`` one per channel, ``neg`` unused (``L``, 1), ``"asymmetric"`` (``L``, ``L``)."""
        length = self.block_row_count * self.block_rows
        return {"uniform": (1, 1), "symmetric": (length, 1), "asymmetric": (length, length)}[self.scale_mode]

    @property
    def block_row_count(self) -> int:
        return -(-self.out_features // self.block_rows)

    @property
    def code_dtype(self) -> str:
        return (BINARY_CODE_DTYPES if self.scheme == "binary" else CODE_DTYPES)[self.block_rows]


def ternary_linear_func(*, shape: TernaryLinearShape, unroll: int, epilogue: Epilogue, parallel: bool = False):
    """Build the PrimFunc ``(x, codes, [indices, indptr,] pos_scale, neg_scale, bias) -> y`` for ``shape``.

    Scales and ``bias`` are padded with zeros to whole block rows; in the sparse form every block
    row's blocks run ``unroll`` at a time, then one by one. Binary kernels use one scale per channel.
    """
    if shape.scheme == "binary" and not shape.dense:
        raise ValueError("binary linear kernels keep every block (dense=True)")
    if shape.dense:
        return _dense_func(shape, unroll=unroll, epilogue=epilogue, parallel=parallel)
    return _sparse_func(shape, unroll=unroll, epilogue=epilogue, parallel=parallel)


def lane_masks(word, *, lanes: int, dtype: str, shift: int):
    """Lane ``r`` of the result is true when bit ``shift + r`` of ``word`` is set."""
    from tvm.script import tirx as T

    if lanes == 1:
        return T.bitwise_and(T.shift_right(word, T.Cast(dtype, shift)), T.Cast(dtype, 1)) != T.Cast(dtype, 0)
    bits = T.shift_left(T.Broadcast(T.Cast(dtype, 1), lanes), T.Ramp(T.Cast(dtype, shift), T.Cast(dtype, 1), lanes))
    return T.bitwise_and(T.Broadcast(word, lanes), bits) != T.Broadcast(T.Cast(dtype, 0), lanes)


def scale_vectors(pos_scale, neg_scale, i, shape: TernaryLinearShape):
    """The ``R`` positive and negative scales of block row ``i``."""
    lanes = shape.block_rows
    if shape.scale_mode == "uniform":
        return broadcast(pos_scale[0], lanes), broadcast(pos_scale[0], lanes)
    pos = pos_scale[ramp(i * lanes, lanes)]
    return pos, (pos if shape.scale_mode == "symmetric" else neg_scale[ramp(i * lanes, lanes)])


def _masked_add(acc, word, value, shape: TernaryLinearShape, *, shift: int):
    """``acc + value`` on the lanes whose bit ``shift + r`` is set, ``acc`` elsewhere (a merge-masked
    add on AVX-512: LLVM loads the word straight into a mask register)."""
    from tvm.script import tirx as T

    lanes, dtype = shape.block_rows, shape.code_dtype
    mask = lane_masks(T.shift_right(word, T.Cast(dtype, shift)) if shift else word, lanes=lanes, dtype=dtype, shift=0)
    return T.Select(mask, acc + broadcast(value, lanes), acc)


def _sparse_func(shape: TernaryLinearShape, *, unroll: int, epilogue: Epilogue, parallel: bool):
    from tvm.script import tirx as T

    m_rows, k_cols, n_cols, r_rows, u_len = shape.batch, shape.in_features, shape.out_features, shape.block_rows, unroll
    n_rows, nnz = shape.block_row_count, max(shape.nnz_blocks, 1)
    n_full = n_cols // r_rows
    vtype, code_dtype, index_dtype = vector_type(r_rows), shape.code_dtype, shape.index_dtype
    finish = epilogue_function(epilogue, r_rows)
    rows_loop = T.parallel if parallel else T.serial
    plus = lambda acc, word, value: _masked_add(acc, word, value, shape, shift=0)  # noqa: E731 - inlined by the parser
    minus = lambda acc, word, value: _masked_add(acc, word, value, shape, shift=r_rows)  # noqa: E731
    pos_len, neg_len = shape.scale_lengths

    def combine(acc_p, acc_m, pos_scale, neg_scale, i):
        pos, neg = scale_vectors(pos_scale, neg_scale, i, shape)
        return acc_p * pos - acc_m * neg

    @T.prim_func(private=True)
    def ternary_linear(x: T.Buffer((m_rows, k_cols), "float32"), codes: T.Buffer((nnz,), code_dtype),
                       indices: T.Buffer((nnz,), index_dtype), indptr: T.Buffer((n_rows + 1,), "int32"),
                       pos_scale: T.Buffer((pos_len,), "float32"), neg_scale: T.Buffer((neg_len,), "float32"),
                       bias: T.Buffer((n_rows * r_rows,), "float32"), y: T.Buffer((m_rows, n_cols), "float32")):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        for m in T.serial(m_rows):
            for i in rows_loop(n_rows):
                acc_p = T.alloc_buffer((u_len,), vtype, scope="global")
                acc_m = T.alloc_buffer((u_len,), vtype, scope="global")
                for u in T.unroll(u_len):
                    acc_p[u] = broadcast(T.float32(0), r_rows)
                    acc_m[u] = broadcast(T.float32(0), r_rows)
                for q in T.serial(T.floordiv(indptr[i + 1] - indptr[i], u_len)):
                    for u in T.unroll(u_len):
                        acc_p[u] = plus(acc_p[u], codes[indptr[i] + q * u_len + u],
                                        x[m, T.Cast("int32", indices[indptr[i] + q * u_len + u])])
                        acc_m[u] = minus(acc_m[u], codes[indptr[i] + q * u_len + u],
                                         x[m, T.Cast("int32", indices[indptr[i] + q * u_len + u])])
                for q in T.serial(T.floormod(indptr[i + 1] - indptr[i], u_len)):
                    acc_p[0] = plus(acc_p[0], codes[indptr[i + 1] - T.floormod(indptr[i + 1] - indptr[i], u_len) + q],
                                    x[m, T.Cast("int32", indices[indptr[i + 1] - T.floormod(indptr[i + 1] - indptr[i], u_len) + q])])
                    acc_m[0] = minus(acc_m[0], codes[indptr[i + 1] - T.floormod(indptr[i + 1] - indptr[i], u_len) + q],
                                     x[m, T.Cast("int32", indices[indptr[i + 1] - T.floormod(indptr[i + 1] - indptr[i], u_len) + q])])
                for u in T.unroll(1, u_len):
                    acc_p[0] = acc_p[0] + acc_p[u]
                    acc_m[0] = acc_m[0] + acc_m[u]
                if i < n_full:
                    y[m, ramp(i * r_rows, r_rows)] = finish(combine(acc_p[0], acc_m[0], pos_scale, neg_scale, i)
                                                            + bias[ramp(i * r_rows, r_rows)], None)
                else:
                    tail = T.alloc_buffer((r_rows,), "float32", scope="global")
                    tail[ramp(0, r_rows)] = finish(combine(acc_p[0], acc_m[0], pos_scale, neg_scale, i)
                                                   + bias[ramp(i * r_rows, r_rows)], None)
                    for r in T.serial(n_cols - n_full * r_rows):
                        y[m, i * r_rows + r] = tail[r]

    return ternary_linear


def _dense_func(shape: TernaryLinearShape, *, unroll: int, epilogue: Epilogue, parallel: bool):
    """Every block kept: the column of block ``q`` of a row is ``q``. Binary: ``sum(x) - 2 * minus``."""
    from tvm.script import tirx as T

    m_rows, k_cols, n_cols, r_rows = shape.batch, shape.in_features, shape.out_features, shape.block_rows
    u_len = next(u for u in (unroll, 4, 2, 1) if k_cols % u == 0)
    n_rows, n_full = shape.block_row_count, n_cols // r_rows
    vtype, code_dtype = vector_type(r_rows), shape.code_dtype
    binary = shape.scheme == "binary"
    finish = epilogue_function(epilogue, r_rows)
    rows_loop = T.parallel if parallel else T.serial
    plus = lambda acc, word, value: _masked_add(acc, word, value, shape, shift=0)  # noqa: E731
    minus = lambda acc, word, value: _masked_add(acc, word, value, shape, shift=0 if binary else r_rows)  # noqa: E731

    pos_len, neg_len = shape.scale_lengths

    def combine(total, acc_p, acc_m, pos_scale, neg_scale, i):
        pos, neg = scale_vectors(pos_scale, neg_scale, i, shape)
        if binary:
            return (broadcast(total, r_rows) - acc_m * broadcast(T.float32(2), r_rows)) * pos
        return acc_p * pos - acc_m * neg

    @T.prim_func(private=True)
    def ternary_linear_dense(x: T.Buffer((m_rows, k_cols), "float32"), codes: T.Buffer((n_rows * k_cols,), code_dtype),
                             pos_scale: T.Buffer((pos_len,), "float32"), neg_scale: T.Buffer((neg_len,), "float32"),
                             bias: T.Buffer((n_rows * r_rows,), "float32"), y: T.Buffer((m_rows, n_cols), "float32")):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        for m in T.serial(m_rows):
            total = T.alloc_buffer((1,), "float32", scope="global")
            total[0] = T.float32(0)
            if binary:
                for k in T.serial(k_cols):
                    total[0] = total[0] + x[m, k]
            for i in rows_loop(n_rows):
                acc_p = T.alloc_buffer((u_len,), vtype, scope="global")
                acc_m = T.alloc_buffer((u_len,), vtype, scope="global")
                for u in T.unroll(u_len):
                    acc_p[u] = broadcast(T.float32(0), r_rows)
                    acc_m[u] = broadcast(T.float32(0), r_rows)
                for q in T.serial(k_cols // u_len):
                    for u in T.unroll(u_len):
                        if not binary:
                            acc_p[u] = plus(acc_p[u], codes[i * k_cols + q * u_len + u], x[m, q * u_len + u])
                        acc_m[u] = minus(acc_m[u], codes[i * k_cols + q * u_len + u], x[m, q * u_len + u])
                for u in T.unroll(1, u_len):
                    acc_p[0] = acc_p[0] + acc_p[u]
                    acc_m[0] = acc_m[0] + acc_m[u]
                if i < n_full:
                    y[m, ramp(i * r_rows, r_rows)] = finish(
                        combine(total[0], acc_p[0], acc_m[0], pos_scale, neg_scale, i) + bias[ramp(i * r_rows, r_rows)], None)
                else:
                    tail = T.alloc_buffer((r_rows,), "float32", scope="global")
                    tail[ramp(0, r_rows)] = finish(
                        combine(total[0], acc_p[0], acc_m[0], pos_scale, neg_scale, i) + bias[ramp(i * r_rows, r_rows)], None)
                    for r in T.serial(n_cols - n_full * r_rows):
                        y[m, i * r_rows + r] = tail[r]

    return ternary_linear_dense
