"""Relax pass: conv2d / matmul chains whose constant weight is ternary or binary become code kernels.

Runs before the float :func:`deploy.tvm.fusion.fuse_layers` and uses its chain finder, so the same
chains fold (``conv2d | matmul [-> bias add] [-> residual add] [-> relu | clip | sigmoid | silu | hardswish]``,
the code kernels share the float kernels' epilogue); a chain is taken
here when :func:`deploy.tvm.quantized_weights.detect_ternary` recognises its weight (every output
channel's values in ``{-n, 0, +p}`` or ``{-s, +s}``), so nothing but the values has to reach the
compiler. Such a weight is stored in the library as bit-mask words over its kept ``R x 1`` blocks
plus its scales (one for the layer, one or two per output channel: as few as the values allow;
2 bits per kept weight, 1 for binary) instead of float32:

    matmul(x, W) ... -> call_tir(ternary_linear | ternary_linear_dense, x, codes, [indices, indptr,] pos, neg, bias)
    conv2d(x, W) ... -> call_tir(ternary_conv, phase_pad(x), codes, offsets, indptr, pos, neg, bias, residual)

A QDQ graph's int8 chains (``DequantizeLinear`` input, int8 weight) go first to
:mod:`deploy.tvm.int8_qdq_fusion`, which runs them with int8 activations (u8 x s8 -> s32 dot
products); what it leaves is rewritten here.

Symmetric per-channel int8 weights (:func:`deploy.tvm.quantized_weights.detect_int8`: every
``w / scale`` an integer, ``scale = max|w| / 127``) are stored as int8 codes per kept block plus one
scale per channel (``int8_linear``; the conv kernel with ``R`` codes per block); activations stay
float32. Depthwise convolutions and every other chain are left to the float pass. The linear block
height is the one that stores the fewest bytes unless the target's vector width stores at most 10%
more; the convolution tile is the float kernel's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from deploy.tvm.fusion_chains import Chain, find_chains
from deploy.tvm.int8_qdq_fusion import fuse_qdq_layers
from deploy.tvm.fusion import (
    PARALLEL_MIN_MACS,
    VECTOR_CHOICES,
    _geometry,
    add_kernel,
    emit_phase_planes,
    emit_rows,
    unflatten_rows,
    rewrite_relax_functions,
)
from deploy.tvm.kernels.direct_conv import ConvTile
from deploy.tvm.kernels.ternary_conv import ternary_conv_func
from deploy.tvm.kernels.ternary_linear import TernaryLinearShape, ternary_linear_func
from deploy.tvm.layer_report import KernelChoice, LayerReport
from deploy.tvm.linear_weights import LINEAR_UNROLL
from deploy.tvm.kernels.int8_linear import int8_linear_func
from deploy.tvm.linear_weights import best_linear_block_rows
from deploy.tvm.quantized_weights import (Int8Weight, TernaryWeight, detect_int8, detect_ternary, linear_scales,
                                          pack_conv_codes, pack_int8_linear, pack_linear_codes, padded)

LINEAR_BLOCK_ROWS = (16, 8, 4, 2, 1)
PREFERRED_ROWS_SLACK = 1.1


@dataclass(frozen=True)
class QuantizedLayerReport(LayerReport):
    """A :class:`LayerReport` that also gives the bytes its code kernel stores in the library
    (code words, block indices / offsets, row pointers, scales; the bias is not counted)."""

    scheme: str = "ternary"
    payload_bytes: int = 0
    position: int = 0  # index among all the function's conv2d / matmul chains (for :func:`merge_layer_reports`)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "scheme": self.scheme, "payload_bytes": self.payload_bytes}


def merge_layer_reports(quantized: list, others: list) -> list:
    """All layer reports in model order: the code kernels at their positions, the float pass's
    reports (in model order) in the gaps."""
    merged, rest = [], iter(others)
    by_position = {report.position: report for report in quantized}
    for position in range(len(quantized) + len(others)):
        merged.append(by_position[position] if position in by_position else next(rest))
    return merged


def fuse_quantized_layers(mod, *, vector_floats: int):
    """Rewrite every conv2d / matmul chain of ``mod`` whose constant weight is ternary or binary.

    Args:
        mod: Relax module after ``FoldConstant``.
        vector_floats: float lanes of the target's vector width (see ``fuse_layers``).

    Returns:
        ``(new_module, [QuantizedLayerReport, ...])``.
    """
    mod, int8_layers = fuse_qdq_layers(mod, vector_floats=vector_floats)  # QDQ graphs: int8 activations too
    reports: list[QuantizedLayerReport] = []
    mod = rewrite_relax_functions(mod, _make_rewriter(mod, vector_floats, reports))
    taken = {layer[0] for layer in int8_layers}  # the code kernels' positions count the chains left after it
    free = [p for p in range(len(taken) + max((r.position for r in reports), default=0) + 1) if p not in taken]
    reports = [replace(report, position=free[report.position]) for report in reports]
    int8 = [QuantizedLayerReport(name, op, shape, batch, choice, "int8-qdq", payload, position)
            for position, name, op, shape, batch, choice, payload in int8_layers]
    return mod, sorted(reports + int8, key=lambda report: report.position)


def _ternary_chains(func) -> tuple[dict, set]:
    """The chains of ``func`` whose weight is ternary / binary (with its codes), and their folded vars."""
    chains, _ = find_chains(func)
    found, absorbed = {}, set()
    for position, (end_var, chain) in enumerate(chains.items()):
        if chain.is_conv and int(chain.op.attrs.groups) > 1:
            continue  # depthwise: one weight per tap and channel, nothing for codes to save; the float kernel
        weight = chain.op.args[1].value.numpy()
        rows_first = weight if chain.is_conv else weight.T
        codes = detect_ternary(rows_first)
        codes = codes if codes is not None else detect_int8(rows_first)
        if codes is not None:
            found[end_var] = (chain, codes, position)
            absorbed.update(chain.absorbed)
    return found, absorbed


def _make_rewriter(mod, vector_floats: int, reports: list):
    from tvm import relax
    from tvm.relax.expr_functor import PyExprMutator, mutator

    @mutator
    class TernaryRewriter(PyExprMutator):
        """Replaces the end binding of each ternary chain by its code kernel call and drops the rest."""

        def __init__(self, module):
            super().__init__(module)
            self.chains: dict = {}
            self.absorbed: set = set()
            self.position = 0

        def plan(self, func) -> None:
            self.chains, self.absorbed = _ternary_chains(func)

        def visit_var_binding_(self, binding):
            var = binding.var
            if var in self.absorbed:
                return
            if var not in self.chains:
                super().visit_var_binding_(binding)
                return
            chain, codes, self.position = self.chains[var]
            call = self._conv(chain, codes) if chain.is_conv else self._linear(chain, codes)
            emit = self.builder_.emit if isinstance(var, relax.DataflowVar) else self.builder_.emit_output
            self.set_var_remap(var, emit(call, name_hint=var.name))

        def _record(self, name: str, op: str, shape, batch: int, choice: KernelChoice, codes, payload: int):
            reports.append(QuantizedLayerReport(name, op, tuple(int(v) for v in shape), batch, choice, codes.scheme, payload,
                                                self.position))

        def _conv(self, chain: Chain, codes: TernaryWeight | Int8Weight):
            weight = chain.op.args[1].value.numpy()
            geometry = _geometry(chain.op, weight)
            bias = chain.bias if chain.bias is not None else np.zeros(geometry.out_channels, np.float32)
            vector = next(v for v in VECTOR_CHOICES if v <= vector_floats and geometry.out_width % v == 0)
            packed = pack_conv_codes(codes, shape=weight.shape, geometry=geometry, vector=vector, vector_floats=vector_floats)
            name = f"{codes.scheme}_conv2d_{len(reports)}"
            macs = geometry.macs * (1.0 - packed.zero_block_ratio)
            func = ternary_conv_func(geometry=geometry, tile=ConvTile(packed.block_rows, vector), layout=packed.layout,
                                     epilogue=chain.epilogue(), parallel=macs >= PARALLEL_MIN_MACS)
            x = self.visit_expr(chain.op.args[0])
            xq = emit_phase_planes(self.builder_, x, geometry, name)
            residual = self.visit_expr(chain.residual) if chain.residual is not None else relax.const(np.zeros((1, 1, 1, 1), np.float32))
            offsets = packed.offsets if packed.offsets is not None else np.zeros(1, packed.layout.offset_dtype)
            indptr = packed.indptr if packed.indptr is not None else np.zeros(1, np.int32)
            length = -(-geometry.out_channels // packed.block_rows) * packed.block_rows
            scales = (padded(codes.pos_scale, length), padded(codes.neg_scale, length))
            operands = [xq, *(relax.const(a) for a in (packed.words, offsets, indptr, *scales, bias)), residual]
            stored = ("int8 codes" if codes.scheme == "int8" else f"{packed.words.dtype.itemsize * 8}-bit code word") + " per"
            choice = KernelChoice(f"{codes.scheme}-conv", packed.block_rows, packed.zero_block_ratio,
                                  f"{codes.scheme} direct convolution, {stored} {packed.block_rows}x1 tap block, "
                                  f"{packed.zero_block_ratio:.1%} of the blocks zero and skipped; {chain.describe()}")
            payload = packed.payload_bytes + (1 if codes.scheme == "int8" else 2) * codes.pos_scale.nbytes
            self._record(name, "conv2d", weight.shape, geometry.batch, choice, codes, payload)
            out_type = relax.TensorType((geometry.batch, geometry.out_channels, geometry.out_height, geometry.out_width), "float32")
            return relax.call_tir(add_kernel(self.builder_, func, name), operands, out_type)

        def _linear(self, chain: Chain, codes: TernaryWeight | Int8Weight):
            if codes.scheme == "int8":
                return self._int8_linear(chain, codes)
            shape = [int(v) for v in chain.op.args[0].ty.shape]
            out_features, in_features = codes.codes.shape
            batch = int(np.prod(shape[:-1]))
            x = emit_rows(self.builder_, self.visit_expr(chain.op.args[0]), shape)
            packed = _smallest_linear_packing(codes, vector_floats=vector_floats)
            rows = packed.block_rows
            length = -(-out_features // rows) * rows
            scale_mode, pos_scale, neg_scale = linear_scales(codes, length)
            kernel_shape = TernaryLinearShape(batch=batch, in_features=in_features, out_features=out_features, block_rows=rows,
                                              nnz_blocks=packed.nnz_blocks, scheme=codes.scheme, dense=packed.dense,
                                              index_dtype=str(packed.indices.dtype) if packed.indices is not None else "int32",
                                              scale_mode=scale_mode)
            bias = chain.bias if chain.bias is not None else np.zeros(out_features, np.float32)
            macs = batch * packed.nnz_blocks * rows
            func = ternary_linear_func(shape=kernel_shape, unroll=LINEAR_UNROLL, epilogue=chain.epilogue(),
                                       parallel=macs >= PARALLEL_MIN_MACS)
            name = f"{codes.scheme}_matmul_{len(reports)}"
            arrays = [packed.words] + ([] if packed.dense else [packed.indices, packed.indptr])
            arrays += [pos_scale, neg_scale, padded(bias, length)]
            choice = KernelChoice(f"{codes.scheme}-linear", rows, packed.zero_block_ratio,
                                  f"{codes.scheme} linear, {packed.words.dtype.itemsize * 8}-bit code word per {rows}x1 block, "
                                  f"{packed.zero_block_ratio:.1%} of the blocks zero and skipped; {chain.describe()}")
            payload = packed.payload_bytes + pos_scale.nbytes + neg_scale.nbytes
            self._record(name, "matmul", codes.codes.shape, batch, choice, codes, payload)
            call = relax.call_tir(add_kernel(self.builder_, func, name), [x, *(relax.const(a) for a in arrays)],
                                  relax.TensorType((batch, out_features), "float32"))
            return unflatten_rows(self.builder_, call, shape, out_features)

        def _int8_linear(self, chain: Chain, codes: Int8Weight):
            shape = [int(v) for v in chain.op.args[0].ty.shape]
            out_features, in_features = codes.codes.shape
            batch = int(np.prod(shape[:-1]))
            x = emit_rows(self.builder_, self.visit_expr(chain.op.args[0]), shape)
            rows = best_linear_block_rows(codes.codes, vector_floats=vector_floats)
            packed = pack_int8_linear(codes, block_rows=rows, unroll=LINEAR_UNROLL)
            nnz_blocks, length = packed.words.size // rows, -(-out_features // rows) * rows
            bias = chain.bias if chain.bias is not None else np.zeros(out_features, np.float32)
            func = int8_linear_func(batch=batch, in_features=in_features, out_features=out_features, block_rows=rows,
                                    nnz_blocks=nnz_blocks, unroll=LINEAR_UNROLL, epilogue=chain.epilogue(), dense=packed.dense,
                                    index_dtype=str(packed.indices.dtype) if packed.indices is not None else "int32",
                                    parallel=batch * nnz_blocks * rows >= PARALLEL_MIN_MACS)
            name = f"int8_matmul_{len(reports)}"
            indices = packed.indices if packed.indices is not None else np.zeros(1, np.int32)
            indptr = packed.indptr if packed.indptr is not None else np.zeros(1, np.int32)
            arrays = [packed.words, indices, indptr, padded(codes.scale, length), padded(bias, length)]
            choice = KernelChoice("int8-linear", rows, packed.zero_block_ratio,
                                  f"int8 linear (float activations), {rows} int8 codes per {rows}x1 block, "
                                  f"{packed.zero_block_ratio:.1%} of the blocks zero and skipped; {chain.describe()}")
            self._record(name, "matmul", codes.codes.shape, batch, choice, codes, packed.payload_bytes + length * 4)
            call = relax.call_tir(add_kernel(self.builder_, func, name), [x, *(relax.const(a) for a in arrays)],
                                  relax.TensorType((batch, out_features), "float32"))
            return unflatten_rows(self.builder_, call, shape, out_features)

    return TernaryRewriter(mod)


def _smallest_linear_packing(codes: TernaryWeight, *, vector_floats: int):
    """The ``R x 1`` packing of ``codes`` that stores the fewest bytes (the larger ``R`` on ties), or
    the target's vector width ``R`` when that stores at most ``PREFERRED_ROWS_SLACK`` more: one full
    vector per block is faster (measured on AVX-512: a 500x800 ternary layer at 92% block sparsity
    ran 2.5x faster with 16-lane than with 8-lane blocks)."""
    packings = {}
    for rows in LINEAR_BLOCK_ROWS:
        if rows > 1 and rows >= 2 * codes.codes.shape[0]:
            continue
        packings[rows] = pack_linear_codes(codes.codes, block_rows=rows, scheme=codes.scheme, unroll=1)  # the kernel runs the remainder
    smallest = min(packings.values(), key=lambda packed: (packed.payload_bytes, -packed.block_rows))
    preferred = packings.get(min(vector_floats, max(LINEAR_BLOCK_ROWS)))
    if preferred is not None and preferred.payload_bytes <= PREFERRED_ROWS_SLACK * smallest.payload_bytes:
        return preferred
    return smallest
