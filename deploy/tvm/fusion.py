"""Relax pass: every ``conv2d`` and ``matmul`` with a constant weight becomes one fused kernel call.

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

import numpy as np

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


def fuse_layers(mod, *, vector_floats: int):
    """Rewrite every eligible conv2d / matmul chain of ``mod``'s Relax functions.

    Args:
        mod: Relax module after ``FoldConstant``.
        vector_floats: float lanes of the target's comfortable vector width (16 with AVX-512, 8 for
            NEON or AVX2 as two registers); pixel tiles and linear blocks are powers of two up to it.

    Returns:
        ``(new_module, [LayerReport, ...])``.
    """
    reports: list[LayerReport] = []
    return rewrite_relax_functions(mod, _make_rewriter(mod, vector_floats, reports)), reports


def rewrite_relax_functions(mod, rewriter):
    """``mod`` with each Relax function planned (``rewriter.plan``) and rewritten by ``rewriter``."""
    from tvm import relax

    for gvar, func in mod.functions_items():
        if isinstance(func, relax.Function):
            rewriter.plan(func)
            rewriter.builder_.update_func(gvar, rewriter.visit_expr(func))
    return rewriter.builder_.get()


def _make_rewriter(mod, vector_floats: int, reports: list):
    from tvm import relax
    from tvm.relax.expr_functor import PyExprMutator, mutator

    @mutator
    class FusionRewriter(PyExprMutator):
        """Replaces the end binding of each chain by the fused kernel call and drops the rest."""

        def __init__(self, module):
            super().__init__(module)
            self.chains: dict = {}
            self.absorbed: set = set()

        def plan(self, func) -> None:
            self.chains, self.absorbed = find_chains(func)

        def visit_var_binding_(self, binding):
            var = binding.var
            if var in self.absorbed:
                return
            chain = self.chains.get(var)
            if chain is None:
                super().visit_var_binding_(binding)
                return
            call = self._conv(chain) if chain.is_conv else self._linear(chain)
            emit = self.builder_.emit if isinstance(var, relax.DataflowVar) else self.builder_.emit_output
            self.set_var_remap(var, emit(call, name_hint=var.name))

        def _conv(self, chain: Chain):
            weight = chain.op.args[1].value.numpy()
            geometry = _geometry(chain.op, weight)
            bias = chain.bias if chain.bias is not None else np.zeros(geometry.out_channels, np.float32)
            vector = next(v for v in VECTOR_CHOICES if v <= vector_floats and geometry.out_width % v == 0)
            name = f"conv2d_{len(reports)}"
            x = self.visit_expr(chain.op.args[0])
            residual = self.visit_expr(chain.residual) if chain.residual is not None else relax.const(np.zeros((1, 1, 1, 1), np.float32))
            if int(chain.op.attrs.groups) > 1:
                func, operands, choice = self._depthwise_conv(chain, weight, geometry, vector, x, name, bias, residual)
            else:
                xq = emit_phase_planes(self.builder_, x, geometry, name)
                func, operands, choice = self._standard_conv(chain, weight, geometry, vector, xq, bias, residual)
            reports.append(LayerReport(name, "conv2d", tuple(int(v) for v in weight.shape), geometry.batch, choice))
            out_type = relax.TensorType((geometry.batch, geometry.out_channels, geometry.out_height, geometry.out_width), "float32")
            return relax.call_tir(add_kernel(self.builder_, func, name), operands, out_type)

        def _depthwise_conv(self, chain: Chain, weight, geometry: ConvGeometry, vector: int, x, name: str, bias, residual):
            """The flat-pixel kernel on the unpadded input where it fits (AVX-512), else pad + the row kernel."""
            macs = geometry.macs // geometry.channels
            parallel = macs >= PARALLEL_MIN_MACS
            weights = relax.const(np.ascontiguousarray(weight.reshape(-1)))
            vectors = next((p for p in FLAT_DEPTHWISE_VECTORS if flat_depthwise_fits(geometry, lanes=vector_floats, vectors=p)), 0)
            if vector_floats >= FLAT_DEPTHWISE_MIN_LANES and vectors:
                func = flat_depthwise_func(geometry=geometry, lanes=vector_floats, vectors=vectors, epilogue=chain.epilogue(),
                                           parallel=parallel)
                how = f"depthwise convolution over flat pixels, {vectors} x {vector_floats} per tile, padding masked (no pad copy)"
                return func, [x, weights, relax.const(bias), residual], KernelChoice(
                    "depthwise-conv", 1, _sparsity(weight), f"{how}; {chain.describe()}")
            func = depthwise_conv_func(geometry=geometry, vector=vector, epilogue=chain.epilogue(), parallel=parallel)
            operands = [emit_phase_planes(self.builder_, x, geometry, name), weights, relax.const(bias), residual]
            return func, operands, KernelChoice("depthwise-conv", 1, _sparsity(weight),
                                                f"depthwise direct convolution, {vector} pixels per vector; {chain.describe()}")

        def _standard_conv(self, chain: Chain, weight, geometry: ConvGeometry, vector: int, xq, bias, residual):
            """groups = 1: the flat-pixel tiled kernel with the cost model's tile, else the row kernel."""
            picked = choose_conv_tile(weight, geometry=geometry, vector_floats=vector_floats)
            lanes = picked.tile.lanes if picked is not None else vector
            rows = picked.tile.block_rows if picked is not None else None
            taps = encode_conv_taps(weight, geometry=geometry, vector=lanes, vector_floats=vector_floats, rows=rows)
            macs = geometry.macs * (1.0 - taps.zero_block_ratio)
            parallel = macs >= PARALLEL_MIN_MACS
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
            operands = [xq, relax.const(taps.data), relax.const(taps.offsets), relax.const(taps.indptr), relax.const(bias), residual]
            return func, operands, KernelChoice("direct-conv", taps.block_rows, taps.zero_block_ratio, how)

        def _linear(self, chain: Chain):
            weight = np.ascontiguousarray(chain.op.args[1].value.numpy().T)
            shape = [int(v) for v in chain.op.args[0].ty.shape]
            batch, out_features = int(np.prod(shape[:-1])), weight.shape[0]
            x = emit_rows(self.builder_, self.visit_expr(chain.op.args[0]), shape)
            bias = chain.bias if chain.bias is not None else np.zeros(out_features, np.float32)
            rows = best_linear_block_rows(weight, vector_floats=vector_floats)
            blocks = encode_linear_blocks(weight, block_rows=rows)
            name = f"matmul_{len(reports)}"
            macs = batch * blocks.nnz_blocks * rows
            func = block_linear_func(batch=batch, in_features=weight.shape[1], out_features=out_features, block_rows=rows,
                                     nnz_blocks=blocks.nnz_blocks, unroll=LINEAR_UNROLL, epilogue=chain.epilogue(),
                                     parallel=macs >= PARALLEL_MIN_MACS)
            padded_bias = np.zeros((len(blocks.indptr) - 1) * rows, np.float32)
            padded_bias[:out_features] = bias
            operands = [x, relax.const(blocks.data), relax.const(blocks.indices), relax.const(blocks.indptr), relax.const(padded_bias)]
            choice = KernelChoice("block-linear", rows, blocks.zero_block_ratio,
                                  f"linear, {blocks.zero_block_ratio:.1%} of the {rows}x1 blocks zero and skipped; {chain.describe()}")
            reports.append(LayerReport(name, "matmul", tuple(int(v) for v in weight.shape), batch, choice))
            call = relax.call_tir(add_kernel(self.builder_, func, name), operands, relax.TensorType((batch, out_features), "float32"))
            return unflatten_rows(self.builder_, call, shape, out_features)

    return FusionRewriter(mod)


def add_kernel(builder, func, name: str):
    """Add the PrimFunc ``func`` to the module being built, exported as ``name``; its global var."""
    return builder.add_func(func.with_attr("global_symbol", name), name)


def emit_phase_planes(builder, x, geometry: ConvGeometry, name: str):
    """The direct kernels' input ``xq`` (:func:`phase_pad_func`): a view of ``x`` for an unpadded
    stride-1 convolution, else one ``phase_pad`` call."""
    from tvm import relax

    if geometry.stride == (1, 1) and not any(geometry.padding) and geometry.dilation == (1, 1):
        return builder.emit(relax.op.reshape(x, (geometry.batch, geometry.phase_size)))  # a view
    out_type = relax.TensorType((geometry.batch, geometry.phase_size), "float32")
    return builder.emit(relax.call_tir(add_kernel(builder, phase_pad_func(geometry=geometry), f"phase_pad_{name}"), [x], out_type))


def emit_rows(builder, x, shape: list[int]):
    """A linear layer's input of ``shape`` as ``(rows, features)`` (leading dimensions flattened)."""
    from tvm import relax

    return x if len(shape) == 2 else builder.emit(relax.op.reshape(x, (int(np.prod(shape[:-1])), shape[-1])))


def unflatten_rows(builder, call, shape: list[int], out_features: int):
    """A ``(rows, out_features)`` kernel call back in the input's leading dimensions."""
    from tvm import relax

    return call if len(shape) == 2 else relax.op.reshape(builder.emit(call), (*shape[:-1], out_features))


def list_weight_layers(mod, *, reason: str) -> list[LayerReport]:
    """Records of the conv2d / matmul layers with constant weights, left to another schedule."""
    from tvm import relax

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
