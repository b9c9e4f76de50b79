"""Linear layers (``matmul`` with a constant 2-D weight, leading input dimensions flattened into
rows): the block-sparse kernel over ``R x 1`` weight blocks with ``R`` chosen for the target's
vector width, zero blocks skipped (:mod:`deploy.tvm.linear_weights`,
:mod:`deploy.tvm.kernels.block_linear`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from tvm import relax

from deploy.tvm.fusion_chains import Chain
from deploy.tvm.fusion_rule import MATMUL, PARALLEL_MIN_MACS, FusionRule, add_kernel, emit_rows, unflatten_rows
from deploy.tvm.kernels.block_linear import block_linear_func
from deploy.tvm.layer_report import KernelChoice, LayerReport
from deploy.tvm.linear_weights import LINEAR_UNROLL, best_linear_block_rows, encode_linear_blocks


@dataclass(frozen=True)
class LinearBlocks:
    """A matmul's weight as ``[out, in]`` and its ``R x 1`` blocks (:mod:`deploy.tvm.linear_weights`)."""

    weight: np.ndarray
    rows: int
    blocks: Any


def encode(chain: Chain, vector_floats: int) -> LinearBlocks:
    weight = np.ascontiguousarray(chain.op.args[1].value.numpy().T)
    rows = best_linear_block_rows(weight, vector_floats=vector_floats)
    return LinearBlocks(weight, rows, encode_linear_blocks(weight, block_rows=rows))


def build(ctx, chain: Chain, weights: LinearBlocks):
    weight, rows, blocks = weights.weight, weights.rows, weights.blocks
    shape = [int(v) for v in chain.op.args[0].ty.shape]
    batch, out_features = int(np.prod(shape[:-1])), weight.shape[0]
    x = emit_rows(ctx.builder_, ctx.visit_expr(chain.op.args[0]), shape)
    bias = chain.bias if chain.bias is not None else np.zeros(out_features, np.float32)
    name = f"matmul_{len(ctx.reports)}"
    macs = batch * blocks.nnz_blocks * rows
    func = block_linear_func(batch=batch, in_features=weight.shape[1], out_features=out_features, block_rows=rows,
                             nnz_blocks=blocks.nnz_blocks, unroll=LINEAR_UNROLL, epilogue=chain.epilogue(),
                             parallel=macs >= PARALLEL_MIN_MACS)
    padded_bias = np.zeros((len(blocks.indptr) - 1) * rows, np.float32)
    padded_bias[:out_features] = bias
    operands = [x, relax.const(blocks.data), relax.const(blocks.indices), relax.const(blocks.indptr), relax.const(padded_bias)]
    choice = KernelChoice("block-linear", rows, blocks.zero_block_ratio,
                          f"linear, {blocks.zero_block_ratio:.1%} of the {rows}x1 blocks zero and skipped; {chain.describe()}")
    ctx.reports.append(LayerReport(name, "matmul", tuple(int(v) for v in weight.shape), batch, choice))
    call = relax.call_tir(add_kernel(ctx.builder_, func, name), operands, relax.TensorType((batch, out_features), "float32"))
    return unflatten_rows(ctx.builder_, call, shape, out_features)


RULE = FusionRule("block-linear", MATMUL, encode, build)
