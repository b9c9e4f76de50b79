"""Recognise ternary / binary weights in dense float constants and pack them as kernel bit masks.

A weight ``W [out, in]`` (a conv's ``[O, C * KH * KW]``) is *ternary* when every output channel's
values lie in ``{-n_o, 0, +p_o}`` and *binary* when they lie in ``{-s_o, +s_o}`` with no zero: the
form our quantize stage writes (``compress.quant``: TWN, exact ternary, binary, TTQ), recognised
from the values alone so no metadata has to travel with the ONNX. Codes ``C`` in ``{-1, 0, +1}``
then give ``W = diag(p) C+ - diag(n) C-`` exactly (``C+`` / ``C-`` the +1 / -1 indicators).

Packing uses the ``R x 1`` block structure of :mod:`deploy.tvm.row_blocks`: a kept block becomes
one unsigned word, bit ``r`` for "+1 at output ``r``" and bit ``R + r`` for "-1" (binary: bit ``r``
for "-1" only). Exact: :func:`unpack_linear_codes` gives the weight back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deploy.tvm.conv_weights import encode_conv_taps
from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.ternary_conv import TernaryConvLayout, conv_code_dtype
from deploy.tvm.kernels.ternary_linear import BINARY_CODE_DTYPES, CODE_DTYPES
from deploy.tvm.linear_weights import encode_linear_blocks
from deploy.tvm.row_blocks import block_structure, row_blocks

RELATIVE_TOLERANCE = 1e-6  # magnitudes equal up to float rounding (e.g. a folded batch norm's scale)
INT8_LEVELS = 127
INT8_TOLERANCE = 1e-3  # of one quantization step: codes * scale rounded to float32 and divided back


@dataclass(frozen=True)
class TernaryWeight:
    """``W = pos_scale[:, None] * (codes == 1) - neg_scale[:, None] * (codes == -1)``.

    Attributes:
        codes: int8 ``[out, in]`` in ``{-1, 0, 1}``.
        pos_scale: float32 ``[out]`` (0 where a channel has no +1).
        neg_scale: float32 ``[out]``.
        scheme: ``"binary"`` (no zero code, ``pos == neg``) or ``"ternary"``.
    """

    codes: np.ndarray
    pos_scale: np.ndarray
    neg_scale: np.ndarray
    scheme: str

    def dequantize(self) -> np.ndarray:
        return (self.pos_scale[:, None] * (self.codes == 1) - self.neg_scale[:, None] * (self.codes == -1)).astype(np.float32)


@dataclass(frozen=True)
class PackedCodes:
    """Bit-mask words of the kept ``R x 1`` blocks.

    Attributes:
        words: one unsigned word per stored block (dtype from the kernel's code table).
        indices: block columns (int16 / int32), ``None`` for the dense form.
        indptr: int32 block-row pointers, ``None`` for the dense form.
        block_rows: ``R``.
        zero_block_ratio: fraction of ``R x 1`` blocks that are all zero and not stored.
    """

    words: np.ndarray
    indices: np.ndarray | None
    indptr: np.ndarray | None
    block_rows: int
    zero_block_ratio: float

    @property
    def dense(self) -> bool:
        return self.indices is None

    @property
    def nnz_blocks(self) -> int:
        return int(self.words.shape[0])

    @property
    def payload_bytes(self) -> int:
        """Bytes of the words, indices and pointers (scales not included)."""
        return int(sum(a.nbytes for a in (self.words, self.indices, self.indptr) if a is not None))


def detect_ternary(weight: np.ndarray) -> TernaryWeight | None:
    """The ternary / binary form of ``weight [out, ...]`` (flattened per output channel), or ``None``.

    Returns ``None`` for a weight some channel of which has two different positive (or negative)
    magnitudes, for a non-finite weight, and for an all-zero weight.
    """
    flat = np.asarray(weight, dtype=np.float32).reshape(weight.shape[0], -1)
    if not np.all(np.isfinite(flat)) or not np.any(flat):
        return None
    pos_scale = np.where(flat > 0, flat, 0).max(axis=1)
    neg_scale = np.where(flat < 0, -flat, 0).max(axis=1)
    codes = np.sign(flat).astype(np.int8)
    rebuilt = pos_scale[:, None] * (codes == 1) - neg_scale[:, None] * (codes == -1)
    if not np.allclose(rebuilt, flat, rtol=RELATIVE_TOLERANCE, atol=0.0):
        return None
    binary = bool(np.all(codes != 0)) and np.allclose(pos_scale, neg_scale, rtol=RELATIVE_TOLERANCE, atol=0.0)
    return TernaryWeight(codes, pos_scale.astype(np.float32), neg_scale.astype(np.float32),
                         "binary" if binary else "ternary")


@dataclass(frozen=True)
class Int8Weight:
    """``W = scale[:, None] * codes`` with int8 ``codes`` in ``[-127, 127]`` (symmetric, per channel)."""

    codes: np.ndarray
    scale: np.ndarray
    scheme: str = "int8"

    @property
    def pos_scale(self) -> np.ndarray:
        return self.scale

    neg_scale = pos_scale


def detect_int8(weight: np.ndarray) -> Int8Weight | None:
    """The symmetric per-channel int8 form of ``weight [out, ...]`` (``compress.quant.project_int8``:
    ``scale = max|w| / 127``, every ``w / scale`` an integer up to ``INT8_TOLERANCE``), or ``None``."""
    flat = np.asarray(weight, dtype=np.float32).reshape(weight.shape[0], -1)
    if not np.all(np.isfinite(flat)) or not np.any(flat):
        return None
    scale = np.abs(flat).max(axis=1) / INT8_LEVELS
    ratio = flat / np.where(scale > 0, scale, 1.0)[:, None]
    codes = np.rint(ratio)
    if not np.all(np.abs(ratio - codes) <= INT8_TOLERANCE):
        return None
    return Int8Weight(codes.astype(np.int8), scale.astype(np.float32))


def code_words(blocks: np.ndarray, *, scheme: str, dtype: str | None = None) -> np.ndarray:
    """Words of code blocks ``[n, R]``: ternary ``sum_r [c_r = 1] 2^r + [c_r = -1] 2^(R + r)``,
    binary ``sum_r [c_r = -1] 2^r`` (``dtype``: the linear kernel's word type unless given)."""
    rows = blocks.shape[1]
    dtype = dtype or (BINARY_CODE_DTYPES if scheme == "binary" else CODE_DTYPES)[rows]
    powers = np.left_shift(np.uint64(1), np.arange(rows, dtype=np.uint64))
    minus = ((blocks == -1).astype(np.uint64) * powers).sum(axis=1, dtype=np.uint64)
    if scheme == "binary":
        return minus.astype(dtype)
    plus = ((blocks == 1).astype(np.uint64) * powers).sum(axis=1, dtype=np.uint64)
    return (plus | (minus << np.uint64(rows))).astype(dtype)


def word_codes(words: np.ndarray, *, block_rows: int, scheme: str) -> np.ndarray:
    """Inverse of :func:`code_words`: ``[n, R]`` int8 codes."""
    lanes = np.arange(block_rows, dtype=np.uint64)
    wide = words.astype(np.uint64)[:, None]
    minus_shift = 0 if scheme == "binary" else block_rows
    minus = (wide >> (lanes + np.uint64(minus_shift))) & np.uint64(1)
    if scheme == "binary":
        return (1 - 2 * minus.astype(np.int8)).astype(np.int8)
    plus = (wide >> lanes) & np.uint64(1)
    return (plus.astype(np.int8) - minus.astype(np.int8)).astype(np.int8)


def pack_linear_codes(codes: np.ndarray, *, block_rows: int, scheme: str, unroll: int) -> PackedCodes:
    """Pack ``codes [out, in]`` as ``R x 1`` block words.

    No zero block (always the case for binary): the dense form, block ``(i, k)`` at word
    ``i * in + k``. Otherwise the kept blocks of each block row, in column order, padded with zero
    words (column 0) to a multiple of ``unroll``; int16 columns when ``in < 2**15``.
    """
    blocks = row_blocks(codes, block_rows)  # [rows, R, in]
    structure = block_structure(codes, block_rows)
    zero_ratio = float(1.0 - structure.indices.size / (blocks.shape[0] * blocks.shape[2]))
    if structure.indices.size == blocks.shape[0] * blocks.shape[2] or scheme == "binary":
        words = code_words(blocks.transpose(0, 2, 1).reshape(-1, block_rows), scheme=scheme)
        return PackedCodes(words, None, None, block_rows, zero_ratio)
    index_dtype = np.int16 if codes.shape[1] < 2**15 else np.int32
    words, indices, indptr = [], [], [0]
    for row in range(blocks.shape[0]):
        columns = structure.indices[structure.indptr[row] : structure.indptr[row + 1]].astype(np.int64)
        padding = (-len(columns)) % unroll
        row_codes = np.concatenate([blocks[row][:, columns].T, np.zeros((padding, block_rows), np.int8)])
        words.append(code_words(row_codes, scheme=scheme))
        indices.append(np.concatenate([columns, np.zeros(padding, np.int64)]))
        indptr.append(indptr[-1] + len(columns) + padding)
    all_words = np.concatenate(words) if indptr[-1] else code_words(np.zeros((1, block_rows), np.int8), scheme=scheme)
    all_indices = np.concatenate(indices).astype(index_dtype) if indptr[-1] else np.zeros(1, index_dtype)
    return PackedCodes(all_words, all_indices, np.asarray(indptr, np.int32), block_rows, zero_ratio)


def unpack_linear_codes(packed: PackedCodes, *, shape: tuple[int, int], scheme: str) -> np.ndarray:
    """Inverse of :func:`pack_linear_codes` (for tests): int8 codes ``[out, in]``."""
    rows = packed.block_rows
    n_rows = -(-shape[0] // rows)
    blocks = word_codes(packed.words, block_rows=rows, scheme=scheme)
    if packed.dense:
        dense = blocks.reshape(n_rows, shape[1], rows).transpose(0, 2, 1).reshape(n_rows * rows, shape[1])
        return np.ascontiguousarray(dense[: shape[0]])
    codes = np.zeros((n_rows * rows, shape[1]), np.int8)
    for row in range(n_rows):
        for b in range(packed.indptr[row], packed.indptr[row + 1]):
            if blocks[b].any():
                codes[row * rows : (row + 1) * rows, int(packed.indices[b])] = blocks[b]
    return codes[: shape[0]]


@dataclass(frozen=True)
class PackedConvCodes:
    """Words of the kept ``R x 1`` tap blocks of a convolution, with their layout record.

    ``offsets`` / ``indptr`` are ``None`` in the dense form (every tap of every block row kept).
    """

    words: np.ndarray
    offsets: np.ndarray | None
    indptr: np.ndarray | None
    block_rows: int
    zero_block_ratio: float
    layout: TernaryConvLayout

    @property
    def payload_bytes(self) -> int:
        return int(sum(a.nbytes for a in (self.words, self.offsets, self.indptr) if a is not None))


def pack_conv_codes(weight: TernaryWeight | Int8Weight, *, shape: tuple[int, int, int, int], geometry: ConvGeometry, vector: int,
                    vector_floats: int) -> PackedConvCodes:
    """Pack a convolution's codes (``weight.codes`` is ``[O, C * KH * KW]``) as tap-block words.

    The blocks and tap offsets are those of :func:`deploy.tvm.conv_weights.encode_conv_taps` for
    the same geometry and tile, so the two kernels visit the same blocks.
    """
    taps = encode_conv_taps(weight.codes.astype(np.float32).reshape(shape), geometry=geometry, vector=vector,
                            vector_floats=vector_floats)
    rows = taps.block_rows
    if weight.scheme == "int8":
        words = taps.data.astype(np.int8)
    else:
        words = code_words(taps.data.reshape(-1, rows).astype(np.int8), scheme=weight.scheme,
                           dtype=conv_code_dtype(rows, weight.scheme))
    row_blocks_count = np.diff(taps.indptr)
    dense = taps.zero_block_ratio == 0.0 or weight.scheme == "binary"
    offset_dtype = "int16" if int(taps.offsets.max(initial=0)) < 2**15 else "int32"
    layout = TernaryConvLayout(nnz_blocks=int(taps.nnz_blocks), max_row_blocks=int(row_blocks_count.max(initial=1)),
                               scheme=weight.scheme, dense=dense, offset_dtype=offset_dtype)
    if dense:
        return PackedConvCodes(words, None, None, rows, taps.zero_block_ratio, layout)
    return PackedConvCodes(words, taps.offsets.astype(offset_dtype), taps.indptr, rows, taps.zero_block_ratio, layout)


def pack_int8_linear(weight: Int8Weight, *, block_rows: int, unroll: int) -> PackedCodes:
    """``R x 1`` blocks of int8 codes (``R`` codes per stored block, ``words`` is int8 ``[nnz * R]``):
    the dense form when no block is zero, else the kept blocks of each row padded to ``unroll``."""
    blocks = encode_linear_blocks(weight.codes.astype(np.float32), block_rows=block_rows, unroll=unroll)
    if blocks.zero_block_ratio == 0.0:
        dense = row_blocks(weight.codes, block_rows).transpose(0, 2, 1)  # [rows, in, R]
        return PackedCodes(np.ascontiguousarray(dense.reshape(-1)), None, None, block_rows, 0.0)
    index_dtype = np.int16 if weight.codes.shape[1] < 2**15 else np.int32
    return PackedCodes(blocks.data.astype(np.int8), blocks.indices.astype(index_dtype), blocks.indptr, block_rows,
                       blocks.zero_block_ratio)


def linear_scales(weight: TernaryWeight, length: int) -> tuple[str, np.ndarray, np.ndarray]:
    """``(scale_mode, pos_scale, neg_scale)`` for the linear kernel, storing as few scales as the
    weight allows: one for the layer (``"uniform"``), one per channel (``"symmetric"``) or two."""
    used = np.concatenate([weight.pos_scale[weight.pos_scale > 0], weight.neg_scale[weight.neg_scale > 0]])
    if np.unique(used).size <= 1:
        value = np.array([used[0] if used.size else 0.0], np.float32)
        return "uniform", value, value.copy()
    merged = np.maximum(weight.pos_scale, weight.neg_scale)
    if np.all((weight.pos_scale == merged) | (weight.pos_scale == 0)) and np.all((weight.neg_scale == merged) | (weight.neg_scale == 0)):
        return "symmetric", padded(merged, length), np.zeros(1, np.float32)
    return "asymmetric", padded(weight.pos_scale, length), padded(weight.neg_scale, length)


def padded(vector: np.ndarray, length: int) -> np.ndarray:
    """``vector`` (float32) followed by zeros up to ``length``."""
    out = np.zeros(length, np.float32)
    out[: vector.shape[0]] = vector
    return out
