"""Relax pass: every ``conv2d`` and ``matmul`` with a constant weight becomes one fused kernel call.

A kernel is one :class:`FusionRule` ``(pattern, weight encoder, PrimFunc builder)`` in the explicit
list :data:`FUSION_RULES`: the pattern (TVM's dataflow pattern language, ``tvm.relax.dpl``) says
which anchor op it takes, the encoder turns the chain's constant weight into the kernel's arrays (or
declines the chain), the builder makes the PrimFunc and emits the call. The first rule in list order
that matches and accepts a chain rewrites it; a chain no rule takes is left to the generic schedule
(docs/adding-a-kernel.md).

Each chain :mod:`deploy.tvm.fusion_chains` finds (the op, bias, residual add, activation) becomes::

    xq = call_tir(phase_pad, x)                 (a view for an unpadded stride-1 convolution)
    y  = call_tir(tiled_conv | direct_conv | depthwise_conv, xq, weights..., bias, residual)

or ``call_tir(block_linear, x, ...)`` for a matmul (leading dimensions flattened into rows); the
kernels compute sigmoid-gated activations as a rational approximation in vector registers.

One kernel family serves dense and sparse weights (zero ``R x 1`` blocks are skipped, see
:mod:`deploy.tvm.conv_weights` and :mod:`deploy.tvm.linear_weights`), so there is no im2col. A
convolution with ``groups == 1`` gets the flat-pixel tiled kernel (:mod:`deploy.tvm.kernels.tiled_conv`)
with the tile :mod:`deploy.tvm.conv_tiles` estimates fastest for its zero pattern and the target's
registers: the dense register-blocked tile for a dense weight, tall blocks for block-sparse ones,
short ones for unstructured sparsity; images with fewer flat pixels than one vector keep the row
kernel. The layer report records the tile, the model's estimate and the runner-up. Kernels whose
work is at least ``PARALLEL_MIN_MACS`` multiply-adds run in parallel over output tiles, smaller
ones serially. Measured on the 2-core x86 host: alone, two threads already paid from about 200k
multiply-adds (a 230k-MAC conv: 4.7 us serial, 3.8 us parallel), but next to another runtime's
spinning pool (the report's interleaved timing, a shared machine) a parallel region of that size
often waits for its worker; with the threshold at 1M a 90% sparse ResNet-20 at 2 threads went from
2.2x to 5.4x of dense onnxruntime (median, with the row kernel of the time), while dense layers
(several M MACs) stay parallel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from tvm import relax
from tvm.relax.dpl import DFPattern, is_const, is_op, wildcard
from tvm.relax.expr_functor import PyExprMutator, mutator

from deploy.tvm.conv_tiles import choose_conv_tile
from deploy.tvm.conv_weights import encode_conv_taps
from deploy.tvm.fusion_chains import Chain, find_chains, is_eligible_conv, is_eligible_matmul
from deploy.tvm.layer_report import KernelChoice, LayerReport
from deploy.tvm.kernels.block_linear import block_linear_func
from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.direct_conv import ConvTile, depthwise_conv_func, direct_conv_func, phase_pad_func
from deploy.tvm.kernels.flat_depthwise import flat_depthwise_fits, flat_depthwise_func
from deploy.tvm.kernels.tiled_conv import tiled_conv_func
from deploy.tvm.linear_weights import LINEAR_UNROLL, best_linear_block_rows, encode_linear_blocks

VECTOR_CHOICES = (16, 8, 4, 2, 1)
PARALLEL_MIN_MACS = 1_000_000
FLAT_DEPTHWISE_VECTORS = (4, 3, 2, 1)  # pixel vectors per depthwise tile, the most that fit the image
FLAT_DEPTHWISE_MIN_LANES = 16  # masked loads need mask registers (AVX-512); NEON / AVX2 keep the pad copy
CONV2D = is_op("relax.nn.conv2d")(wildcard(), is_const())
MATMUL = is_op("relax.matmul")(wildcard(), is_const())


@dataclass(frozen=True)
class FusionRule:
    """One fused kernel.

    Attributes:
        name: the rule's name (the kernel family).
        pattern: the chain's anchor call it takes (a ``tvm.relax.dpl`` pattern, e.g. :data:`CONV2D`).
        encode: ``encode(chain, vector_floats) -> weights | None``: the kernel's weight arrays (any
            object the builder reads), or ``None`` when the rule declines the chain.
        build: ``build(ctx, chain, weights) -> relax.Expr``: makes the PrimFunc, adds it with
            :func:`add_kernel`, appends one :class:`LayerReport` to ``ctx.reports`` and returns the
            call that replaces the chain's end (``ctx``: the rewriter, see :class:`FusionRewriter`).
    """

    name: str
    pattern: DFPattern
    encode: Callable[[Chain, int], Any]
    build: Callable[[Any, Chain, Any], Any]

    def take(self, chain: Chain, vector_floats: int):
        """The encoded weights when this rule rewrites ``chain``, else ``None``."""
        return self.encode(chain, vector_floats) if self.pattern.match(chain.op) else None


@mutator
class FusionRewriter(PyExprMutator):
    """Replaces the end binding of each chain a rule takes by the rule's kernel call and drops the
    chain's other bindings.

    Attributes read by the rules' builders: ``builder_`` (the Relax block builder), ``visit_expr``
    (an operand as rewritten), ``vector_floats``, ``reports`` (the layer reports so far).
    """

    def __init__(self, module, rules, vector_floats: int, reports: list):
        super().__init__(module)
        self.rules, self.vector_floats, self.reports = tuple(rules), vector_floats, reports
        self.chains: dict = {}
        self.absorbed: set = set()

    def plan(self, func) -> None:
        """Pick, for each chain of ``func``, the first rule that takes it."""
        chains, _ = find_chains(func)
        self.chains, self.absorbed = {}, set()
        for end_var, chain in chains.items():
            for rule in self.rules:
                weights = rule.take(chain, self.vector_floats)
                if weights is not None:
                    self.chains[end_var] = (chain, rule, weights)
                    self.absorbed.update(chain.absorbed)
                    break

    def visit_var_binding_(self, binding):
        var = binding.var
        if var in self.absorbed:
            return
        if var not in self.chains:
            super().visit_var_binding_(binding)
            return
        chain, rule, weights = self.chains[var]
        call = rule.build(self, chain, weights)
        emit = self.builder_.emit if isinstance(var, relax.DataflowVar) else self.builder_.emit_output
        self.set_var_remap(var, emit(call, name_hint=var.name))


def fuse_layers(mod, *, vector_floats: int, rules=None):
    """Rewrite every conv2d / matmul chain of ``mod``'s Relax functions that a rule takes.

    Args:
        mod: Relax module after ``FoldConstant``.
        vector_floats: float lanes of the target's comfortable vector width (16 with AVX-512, 8 for
            NEON or AVX2 as two registers); pixel tiles and linear blocks are powers of two up to it.
        rules: the fusion rules, first match wins (default :data:`FUSION_RULES`).

    Returns:
        ``(new_module, [LayerReport, ...])``.
    """
    reports: list[LayerReport] = []
    rewriter = FusionRewriter(mod, FUSION_RULES if rules is None else rules, vector_floats, reports)
    return rewrite_relax_functions(mod, rewriter), reports


def rewrite_relax_functions(mod, rewriter):
    """``mod`` with each Relax function planned (``rewriter.plan``) and rewritten by ``rewriter``."""
    for gvar, func in mod.functions_items():
        if isinstance(func, relax.Function):
            rewriter.plan(func)
            rewriter.builder_.update_func(gvar, rewriter.visit_expr(func))
    return rewriter.builder_.get()


# -- convolutions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvSite:
    """What every convolution rule reads of its chain: the weight, geometry, bias and pixel vector."""

    weight: np.ndarray
    geometry: ConvGeometry
    bias: np.ndarray
    vector: int


def conv_site(chain: Chain, vector_floats: int) -> ConvSite:
    """The :class:`ConvSite` of a conv2d chain (zero bias when the chain has none)."""
    weight = chain.op.args[1].value.numpy()
    geometry = _geometry(chain.op, weight)
    bias = chain.bias if chain.bias is not None else np.zeros(geometry.out_channels, np.float32)
    vector = next(v for v in VECTOR_CHOICES if v <= vector_floats and geometry.out_width % v == 0)
    return ConvSite(weight, geometry, bias, vector)


def conv_operands(ctx, chain: Chain):
    """The rewritten input ``x`` and residual (a 1x1x1x1 zero tensor without one) of a conv chain."""
    x = ctx.visit_expr(chain.op.args[0])
    residual = ctx.visit_expr(chain.residual) if chain.residual is not None else relax.const(np.zeros((1, 1, 1, 1), np.float32))
    return x, residual


def conv_call(ctx, site: ConvSite, func, name: str, operands: list, choice: KernelChoice):
    """Record the layer and return ``call_tir(func, operands)`` with the convolution's output type."""
    geometry = site.geometry
    ctx.reports.append(LayerReport(name, "conv2d", tuple(int(v) for v in site.weight.shape), geometry.batch, choice))
    out_type = relax.TensorType((geometry.batch, geometry.out_channels, geometry.out_height, geometry.out_width), "float32")
    return relax.call_tir(add_kernel(ctx.builder_, func, name), operands, out_type)


def _depthwise_weights(chain: Chain, vector_floats: int) -> ConvSite | None:
    return conv_site(chain, vector_floats) if int(chain.op.attrs.groups) > 1 else None


def _depthwise_conv(ctx, chain: Chain, site: ConvSite):
    """The flat-pixel kernel on the unpadded input where it fits (AVX-512), else pad + the row kernel."""
    geometry, weight, vector, lanes = site.geometry, site.weight, site.vector, ctx.vector_floats
    name = f"conv2d_{len(ctx.reports)}"
    x, residual = conv_operands(ctx, chain)
    parallel = geometry.macs // geometry.channels >= PARALLEL_MIN_MACS
    weights = relax.const(np.ascontiguousarray(weight.reshape(-1)))
    vectors = next((p for p in FLAT_DEPTHWISE_VECTORS if flat_depthwise_fits(geometry, lanes=lanes, vectors=p)), 0)
    if lanes >= FLAT_DEPTHWISE_MIN_LANES and vectors:
        func = flat_depthwise_func(geometry=geometry, lanes=lanes, vectors=vectors, epilogue=chain.epilogue(), parallel=parallel)
        how = f"depthwise convolution over flat pixels, {vectors} x {lanes} per tile, padding masked (no pad copy)"
        choice = KernelChoice("depthwise-conv", 1, _sparsity(weight), f"{how}; {chain.describe()}")
        return conv_call(ctx, site, func, name, [x, weights, relax.const(site.bias), residual], choice)
    func = depthwise_conv_func(geometry=geometry, vector=vector, epilogue=chain.epilogue(), parallel=parallel)
    operands = [emit_phase_planes(ctx.builder_, x, geometry, name), weights, relax.const(site.bias), residual]
    choice = KernelChoice("depthwise-conv", 1, _sparsity(weight),
                          f"depthwise direct convolution, {vector} pixels per vector; {chain.describe()}")
    return conv_call(ctx, site, func, name, operands, choice)


@dataclass(frozen=True)
class ConvTaps:
    """A groups = 1 convolution's ``R x 1`` tap blocks and the tile the cost model picked (or ``None``:
    the row kernel)."""

    site: ConvSite
    picked: Any
    taps: Any


def _direct_conv_weights(chain: Chain, vector_floats: int) -> ConvTaps | None:
    if int(chain.op.attrs.groups) != 1:
        return None
    site = conv_site(chain, vector_floats)
    picked = choose_conv_tile(site.weight, geometry=site.geometry, vector_floats=vector_floats)
    lanes = picked.tile.lanes if picked is not None else site.vector
    rows = picked.tile.block_rows if picked is not None else None
    taps = encode_conv_taps(site.weight, geometry=site.geometry, vector=lanes, vector_floats=vector_floats, rows=rows)
    return ConvTaps(site, picked, taps)


def _direct_conv(ctx, chain: Chain, weights: ConvTaps):
    """groups = 1: the flat-pixel tiled kernel with the cost model's tile, else the row kernel."""
    site, picked, taps = weights.site, weights.picked, weights.taps
    geometry, vector = site.geometry, site.vector
    name = f"conv2d_{len(ctx.reports)}"
    x, residual = conv_operands(ctx, chain)
    xq = emit_phase_planes(ctx.builder_, x, geometry, name)
    parallel = geometry.macs * (1.0 - taps.zero_block_ratio) >= PARALLEL_MIN_MACS
    skipped = f"{taps.zero_block_ratio:.1%} of the {taps.block_rows}x1 tap blocks zero and skipped"
    if picked is not None:
        func = tiled_conv_func(geometry=geometry, tile=picked.tile, nnz_blocks=taps.nnz_blocks,
                               epilogue=chain.epilogue(), parallel=parallel)
        how = (f"direct convolution over flat pixel tiles, {skipped}; channels x vectors x lanes "
               f"{picked.describe()}; {chain.describe()}")
    else:
        func = direct_conv_func(geometry=geometry, tile=ConvTile(taps.block_rows, vector), nnz_blocks=taps.nnz_blocks,
                                epilogue=chain.epilogue(), parallel=parallel)
        how = f"direct convolution by rows, {vector} pixels per vector, {skipped}; {chain.describe()}"
    operands = [xq, relax.const(taps.data), relax.const(taps.offsets), relax.const(taps.indptr), relax.const(site.bias), residual]
    return conv_call(ctx, site, func, name, operands, KernelChoice("direct-conv", taps.block_rows, taps.zero_block_ratio, how))


# -- linear layers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearBlocks:
    """A matmul's weight as ``[out, in]`` and its ``R x 1`` blocks (:mod:`deploy.tvm.linear_weights`)."""

    weight: np.ndarray
    rows: int
    blocks: Any


def _linear_weights(chain: Chain, vector_floats: int) -> LinearBlocks:
    weight = np.ascontiguousarray(chain.op.args[1].value.numpy().T)
    rows = best_linear_block_rows(weight, vector_floats=vector_floats)
    return LinearBlocks(weight, rows, encode_linear_blocks(weight, block_rows=rows))


def _block_linear(ctx, chain: Chain, weights: LinearBlocks):
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


FUSION_RULES: tuple[FusionRule, ...] = (
    FusionRule("depthwise-conv", CONV2D, _depthwise_weights, _depthwise_conv),
    FusionRule("direct-conv", CONV2D, _direct_conv_weights, _direct_conv),
    FusionRule("block-linear", MATMUL, _linear_weights, _block_linear),
)


# -- helpers shared by the rules (and the quantized pass) --------------------------------------------


def add_kernel(builder, func, name: str):
    """Add the PrimFunc ``func`` to the module being built, exported as ``name``; its global var."""
    return builder.add_func(func.with_attr("global_symbol", name), name)


def emit_phase_planes(builder, x, geometry: ConvGeometry, name: str):
    """The direct kernels' input ``xq`` (:func:`phase_pad_func`): a view of ``x`` for an unpadded
    stride-1 convolution, else one ``phase_pad`` call."""
    if geometry.stride == (1, 1) and not any(geometry.padding) and geometry.dilation == (1, 1):
        return builder.emit(relax.op.reshape(x, (geometry.batch, geometry.phase_size)))  # a view
    out_type = relax.TensorType((geometry.batch, geometry.phase_size), "float32")
    return builder.emit(relax.call_tir(add_kernel(builder, phase_pad_func(geometry=geometry), f"phase_pad_{name}"), [x], out_type))


def emit_rows(builder, x, shape: list[int]):
    """A linear layer's input of ``shape`` as ``(rows, features)`` (leading dimensions flattened)."""
    return x if len(shape) == 2 else builder.emit(relax.op.reshape(x, (int(np.prod(shape[:-1])), shape[-1])))


def unflatten_rows(builder, call, shape: list[int], out_features: int):
    """A ``(rows, out_features)`` kernel call back in the input's leading dimensions."""
    return call if len(shape) == 2 else relax.op.reshape(builder.emit(call), (*shape[:-1], out_features))


def list_weight_layers(mod, *, reason: str) -> list[LayerReport]:
    """Records of the conv2d / matmul layers with constant weights, left to another schedule."""
    reports = []
    for _, func in mod.functions_items():
        if not isinstance(func, relax.Function):
            continue
        for block in func.body.blocks:
            for binding in block.bindings:
                value = binding.value
                if is_eligible_conv(value) or is_eligible_matmul(value):
                    weight = value.args[1].value.numpy()
                    op = "conv2d" if value.op.name == "relax.nn.conv2d" else "matmul"
                    shape = weight.shape if op == "conv2d" else weight.T.shape
                    reports.append(LayerReport(f"{op}_{len(reports)}", op, tuple(int(v) for v in shape), 1,
                                               KernelChoice("dense", 1, _sparsity(weight), reason)))
    return reports


def _geometry(conv, weight: np.ndarray) -> ConvGeometry:
    attrs = conv.attrs
    batch, channels, height, width = (int(v) for v in conv.args[0].ty.shape)
    return ConvGeometry(batch=batch, channels=channels, height=height, width=width, out_channels=int(weight.shape[0]),
                        kernel_h=int(weight.shape[2]), kernel_w=int(weight.shape[3]),
                        stride=tuple(int(v) for v in attrs.strides), padding=tuple(int(v) for v in attrs.padding),
                        dilation=tuple(int(v) for v in attrs.dilation))


def _sparsity(weight: np.ndarray) -> float:
    return float(1.0 - np.count_nonzero(weight) / weight.size)
