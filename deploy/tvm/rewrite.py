"""Relax pass: replace ``matmul(x, const)`` and ``conv2d(x, const)`` by our sparse / ternary kernels.

Run after ``FoldConstant`` (a torch ``Linear`` imports as ``matmul(x, permute_dims(const))``).
For each float32 constant weight the decision of :func:`choose_kernel` is applied:

* ``matmul(x[..., K], C[K, N])``: weight ``W = C.T``; ``x`` is flattened to ``[M, K]``, the kernel
  gives ``[M, N]``, which is reshaped back.
* ``conv2d(x, W[O, C, KH, KW])`` (NCHW, groups 1): ``im2col`` to ``[N*Ho*Wo, C*KH*KW]``, the
  kernel with ``W.reshape(O, -1)``, then reshape to ``[N, Ho, Wo, O]`` and transpose to NCHW.

Dense layers are left untouched for TVM's normal pipeline. Every weight considered produces one
:class:`LayerReport`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deploy.tvm.breakeven import BreakevenTable
from deploy.tvm.kernel_calls import emit_bsr_matmul, emit_csr_matmul, emit_ternary_matmul
from deploy.tvm.kernel_choice import KernelChoice, choose_kernel
from deploy.tvm.kernels.im2col import ConvGeometry, im2col_func

_EMITTERS = {"sparse-bsr": emit_bsr_matmul, "sparse-csr": emit_csr_matmul, "ternary": emit_ternary_matmul}


@dataclass(frozen=True)
class LayerReport:
    """What the compile did with one constant weight."""

    name: str
    op: str
    weight_shape: tuple[int, ...]
    batch: int
    choice: KernelChoice

    def to_dict(self) -> dict:
        return {"name": self.name, "op": self.op, "weight_shape": list(self.weight_shape),
                "batch": self.batch, **self.choice.to_dict()}


@dataclass(frozen=True)
class RewriteOptions:
    """Inputs of the decision: break-even table, optional fixed threshold, layout hints.

    ``disabled_reason`` set: nothing is rewritten, every weight is reported dense with that reason
    (targets whose schedule has no sparse kernels).
    """

    table: BreakevenTable | None
    sparse_threshold: float | None
    hints: tuple[dict, ...]
    disabled_reason: str | None = None


def rewrite_sparse_layers(mod, *, options: RewriteOptions):
    """Apply the rewrite to every Relax function of ``mod``.

    Returns:
        ``(new_module, [LayerReport, ...])``.
    """
    from tvm import relax

    rewriter = _make_rewriter(mod, options)
    for gvar, func in mod.functions_items():
        if isinstance(func, relax.Function):
            rewriter.builder_.update_func(gvar, rewriter.visit_expr(func))
    return rewriter.builder_.get(), list(rewriter.reports)


def _make_rewriter(mod, options: RewriteOptions):
    from tvm import relax
    from tvm.relax.expr_functor import PyExprMutator, mutator

    @mutator
    class SparseLayerRewriter(PyExprMutator):
        """Mutator that swaps eligible matmul / conv2d calls for ``call_tir`` of our kernels."""

        def __init__(self, module):
            super().__init__(module)
            self.reports = []

        def visit_call_(self, call):
            call = super().visit_call_(call)
            name = getattr(call.op, "name", "")
            if name == "relax.matmul" and _is_matmul_candidate(call):
                return self._rewrite_matmul(call)
            if name == "relax.nn.conv2d" and _is_conv_candidate(call):
                return self._rewrite_conv(call)
            return call

        def _rewrite_matmul(self, call):
            x, const = call.args
            weight = np.ascontiguousarray(const.value.numpy().T)
            shape = [int(s) for s in x.ty.shape]
            batch = int(np.prod(shape[:-1]))
            decision = self._decide(weight, batch, "matmul", weight.shape)
            if decision is None:
                return call
            if len(shape) > 2:
                x = self.builder_.emit(relax.op.reshape(x, (batch, shape[-1])))
            out = self._emit_kernel(x, weight, batch, *decision)
            if len(shape) == 2:
                return out
            return relax.op.reshape(self.builder_.emit(out), shape[:-1] + [weight.shape[0]])

        def _rewrite_conv(self, call):
            x, const = call.args
            weight4d = const.value.numpy()
            geometry = _conv_geometry(call, x, weight4d)
            weight = np.ascontiguousarray(weight4d.reshape(weight4d.shape[0], -1))
            decision = self._decide(weight, geometry.gemm_rows, "conv2d", weight4d.shape)
            if decision is None:
                return call
            gvar = self.builder_.add_func(im2col_func(geometry=geometry), f"im2col_{decision[2]}")
            cols = self.builder_.emit(relax.call_tir(
                gvar, [x], relax.TensorType((geometry.gemm_rows, geometry.gemm_depth), "float32")))
            gemm = self.builder_.emit(self._emit_kernel(cols, weight, geometry.gemm_rows, *decision))
            nhwc = self.builder_.emit(relax.op.reshape(
                gemm, (geometry.batch, geometry.out_height, geometry.out_width, weight.shape[0])))
            return relax.op.permute_dims(nhwc, [0, 3, 1, 2])

        def _decide(self, weight, batch, op, weight_shape):
            if options.disabled_reason is not None:
                sparsity = float(1.0 - np.count_nonzero(weight) / weight.size)
                choice, arrays = KernelChoice("dense", 1, sparsity, None, None, options.disabled_reason), None
            else:
                choice, arrays = choose_kernel(weight, batch=batch, table=options.table,
                                               sparse_threshold=options.sparse_threshold,
                                               hint=_match_hint(options.hints, weight_shape, weight))
            name = f"{op}_{len(self.reports)}"
            self.reports.append(LayerReport(name, op, tuple(int(v) for v in weight_shape), batch, choice))
            return None if arrays is None else (choice, arrays, name)

        def _emit_kernel(self, x, weight, batch, choice, arrays, name):
            return _EMITTERS[choice.kernel](self.builder_, x, arrays, batch=batch,
                                            in_features=weight.shape[1], out_features=weight.shape[0],
                                            name=f"{choice.kernel.replace('-', '_')}_{name}")

    return SparseLayerRewriter(mod)


def _is_constant_f32(expr, ndim: int) -> bool:
    from tvm.ir.expr import GenericConst

    return (isinstance(expr, GenericConst) and expr.value.dtype == "float32"
            and len(expr.value.shape) == ndim)


def _has_static_f32_shape(expr, min_ndim: int) -> bool:
    ty = getattr(expr, "ty", None)
    shape = getattr(ty, "shape", None)
    if shape is None or getattr(ty, "dtype", None) != "float32" or ty.ndim < min_ndim:
        return False
    return all(isinstance(getattr(dim, "value", None), int) for dim in shape)


def _is_matmul_candidate(call) -> bool:
    return _is_constant_f32(call.args[1], 2) and _has_static_f32_shape(call.args[0], 2)


def _is_conv_candidate(call) -> bool:
    attrs = call.attrs
    return (_is_constant_f32(call.args[1], 4) and _has_static_f32_shape(call.args[0], 4)
            and int(attrs.groups) == 1 and attrs.data_layout == "NCHW" and attrs.kernel_layout == "OIHW"
            and attrs.out_layout == "NCHW" and len(call.args[0].ty.shape) == 4)


def _conv_geometry(call, x, weight4d: np.ndarray) -> ConvGeometry:
    attrs = call.attrs
    batch, channels, height, width = (int(v) for v in x.ty.shape)
    return ConvGeometry(batch=batch, channels=channels, height=height, width=width,
                        kernel_h=int(weight4d.shape[2]), kernel_w=int(weight4d.shape[3]),
                        stride=tuple(int(v) for v in attrs.strides),
                        padding=tuple(int(v) for v in attrs.padding),
                        dilation=tuple(int(v) for v in attrs.dilation))


def _match_hint(hints: tuple[dict, ...], weight_shape: tuple[int, ...], weight: np.ndarray) -> dict | None:
    """The export-stage layout record of this weight, matched by shape and non-zero count.

    A 2-D record may list the weight as ``[out, in]`` (Gemm) or ``[in, out]`` (MatMul).
    """
    nnz = int(np.count_nonzero(weight))
    shapes = [list(weight_shape), list(weight_shape)[::-1]] if len(weight_shape) == 2 else [list(weight_shape)]
    matches = [h for h in hints if list(h.get("shape", [])) in shapes and int(h.get("nnz", -1)) == nnz]
    return matches[0] if len(matches) == 1 else None
