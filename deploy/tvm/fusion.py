"""Relax pass: every ``conv2d`` and ``matmul`` with a constant weight becomes one fused kernel call.

A kernel is one :class:`~deploy.tvm.fusion_rule.FusionRule` ``(pattern, weight encoder, PrimFunc
builder)``, one file in ``deploy/tvm/rules/``, and one entry in the explicit list
:data:`FUSION_RULES` below: the pattern (TVM's dataflow pattern language, ``tvm.relax.dpl``) says
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

from tvm import relax

from deploy.tvm.fusion_chains import is_eligible_conv, is_eligible_matmul
from deploy.tvm.fusion_rule import (
    PARALLEL_MIN_MACS,
    VECTOR_CHOICES,
    FusionRewriter,
    FusionRule,
    add_kernel,
    emit_phase_planes,
    emit_rows,
    rewrite_relax_functions,
    sparsity,
    unflatten_rows,
)
from deploy.tvm.fusion_rule import conv_geometry as _geometry
from deploy.tvm.layer_report import KernelChoice, LayerReport
from deploy.tvm.rules import block_linear, depthwise_conv, direct_conv

__all__ = [  # the rule machinery re-exported for the quantized pass
    "FUSION_RULES", "PARALLEL_MIN_MACS", "VECTOR_CHOICES", "FusionRule", "_geometry", "add_kernel", "emit_phase_planes",
    "emit_rows", "fuse_layers", "list_weight_layers", "rewrite_relax_functions", "unflatten_rows",
]

FUSION_RULES: tuple[FusionRule, ...] = (
    depthwise_conv.RULE,
    direct_conv.RULE,
    block_linear.RULE,
)


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
                                               KernelChoice("dense", 1, sparsity(weight), reason)))
    return reports
