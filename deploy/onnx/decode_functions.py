"""Building blocks of the ONNX model-local functions that decode our compact weights with standard ops.

Every encoded weight becomes one node ``W = compress.decode.<Format>(arrays..., dims)`` where
``dims = [rows, cols, *shape]`` (int64) describes the GEMM view and the weight's shape. The bodies use
only standard ONNX ops (opset >= 17: ``ScatterElements`` with ``reduction="add"``, ``CumSum``,
``ScatterND``, ``BitShift``, ``Mod``, ``Where``), all inputs are initializers, so onnxruntime
inlines the function and constant-folds it once at session creation. Each format's body
(``WeightFormat.decode_body``, :mod:`deploy.onnx.formats`) is built from the blocks below.

Delta positions: ``flat = cumsum(deltas) - 1``. CSR positions: the row id of entry ``k`` is
``cumsum(marks)[k]`` where ``marks`` counts the row starts ``row_ptrs[1:rows]`` landing on ``k``
(``ScatterElements`` add, so empty rows work); the flat index ``row * cols + col`` then places the
value with ``ScatterElements`` into zeros. BSR scatters ``[nblocks, r, c]`` blocks into a padded
block grid with ``ScatterND``, transposes and crops. The transient cost at load is O(numel) memory
for the dense result plus O(nnz + rows) for the indices.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

from deploy.onnx.function_builder import FunctionBody

DOMAIN = "compress.decode"
INT64_MAX = np.iinfo(np.int64).max


def dims(body: FunctionBody) -> tuple[str, str, str]:
    """Rows [1], cols [1] and shape of the ``dims`` input."""
    return body.slice1("dims", 0, 1), body.slice1("dims", 1, 2), body.slice1("dims", 2, INT64_MAX)


def flat_positions(body: FunctionBody, col: str, ptr: str, rows: str, cols: str) -> str:
    """Flat indices ``row * cols + col`` of CSR entries (int64, length nnz)."""
    col64 = body.op("Cast", col, to=TensorProto.INT64)
    ptr64 = body.op("Cast", ptr, to=TensorProto.INT64)
    starts = body.op("Slice", ptr64, body.const([1], np.int64), rows)
    nnz = body.op("Shape", col64)
    marks_zero = body.op("ConstantOfShape", body.op("Add", nnz, body.const([1], np.int64)),
                         value=onnx.helper.make_tensor("", TensorProto.INT64, [1], [0]))
    ones = body.op("ConstantOfShape", body.op("Shape", starts),
                   value=onnx.helper.make_tensor("", TensorProto.INT64, [1], [1]))
    marks = body.op("ScatterElements", marks_zero, starts, ones, axis=0, reduction="add")
    row_ids = body.op("Slice", body.op("CumSum", marks, body.const(0, np.int64)), body.const([0], np.int64), nnz)
    return body.op("Add", body.op("Mul", row_ids, cols), col64)


def zeros_like(body: FunctionBody, shape: str, like: str) -> str:
    """Zeros of ``shape`` with the element type of ``like``."""
    zeros = body.op("ConstantOfShape", shape, value=onnx.helper.make_tensor("", TensorProto.FLOAT, [1], [0.0]))
    return body.op("CastLike", zeros, like)


def unpack(body: FunctionBody, packed: str, count: str, *, bits: int) -> str:
    """``count`` uint8 codes of ``bits`` bits from packed bytes (little-end first)."""
    shifts = body.const(np.arange(8 // bits) * bits, np.uint8)
    split = body.op("BitShift", body.op("Unsqueeze", packed, body.const([1], np.int64)), shifts, direction="RIGHT")
    codes = body.op("Mod", split, body.const([2**bits], np.uint8))
    return body.op("Slice", body.op("Reshape", codes, body.const([-1], np.int64)), body.const([0], np.int64), count)


def ternary_map(body: FunctionBody, codes2d: str, pos: str, neg: str, shape: str, *, binary: bool) -> str:
    """``where(c == 1, pos, where(c == 2, neg, 0))`` (binary: ``where(c == 1, pos, neg)``), reshaped."""
    axis1 = body.const([1], np.int64)
    pos2, neg2 = body.op("Unsqueeze", pos, axis1), body.op("Unsqueeze", neg, axis1)
    if binary:
        other = neg2
    else:
        zero = body.op("CastLike", body.const(0.0, np.float32), pos)
        other = body.op("Where", body.op("Equal", codes2d, body.const(2, np.uint8)), neg2, zero)
    values = body.op("Where", body.op("Equal", codes2d, body.const(1, np.uint8)), pos2, other)
    return body.op("Reshape", values, shape)


def scatter_flat(body: FunctionBody, values: str, flat: str, numel: str) -> str:
    """A 1-D tensor of ``numel`` zeros with ``values`` written at ``flat``."""
    return body.op("ScatterElements", zeros_like(body, numel, values), flat, values, axis=0)


def scatter_blocks(body: FunctionBody, blocks: str, col: str, ptr: str, rows: str, cols: str) -> str:
    """The ``[rows, cols]`` matrix holding ``[nb, r, c]`` blocks at BSR positions (cropped padding)."""
    block_shape = body.op("Shape", blocks)
    r, c = body.slice1(block_shape, 1, 2), body.slice1(block_shape, 2, 3)
    grid_rows = body.op("Sub", body.op("Shape", ptr), body.const([1], np.int64))
    grid_cols = body.op("Div", body.op("Sub", body.op("Add", cols, c), body.const([1], np.int64)), c)
    flat = flat_positions(body, col, ptr, grid_rows, grid_cols)
    grid_size = body.op("Mul", grid_rows, grid_cols)
    zeros = zeros_like(body, body.op("Concat", grid_size, r, c, axis=0), blocks)
    grid = body.op("ScatterND", zeros, body.op("Unsqueeze", flat, body.const([1], np.int64)), blocks)
    grid4 = body.op("Reshape", grid, body.op("Concat", grid_rows, grid_cols, r, c, axis=0))
    moved = body.op("Transpose", grid4, perm=[0, 2, 1, 3])
    padded_shape = body.op("Concat", body.op("Mul", grid_rows, r), body.op("Mul", grid_cols, c), axis=0)
    padded = body.op("Reshape", moved, padded_shape)
    ends = body.op("Concat", rows, cols, axis=0)
    return body.op("Slice", padded, body.const([0, 0], np.int64), ends, body.const([0, 1], np.int64))


def delta_flat(body: FunctionBody) -> str:
    """Flat indices ``cumsum(deltas) - 1`` (int64)."""
    sums = body.op("CumSum", body.op("Cast", "deltas", to=TensorProto.INT64), body.const(0, np.int64))
    return body.op("Sub", sums, body.const([1], np.int64))


def dense_codes(body: FunctionBody, *, bits: int) -> tuple[str, str]:
    """The ``[rows, cols]`` codes of ``bits`` bits packed in the ``codes`` input, and the weight's shape."""
    rows, cols, shape = dims(body)
    codes = unpack(body, "codes", body.op("Mul", rows, cols), bits=bits)
    return body.op("Reshape", codes, body.op("Concat", rows, cols, axis=0)), shape
