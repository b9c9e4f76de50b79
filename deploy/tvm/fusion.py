"""Relax pass: every ``conv2d`` and ``matmul`` with a constant weight becomes one fused kernel call.

A chain ``conv2d(x, W) [-> add(., bias)] [-> add(., residual)] [-> relu | clip | sigmoid | silu |
hardswish]`` in which every intermediate value has exactly one use becomes::

    xq = call_tir(phase_pad, x)                 (a view for an unpadded stride-1 convolution)
    y  = call_tir(tiled_conv | direct_conv | depthwise_conv, xq, weights..., bias, residual)

and ``matmul(x, C) [-> add(., bias)] [-> activation]`` becomes ``call_tir(block_linear, x, ...)``.
Clip also arrives as ``maximum`` / ``minimum`` calls against scalar constants (ONNX ``Clip`` with
constant bounds); those fold too. The gated activations use the chain's value twice,
``multiply(y, gate(y))``: SiLU / swish with ``gate = sigmoid`` (ONNX ``Sigmoid`` + ``Mul``) and
HardSwish with ``gate = clip(a * y + b, 0, 1)`` (as the ONNX import writes ``HardSwish``, or
``clip(y + 3, 0, 6) / 6``); they fold when ``y`` has exactly those two uses and every gate value
one, and the kernels compute the sigmoid as a rational approximation in vector registers. Eligible
convolutions: NCHW input with a static float32 shape, a constant float32 OIHW weight, ``groups == 1``
or depthwise (``groups == channels == out_channels``).
Eligible matmuls: a static float32 input of rank >= 2 (leading dimensions flattened into rows) and a
constant 2-D float32 weight.

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

import math
from dataclasses import dataclass, field

import numpy as np

from deploy.tvm.conv_tiles import choose_conv_tile
from deploy.tvm.conv_weights import encode_conv_taps
from deploy.tvm.layer_report import KernelChoice, LayerReport
from deploy.tvm.kernels.block_linear import block_linear_func
from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.direct_conv import ConvTile, Epilogue, depthwise_conv_func, direct_conv_func, phase_pad_func
from deploy.tvm.kernels.flat_depthwise import flat_depthwise_fits, flat_depthwise_func
from deploy.tvm.kernels.tiled_conv import tiled_conv_func
from deploy.tvm.linear_weights import LINEAR_UNROLL, best_linear_block_rows, encode_linear_blocks

VECTOR_CHOICES = (16, 8, 4, 2, 1)
PARALLEL_MIN_MACS = 1_000_000
FLAT_DEPTHWISE_VECTORS = (4, 3, 2, 1)  # pixel vectors per depthwise tile, the most that fit the image
FLAT_DEPTHWISE_MIN_LANES = 16  # masked loads need mask registers (AVX-512); NEON / AVX2 keep the pad copy


@dataclass
class Chain:
    """One convolution or matmul and the epilogue operations folded into it."""

    op: object  # the conv2d / matmul call
    end_var: object  # the var whose binding the fused call replaces
    bias: np.ndarray | None = None
    residual: object = None
    activation: str = "none"
    clip: tuple[float, float] = (0.0, math.inf)
    gate: tuple[float, float] = (1.0 / 6.0, 0.5)  # hardswish's clip(scale * y + offset, 0, 1)
    absorbed: list = field(default_factory=list)  # vars of the folded intermediate bindings

    @property
    def is_conv(self) -> bool:
        return self.op.op.name == "relax.nn.conv2d"

    @property
    def out_features(self) -> int:
        weight = self.op.args[1].value
        return int(weight.shape[0] if self.is_conv else weight.shape[1])

    def epilogue(self) -> Epilogue:
        return Epilogue(residual=self.residual is not None, activation=self.activation,
                        clip_min=self.clip[0], clip_max=self.clip[1], gate_scale=self.gate[0], gate_offset=self.gate[1])

    def describe(self) -> str:
        parts = ["bias"] + (["residual add"] if self.residual is not None else [])
        if self.activation == "clip":
            parts.append(f"clip [{self.clip[0]:g}, {self.clip[1]:g}]")
        elif self.activation == "hardswish":
            parts.append(f"hardswish (x * clip({self.gate[0]:.6g} x + {self.gate[1]:g}, 0, 1))")
        elif self.activation != "none":
            parts.append(self.activation)
        return "fused " + " + ".join(parts)


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
            self.chains, self.absorbed = _find_chains(func)

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
                if _is_eligible_conv(value) or _is_eligible_matmul(value):
                    weight = value.args[1].value.numpy()
                    op = "conv2d" if value.op.name == "relax.nn.conv2d" else "matmul"
                    shape = weight.shape if op == "conv2d" else weight.T.shape
                    reports.append(LayerReport(f"{op}_{len(reports)}", op, tuple(int(v) for v in shape), 1,
                                               KernelChoice("dense", 1, _sparsity(weight), reason)))
    return reports


def _find_chains(func) -> tuple[dict, set]:
    """Chains keyed by their end var, and the set of vars folded into them."""
    from tvm import relax

    bindings = [b for block in func.body.blocks for b in block.bindings if isinstance(b, relax.VarBinding)]
    uses, user_of = _uses(func, bindings)
    value_of = {b.var: b.value for b in bindings}
    chains: dict = {}
    absorbed: set = set()
    for binding in bindings:
        if not (_is_eligible_conv(binding.value) or _is_eligible_matmul(binding.value)):
            continue
        chain = Chain(op=binding.value, end_var=binding.var)
        _extend(chain, value_of, user_of, uses, claimed=set(chains) | absorbed)
        chains[chain.end_var] = chain
        absorbed.update(chain.absorbed)
    return chains, absorbed


def _extend(chain: Chain, value_of: dict, user_of: dict, uses: dict, *, claimed: set) -> None:
    """Fold bias add, residual add and activation into ``chain`` while each value has one use.

    A binding already folded into an earlier chain (``claimed``) ends this one.
    """
    while True:
        if chain.activation == "none" and _fold_gated(chain, value_of, user_of, uses, claimed=claimed):
            return
        if uses.get(chain.end_var, 0) != 1 or len(user_of.get(chain.end_var, [])) != 1:
            return
        user = user_of[chain.end_var][0]
        if user in claimed:
            return
        step = _fold(chain, value_of[user])
        if step is None:
            return
        chain.absorbed.append(chain.end_var)
        chain.end_var = user
        if step == "final":
            return


def _fold(chain: Chain, value) -> str | None:
    """Fold ``value`` (the only user of the chain's end) into the chain: ``"more"``, ``"final"`` or ``None``."""
    from tvm import relax
    from tvm.ir.expr import GenericConst

    op = getattr(getattr(value, "op", None), "name", "")
    current = chain.end_var
    if op == "relax.add" and chain.activation == "none":
        other = value.args[1] if value.args[0].same_as(current) else value.args[0]
        bias = _bias_vector(other, chain.out_features, conv=chain.is_conv) if isinstance(other, GenericConst) else None
        if bias is not None and chain.bias is None and chain.residual is None:
            chain.bias = bias
            return "more"
        if chain.is_conv and chain.residual is None and isinstance(other, relax.Var) and _same_shape(other, current):
            chain.residual = other
            return "more"
        return None
    if op in ("relax.nn.relu", "relax.sigmoid", "relax.nn.silu") and chain.activation == "none":
        chain.activation = {"relax.nn.relu": "relu", "relax.sigmoid": "sigmoid", "relax.nn.silu": "silu"}[op]
        return "final"
    if op == "relax.clip" and chain.activation == "none" and _clip_bounds(value) is not None:
        chain.activation, chain.clip = "clip", _clip_bounds(value)
        return "final"
    return _fold_clip_call(chain, value)


def _fold_gated(chain: Chain, value_of: dict, user_of: dict, uses: dict, *, claimed: set) -> bool:
    """Fold ``multiply(y, gate(y))`` (either operand order) into the chain ending at ``y``.

    ``y`` must have exactly two uses, the gate's first binding and the multiply, and each gate
    value exactly one. The gate is ``sigmoid`` (SiLU) or a hardswish gate (see :func:`_hard_gate`).
    """
    end = chain.end_var
    users = user_of.get(end, [])
    if uses.get(end, 0) != 2 or len(users) != 2 or any(u in claimed for u in users):
        return False
    first, product = users
    if not _is_product_of(value_of[product], end):
        return False
    path, current = [], first
    while True:  # the gate: single-use bindings from ``first`` to the multiply's other operand
        path.append(current)
        if uses.get(current, 0) != 1 or len(user_of.get(current, [])) != 1 or len(path) > 3:
            return False
        nxt = user_of[current][0]
        if nxt.same_as(product):
            break
        if nxt in claimed:
            return False
        current = nxt
    gate_operand = value_of[product].args[1] if value_of[product].args[0].same_as(end) else value_of[product].args[0]
    if not gate_operand.same_as(path[-1]):
        return False
    activation = _gate_activation([value_of[v] for v in path], end)
    if activation is None:
        return False
    chain.activation, chain.gate = activation
    chain.absorbed.extend([end, *path])
    chain.end_var = product
    return True


def _is_product_of(value, var) -> bool:
    """``value`` is ``multiply(var, other)`` or ``multiply(other, var)`` with ``other`` not ``var``."""
    if getattr(getattr(value, "op", None), "name", "") != "relax.multiply":
        return False
    a, b = value.args
    return a.same_as(var) != b.same_as(var)


def _gate_activation(values: list, end) -> tuple[str, tuple[float, float]] | None:
    """``("silu", _)`` for ``[sigmoid(end)]``, ``("hardswish", (scale, offset))`` for a hard gate."""
    names = [getattr(getattr(v, "op", None), "name", "") for v in values]
    if names == ["relax.sigmoid"] and values[0].args[0].same_as(end):
        return "silu", (1.0 / 6.0, 0.5)
    gate = _hard_gate(values, names, end)
    return ("hardswish", gate) if gate is not None else None


def _hard_gate(values: list, names: list, end) -> tuple[float, float] | None:
    """``(a, b)`` of ``clip(a * end + b, 0, 1)`` written as ``[multiply(a), add(b), clip(0, 1)]``
    (constants in either operand order) or ``[add(3), clip(0, 6), divide(6)]``."""
    if names == ["relax.multiply", "relax.add", "relax.clip"]:
        scale, offset = _scalar_operand(values[0], end), _scalar_operand(values[1], None)
        if scale is not None and offset is not None and _clip_bounds(values[2]) == (0.0, 1.0):
            return scale, offset
    if names == ["relax.add", "relax.clip", "relax.divide"]:
        shift, bounds = _scalar_operand(values[0], end), _clip_bounds(values[1])
        divisor = _scalar_operand(values[2], None, first=True)
        if shift is not None and divisor and bounds is not None and bounds[0] == 0.0 and bounds[1] == divisor:
            return 1.0 / divisor, shift / divisor
    return None


def _scalar_operand(value, var, *, first: bool = False) -> float | None:
    """The scalar constant operand of binary ``value`` whose other operand is ``var`` (any var when
    ``None``; with ``first`` the constant must be the second operand, as for ``divide``)."""
    from tvm import relax
    from tvm.ir.expr import GenericConst

    a, b = value.args
    candidates = [(b, a)] if first else [(b, a), (a, b)]
    for const, other in candidates:
        if isinstance(const, GenericConst) and const.value.numpy().size == 1 and isinstance(other, relax.Var):
            if var is None or other.same_as(var):
                return float(const.value.numpy().reshape(-1)[0])
    return None


def _clip_bounds(value) -> tuple[float, float] | None:
    """The constant ``(min, max)`` of a ``relax.clip`` call (IntImm / FloatImm or PrimValue bounds)."""
    bounds = [_number(a) for a in value.args[1:]]
    return None if None in bounds else (bounds[0], bounds[1])


def _number(expr) -> float | None:
    value = getattr(expr, "value", None)
    value = getattr(value, "value", value)  # a PrimValue wraps the IntImm / FloatImm
    return float(value) if isinstance(value, (int, float)) else None


def _fold_clip_call(chain: Chain, value) -> str | None:
    """ONNX ``Clip`` with constant bounds imports as ``call_tir(maximum | minimum, [x, scalar])``."""
    from tvm.ir.expr import GenericConst

    if getattr(getattr(value, "op", None), "name", "") != "relax.call_tir":
        return None
    callee, args = value.args[0].name_hint, list(value.args[1].fields)
    if len(args) != 2 or not args[0].same_as(chain.end_var) or not isinstance(args[1], GenericConst) or args[1].value.numpy().size != 1:
        return None
    bound = float(args[1].value.numpy().reshape(-1)[0])
    if callee.startswith("maximum") and chain.activation == "none":
        chain.activation, chain.clip = "clip", (bound, math.inf)
        return "more"
    if callee.startswith("minimum") and chain.activation == "clip" and math.isinf(chain.clip[1]):
        chain.clip = (chain.clip[0], bound)
        return "final"
    return None


def _uses(func, bindings) -> tuple[dict, dict]:
    """How often each var is used (the function's result counts) and which bindings use it."""
    from tvm import relax

    counts: dict = {}
    user_of: dict = {}
    for binding in bindings:
        for var in relax.analysis.free_vars(binding.value):
            counts[var] = counts.get(var, 0) + _occurrences(binding.value, var)
            user_of.setdefault(var, []).append(binding.var)
    for var in relax.analysis.free_vars(func.body.body):
        counts[var] = counts.get(var, 0) + 1
    return counts, user_of


def _occurrences(value, var) -> int:
    args = getattr(value, "args", None)
    if args is None:
        return 1
    return max(1, sum(1 for a in args if a.same_as(var)))


def _static_f32(expr, ndim: int) -> bool:
    ty = getattr(expr, "ty", None)
    shape = getattr(ty, "shape", None)
    return (shape is not None and len(shape) == ndim and getattr(ty, "dtype", None) == "float32"
            and all(isinstance(getattr(d, "value", None), int) for d in shape))


def _const_f32(expr, ndim: int) -> bool:
    from tvm.ir.expr import GenericConst

    return isinstance(expr, GenericConst) and expr.value.dtype == "float32" and len(expr.value.shape) == ndim


def _is_eligible_conv(value) -> bool:
    from tvm import relax

    if not isinstance(value, relax.Call) or getattr(value.op, "name", "") != "relax.nn.conv2d":
        return False
    attrs, (x, weight) = value.attrs, value.args
    if not _const_f32(weight, 4) or not _static_f32(x, 4):
        return False
    if attrs.data_layout != "NCHW" or attrs.kernel_layout != "OIHW" or attrs.out_layout != "NCHW":
        return False
    groups, channels, out_channels = int(attrs.groups), int(x.ty.shape[1]), int(weight.value.shape[0])
    return groups == 1 or (groups == channels == out_channels and int(weight.value.shape[1]) == 1)


def _is_eligible_matmul(value) -> bool:
    from tvm import relax

    if not isinstance(value, relax.Call) or getattr(value.op, "name", "") != "relax.matmul":
        return False
    x = value.args[0]
    ndim = len(getattr(getattr(x, "ty", None), "shape", None) or ())
    return _const_f32(value.args[1], 2) and ndim >= 2 and _static_f32(x, ndim)


def _geometry(conv, weight: np.ndarray) -> ConvGeometry:
    attrs = conv.attrs
    batch, channels, height, width = (int(v) for v in conv.args[0].ty.shape)
    return ConvGeometry(batch=batch, channels=channels, height=height, width=width, out_channels=int(weight.shape[0]),
                        kernel_h=int(weight.shape[2]), kernel_w=int(weight.shape[3]),
                        stride=tuple(int(v) for v in attrs.strides), padding=tuple(int(v) for v in attrs.padding),
                        dilation=tuple(int(v) for v in attrs.dilation))


def _bias_vector(const, channels: int, *, conv: bool) -> np.ndarray | None:
    """The per-output vector of a constant that broadcasts along the output channels only."""
    value = const.value.numpy()
    if value.dtype != np.float32 or value.size != channels:
        return None
    expected = [(channels, 1, 1), (1, channels, 1, 1)] if conv else [(channels,), (1, channels)]
    if channels == 1:
        expected += [(1,), ()]
    return np.ascontiguousarray(value.reshape(-1)) if tuple(value.shape) in expected else None


def _same_shape(a, b) -> bool:
    shape_a, shape_b = getattr(a.ty, "shape", None), getattr(b.ty, "shape", None)
    if shape_a is None or shape_b is None or len(shape_a) != len(shape_b):
        return False
    return all(getattr(x, "value", None) is not None and getattr(x, "value", None) == getattr(y, "value", None) for x, y in zip(shape_a, shape_b))


def _sparsity(weight: np.ndarray) -> float:
    return float(1.0 - np.count_nonzero(weight) / weight.size)
