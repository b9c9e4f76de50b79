"""The machinery of a fused kernel: :class:`FusionRule` ``(pattern, weight encoder, PrimFunc
builder)``, the rewriter that applies a list of rules to a Relax module, and the Relax helpers the
rules share (adding a PrimFunc, the direct kernels' phase planes, flattening a linear layer's rows,
a convolution's geometry, bias and call).

A rule's pattern is written in TVM's dataflow pattern language (``tvm.relax.dpl``) and matched
against the anchor call of each chain :mod:`deploy.tvm.fusion_chains` finds (the conv2d / matmul
with a constant weight; its bias, residual and activation are the chain's epilogue). The list of
rules is :data:`deploy.tvm.fusion.FUSION_RULES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from tvm import relax
from tvm.relax.dpl import DFPattern, is_const, is_op, wildcard
from tvm.relax.expr_functor import PyExprMutator, mutator

from deploy.tvm.fusion_chains import Chain, find_chains
from deploy.tvm.kernels.conv_geometry import ConvGeometry
from deploy.tvm.kernels.direct_conv import phase_pad_func
from deploy.tvm.layer_report import KernelChoice, LayerReport

VECTOR_CHOICES = (16, 8, 4, 2, 1)
PARALLEL_MIN_MACS = 1_000_000
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
    (an operand as rewritten), ``vector_floats``, ``reports`` (the layer reports so far),
    ``position`` (the chain's index among all the function's chains, in program order).
    """

    def __init__(self, module, rules, vector_floats: int, reports: list):
        super().__init__(module)
        self.rules, self.vector_floats, self.reports = tuple(rules), vector_floats, reports
        self.chains: dict = {}
        self.absorbed: set = set()
        self.position = 0

    def plan(self, func) -> None:
        """Pick, for each chain of ``func``, the first rule that takes it."""
        chains, _ = find_chains(func)
        self.chains, self.absorbed = {}, set()
        for position, (end_var, chain) in enumerate(chains.items()):
            for rule in self.rules:
                weights = rule.take(chain, self.vector_floats)
                if weights is not None:
                    self.chains[end_var] = (chain, rule, weights, position)
                    self.absorbed.update(chain.absorbed)
                    break

    def visit_var_binding_(self, binding):
        var = binding.var
        if var in self.absorbed:
            return
        if var not in self.chains:
            super().visit_var_binding_(binding)
            return
        chain, rule, weights, self.position = self.chains[var]
        call = rule.build(self, chain, weights)
        emit = self.builder_.emit if isinstance(var, relax.DataflowVar) else self.builder_.emit_output
        self.set_var_remap(var, emit(call, name_hint=var.name))


def rewrite_relax_functions(mod, rewriter):
    """``mod`` with each Relax function planned (``rewriter.plan``) and rewritten by ``rewriter``."""
    for gvar, func in mod.functions_items():
        if isinstance(func, relax.Function):
            rewriter.plan(func)
            rewriter.builder_.update_func(gvar, rewriter.visit_expr(func))
    return rewriter.builder_.get()


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
    geometry = conv_geometry(chain.op, weight)
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


def conv_geometry(conv, weight: np.ndarray) -> ConvGeometry:
    attrs = conv.attrs
    batch, channels, height, width = (int(v) for v in conv.args[0].ty.shape)
    return ConvGeometry(batch=batch, channels=channels, height=height, width=width, out_channels=int(weight.shape[0]),
                        kernel_h=int(weight.shape[2]), kernel_w=int(weight.shape[3]),
                        stride=tuple(int(v) for v in attrs.strides), padding=tuple(int(v) for v in attrs.padding),
                        dilation=tuple(int(v) for v in attrs.dilation))


def sparsity(weight: np.ndarray) -> float:
    return float(1.0 - np.count_nonzero(weight) / weight.size)
