"""Which operator chains fold into one kernel call: a ``conv2d`` / ``matmul`` with a constant weight
and the epilogue after it.

A chain ``conv2d(x, W) [-> add(., bias)] [-> add(., residual)] [-> relu | clip | sigmoid | silu |
hardswish]`` in which every intermediate value has exactly one use folds; so does ``matmul(x, C)
[-> add(., bias)] [-> activation]``. Clip also arrives as ``maximum`` / ``minimum`` calls against
scalar constants (ONNX ``Clip`` with constant bounds). The gated activations use the chain's value
twice, ``multiply(y, gate(y))``: SiLU / swish with ``gate = sigmoid`` (ONNX ``Sigmoid`` + ``Mul``) and
HardSwish with ``gate = clip(a * y + b, 0, 1)`` (as the ONNX import writes ``HardSwish``, or
``clip(y + 3, 0, 6) / 6``); they fold when ``y`` has exactly those two uses and every gate value one.
Eligible convolutions: NCHW input with a static float32 shape, a constant float32 OIHW weight,
``groups == 1`` or depthwise (``groups == channels == out_channels``). Eligible matmuls: a static
float32 input of rank >= 2 and a constant 2-D float32 weight. :mod:`deploy.tvm.fusion` and
:mod:`deploy.tvm.quantized_fusion` rewrite the chains found here.

The anchor ops and the two hardswish gates are TVM dataflow patterns (``tvm.relax.dpl``; ``add`` and
``multiply`` match either operand order); the walk along single-use bindings that decides how far
a chain reaches stays here, since a pattern matches expressions, not how often a value is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from tvm import relax
from tvm.ir.expr import GenericConst
from tvm.relax.dpl import is_const, is_op, wildcard

from deploy.tvm.kernels.direct_conv import Epilogue

NCHW_CONV2D = is_op("relax.nn.conv2d")(wildcard(), is_const().has_dtype("float32")).has_attr(
    {"data_layout": "NCHW", "kernel_layout": "OIHW", "out_layout": "NCHW"})
CONST_MATMUL = is_op("relax.matmul")(wildcard(), is_const().has_dtype("float32"))
GATED, GATE_SCALE, GATE_OFFSET, GATE_SHIFT, GATE_DIVISOR = wildcard(), is_const(), is_const(), is_const(), is_const()
SCALED_CLIP = is_op("relax.clip")(is_op("relax.add")(is_op("relax.multiply")(GATED, GATE_SCALE), GATE_OFFSET),
                                  wildcard(), wildcard())  # clip(a * y + b, 0, 1)
SHIFTED_CLIP = is_op("relax.clip")(is_op("relax.add")(GATED, GATE_SHIFT), wildcard(), wildcard())
DIVIDED_CLIP = is_op("relax.divide")(SHIFTED_CLIP, GATE_DIVISOR)  # clip(y + 3, 0, 6) / 6
SIGMOID_GATE = is_op("relax.sigmoid")(GATED)


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


def find_chains(func) -> tuple[dict, set]:
    """Chains keyed by their end var, and the set of vars folded into them."""
    bindings = [b for block in func.body.blocks for b in block.bindings if isinstance(b, relax.VarBinding)]
    uses, user_of = _uses(func, bindings)
    value_of = {b.var: b.value for b in bindings}
    chains: dict = {}
    absorbed: set = set()
    for binding in bindings:
        if not (is_eligible_conv(binding.value) or is_eligible_matmul(binding.value)):
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
    activation = _gate_activation(path, [value_of[v] for v in path], end)
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


def _gate_activation(path: list, values: list, end) -> tuple[str, tuple[float, float]] | None:
    """``("silu", _)`` for ``[sigmoid(end)]``, ``("hardswish", (scale, offset))`` for a hard gate; the
    patterns see only the gate's own bindings (``path`` -> ``values``), so ``end`` stays a var."""
    bindings = dict(zip(path, values))
    if len(values) == 1 and _matched(SIGMOID_GATE, values[0], bindings, end) is not None:
        return "silu", (1.0 / 6.0, 0.5)
    gate = _hard_gate(values[-1], bindings, end) if len(values) == 3 else None
    return ("hardswish", gate) if gate is not None else None


def _matched(pattern, value, bindings: dict, end) -> dict | None:
    """What ``pattern`` matched in ``value`` (through ``bindings``), when its ``GATED`` is ``end``."""
    matched = pattern.extract_matched_expr(value, bindings)
    return matched if matched is not None and matched[GATED].same_as(end) else None


def _hard_gate(value, bindings: dict, end) -> tuple[float, float] | None:
    """``(a, b)`` of ``clip(a * end + b, 0, 1)`` (``SCALED_CLIP``) or of ``clip(end + 3, 0, 6) / 6``
    (``DIVIDED_CLIP``: ``a = 1 / 6``, ``b = 3 / 6``), constants scalar."""
    matched = _matched(SCALED_CLIP, value, bindings, end)
    if matched is not None:
        scale, offset = _scalar(matched[GATE_SCALE]), _scalar(matched[GATE_OFFSET])
        if scale is not None and offset is not None and _clip_bounds(value) == (0.0, 1.0):
            return scale, offset
        return None
    matched = _matched(DIVIDED_CLIP, value, bindings, end)
    if matched is not None:
        shift, divisor = _scalar(matched[GATE_SHIFT]), _scalar(matched[GATE_DIVISOR])
        bounds = _clip_bounds(matched[SHIFTED_CLIP])
        if shift is not None and divisor and bounds is not None and bounds[0] == 0.0 and bounds[1] == divisor:
            return 1.0 / divisor, shift / divisor
    return None


def _scalar(const) -> float | None:
    """The value of a one-element constant, else ``None``."""
    value = const.value.numpy()
    return float(value.reshape(-1)[0]) if value.size == 1 else None


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
    return isinstance(expr, GenericConst) and expr.value.dtype == "float32" and len(expr.value.shape) == ndim


def is_eligible_conv(value) -> bool:
    """``NCHW_CONV2D`` with a static float32 input, a 4-D weight and ``groups`` 1 or depthwise."""
    if not isinstance(value, relax.Call) or not NCHW_CONV2D.match(value):
        return False
    attrs, (x, weight) = value.attrs, value.args
    if not _const_f32(weight, 4) or not _static_f32(x, 4):
        return False
    groups, channels, out_channels = int(attrs.groups), int(x.ty.shape[1]), int(weight.value.shape[0])
    return groups == 1 or (groups == channels == out_channels and int(weight.value.shape[1]) == 1)


def is_eligible_matmul(value) -> bool:
    """``CONST_MATMUL`` with a static float32 input of rank >= 2 and a 2-D weight."""
    if not isinstance(value, relax.Call) or not CONST_MATMUL.match(value):
        return False
    x = value.args[0]
    ndim = len(getattr(getattr(x, "ty", None), "shape", None) or ())
    return _const_f32(value.args[1], 2) and ndim >= 2 and _static_f32(x, ndim)


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
