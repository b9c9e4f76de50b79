"""Sparse ternary codecs: CSR / BSR / delta-COO positions combined with packed ternary codes.

``ternary-csr``: CSR ``col_indices`` / ``row_ptrs`` of the non-zeros plus one sign bit per non-zero
(1: ``pos[row]``, 0: ``neg[row]``), packed 8 per byte. ``ternary-bsr``: BSR positions of the stored
blocks plus 2-bit ternary codes of every entry of the stored blocks (zeros inside a block remain).
``ternary-delta``: gap-coded flat indices (``codecs.delta``) plus a 2-bit code per entry (0 for
fillers). All keep per-row (or per-tensor) ``pos`` / ``neg`` scales and decode bit-exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deploy.onnx.codecs.bitpack import pack_bits, unpack_bits
from deploy.onnx.codecs.bsr import block_grid, encode_bsr, scatter_blocks, to_blocks
from deploy.onnx.codecs.common import check_shape, gemm_shape, gemm_view
from deploy.onnx.codecs.csr import csr_flat_indices, encode_csr
from deploy.onnx.codecs.delta import decode_positions, encode_positions
from deploy.onnx.codecs.ternary import CODE_NEG, CODE_POS, check_scales, ternary_codes, ternary_values
from deploy.onnx.errors import OnnxFormatError


@dataclass(frozen=True)
class SparseTernaryArrays:
    """Positions (CSR or BSR) plus packed codes and per-row scales.

    Attributes:
        codes: packed sign bits (``ternary-csr``) or 2-bit codes of the stored blocks (``ternary-bsr``).
        col_indices: column (CSR) or block column (BSR) of each stored entry / block.
        row_ptrs: row (CSR) or block-row (BSR) pointers.
        pos_scales: positive value per GEMM row.
        neg_scales: negative value per GEMM row.
        shape: the weight's shape.
        block: ``(1, 1)`` for CSR, ``(r, c)`` for BSR.
    """

    codes: np.ndarray
    col_indices: np.ndarray
    row_ptrs: np.ndarray
    pos_scales: np.ndarray
    neg_scales: np.ndarray
    shape: tuple[int, ...]
    block: tuple[int, int] | None = None

    @property
    def nbytes(self) -> int:
        arrays = (self.codes, self.col_indices, self.row_ptrs, self.pos_scales, self.neg_scales)
        return sum(a.nbytes for a in arrays)


def encode_ternary_csr(weight: np.ndarray) -> SparseTernaryArrays:
    """Encode a ternary weight as CSR positions plus one sign bit per non-zero."""
    codes, pos, neg = ternary_codes(gemm_view(np.ascontiguousarray(weight)))
    csr = encode_csr(weight)
    signs = (codes[codes != 0] == CODE_POS).astype(np.uint8)
    return SparseTernaryArrays(pack_bits(signs, bits=1), csr.col_indices, csr.row_ptrs, pos, neg, csr.shape)


def decode_ternary_csr(arrays: SparseTernaryArrays) -> np.ndarray:
    """Decode ``encode_ternary_csr`` output back to the dense weight (bit-exact)."""
    shape = check_shape(arrays.shape)
    rows, cols = gemm_shape(shape)
    check_scales(arrays.pos_scales, arrays.neg_scales, rows=rows)
    flat = csr_flat_indices(arrays.col_indices, arrays.row_ptrs, shape=shape)
    signs = unpack_bits(arrays.codes, bits=1, count=flat.shape[0])
    codes = np.zeros(rows * cols, dtype=np.uint8)
    codes[flat] = np.where(signs == 1, CODE_POS, CODE_NEG)
    return ternary_values(codes.reshape(rows, cols), arrays.pos_scales, arrays.neg_scales).reshape(shape)


def encode_ternary_bsr(weight: np.ndarray, *, block: tuple[int, int]) -> SparseTernaryArrays:
    """Encode a ternary weight as BSR block positions plus 2-bit codes of the stored blocks."""
    block = (int(block[0]), int(block[1]))
    codes, pos, neg = ternary_codes(gemm_view(np.ascontiguousarray(weight)))
    bsr = encode_bsr(weight, block=block)
    block_rows = np.repeat(np.arange(bsr.row_ptrs.shape[0] - 1), np.diff(bsr.row_ptrs.astype(np.int64)))
    kept = to_blocks(codes, block)[block_rows, bsr.col_indices.astype(np.int64)]
    return SparseTernaryArrays(
        pack_bits(kept.reshape(-1), bits=2), bsr.col_indices, bsr.row_ptrs, pos, neg, bsr.shape, block
    )


def decode_ternary_bsr(arrays: SparseTernaryArrays) -> np.ndarray:
    """Decode ``encode_ternary_bsr`` output back to the dense weight (bit-exact)."""
    shape = check_shape(arrays.shape)
    rows, cols = gemm_shape(shape)
    if arrays.block is None or len(arrays.block) != 2:
        raise OnnxFormatError(f"ternary-bsr needs a block shape [r, c], got {arrays.block!r}")
    r, c = (int(v) for v in arrays.block)
    check_scales(arrays.pos_scales, arrays.neg_scales, rows=rows)
    grid_rows, grid_cols = block_grid(shape, (r, c))
    flat_blocks = csr_flat_indices(arrays.col_indices, arrays.row_ptrs, shape=(grid_rows, grid_cols))
    codes = unpack_bits(arrays.codes, bits=2, count=flat_blocks.shape[0] * r * c).reshape(-1, r, c)
    dense_codes = scatter_blocks(codes, flat_blocks, shape=(rows, cols))
    return ternary_values(dense_codes, arrays.pos_scales, arrays.neg_scales).reshape(shape)


def encode_ternary_delta(weight: np.ndarray) -> SparseTernaryArrays:
    """Encode a ternary weight as index gaps (``delta.encode_positions``) plus 2-bit codes per entry.

    Filler entries carry code 0. ``col_indices`` holds the gaps and ``row_ptrs`` is empty.
    """
    codes, pos, neg = ternary_codes(gemm_view(np.ascontiguousarray(weight)))
    flat_codes = codes.reshape(-1)
    flat = np.flatnonzero(flat_codes)
    deltas, real = encode_positions(flat, value_bytes=0.25)
    entry_codes = np.zeros(deltas.size, dtype=np.uint8)
    entry_codes[real] = flat_codes[flat]
    empty = np.zeros(0, dtype=np.uint8)
    return SparseTernaryArrays(pack_bits(entry_codes, bits=2), deltas, empty, pos, neg, tuple(weight.shape))


def decode_ternary_delta(arrays: SparseTernaryArrays) -> np.ndarray:
    """Decode ``encode_ternary_delta`` output back to the dense weight (bit-exact)."""
    shape = check_shape(arrays.shape)
    rows, cols = gemm_shape(shape)
    check_scales(arrays.pos_scales, arrays.neg_scales, rows=rows)
    flat = decode_positions(arrays.col_indices, numel=rows * cols)
    codes = np.zeros(rows * cols, dtype=np.uint8)
    codes[flat] = unpack_bits(arrays.codes, bits=2, count=flat.shape[0])
    return ternary_values(codes.reshape(rows, cols), arrays.pos_scales, arrays.neg_scales).reshape(shape)
