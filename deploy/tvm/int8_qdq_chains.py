"""Which QDQ operator chains become one int8 kernel: ``DequantizeLinear -> Conv | MatMul -> epilogue``.

A QDQ ONNX model (onnxruntime's ``quantize_static(..., QuantFormat.QDQ)``, or our exporter) imports
into Relax as float operators between ``quantize`` / ``dequantize`` pairs; the int8 weights'
``dequantize`` folds into float constants. A chain starts at a ``conv2d`` (``groups == 1``) or
``matmul`` with a constant weight that is symmetric per-channel int8
(:func:`deploy.tvm.quantized_weights.detect_int8`) whose input is ``dequantize(q, s, z)`` of an
int8 tensor with one scale and zero point. It then folds, while each value has one use:

- ``add(., bias)`` (a constant per output channel), first;
- ``quantize(., s, z)`` whose every use is ``dequantize(., s, z)``: an epilogue step ``("qdq", s, z)``;
  the chain's value becomes the first dequantize, the others are *aliases* of it;
- ``relu``, ``clip`` (constant bounds): ``("relu",)`` / ``("clip", lo, hi)``;
- ``add(., other)`` of the same shape (convolutions, once): ``("residual",)``.

The kernel's input is the tensor that was quantized (``q = quantize(x, s, z)`` with the same
``s, z``) when that stays available, else the dequantized value itself (re-quantizing it with
``s, z`` gives ``q`` exactly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from deploy.tvm.fusion_chains import is_eligible_conv, is_eligible_matmul
from deploy.tvm.quantized_weights import Int8Weight, detect_int8

QUANTIZE, DEQUANTIZE = "relax.quantize", "relax.dequantize"


@dataclass
class Int8Chain:
    """One int8 convolution / matmul and its epilogue (see the module docstring)."""

    op: object
    end_var: object
    weight: Int8Weight
    input_scale: float
    input_zero_point: int
    source: object  # the float tensor to quantize-pack: the quantized x, or the dequantize var
    position: int  # index among the function's conv2d / matmul ops with a constant weight
    bias: np.ndarray | None = None
    residual: object = None
    steps: list = field(default_factory=list)
    absorbed: list = field(default_factory=list)
    aliases: list = field(default_factory=list)

    @property
    def is_conv(self) -> bool:
        return self.op.op.name == "relax.nn.conv2d"

    def describe(self) -> str:
        names = {"qdq": "requantize", "relu": "relu", "clip": "clip", "residual": "residual add"}
        return "fused " + " + ".join(["bias"] + [names[step[0]] for step in self.steps])


@dataclass
class QdqTail:
    """A run of requantize / ReLU / clip operators after ``start`` that no kernel absorbs."""

    start: object
    end_var: object
    steps: list = field(default_factory=list)
    absorbed: list = field(default_factory=list)
    aliases: list = field(default_factory=list)
    is_conv: bool = False
    residual: object = None
    bias: object = None


def find_qdq_tails(func, chains: dict) -> dict:
    """Runs of QDQ epilogue operators that start at a value outside ``chains``, keyed by their end
    var; each holds at least one requantize step. Where a tail absorbs the tensor an int8 chain was
    to quantize-pack, the chain packs the tail's result instead."""
    from tvm import relax

    bindings = [b for block in func.body.blocks for b in block.bindings if isinstance(b, relax.VarBinding)]
    value_of = {b.var: b.value for b in bindings}
    uses, users = _uses(func, bindings)
    claimed = {var for chain in chains.values() for var in (*chain.absorbed, *chain.aliases, chain.end_var)}
    tails: dict = {}
    for binding in bindings:
        if binding.var in claimed:
            continue
        tail = QdqTail(start=binding.var, end_var=binding.var)
        _extend(tail, value_of, users, uses, claimed, elementwise=_fold_activation)
        if not any(step[0] == "qdq" for step in tail.steps):
            continue
        tail.absorbed.remove(tail.start)
        tails[tail.end_var] = tail
        claimed.update(tail.absorbed, tail.aliases, [tail.end_var])
    _read_past_absorbed(chains, tails.values())
    return tails


def _fold_activation(chain, name: str, value) -> bool:
    """ReLU and clip only (a tail has no bias or residual)."""
    return name != "relax.add" and _fold_elementwise(chain, name, value)


def find_int8_chains(func) -> dict:
    """Int8 chains of a Relax function keyed by their end var."""
    from tvm import relax

    bindings = [b for block in func.body.blocks for b in block.bindings if isinstance(b, relax.VarBinding)]
    value_of = {b.var: b.value for b in bindings}
    uses, users = _uses(func, bindings)
    chains, claimed, position = {}, set(), -1
    for binding in bindings:
        value = binding.value
        if not (is_eligible_conv(value) or is_eligible_matmul(value)):
            continue
        position += 1
        chain = _start(binding, value_of, position)
        if chain is None or binding.var in claimed:
            continue
        _extend(chain, value_of, users, uses, claimed)
        chains[chain.end_var] = chain
        claimed.update(chain.absorbed, chain.aliases, [chain.end_var])
    _read_past_absorbed(chains, chains.values())
    return chains


def _read_past_absorbed(chains: dict, groups) -> None:
    """A chain whose source var another chain or tail absorbs reads the op's own input instead."""
    absorbed = {var for group in groups for var in group.absorbed}
    for chain in chains.values():
        if chain.source in absorbed:
            chain.source = chain.op.args[0]


def _start(binding, value_of: dict, position: int) -> Int8Chain | None:
    value = binding.value
    conv = value.op.name == "relax.nn.conv2d"
    if conv and int(value.attrs.groups) != 1:
        return None
    data = value.args[0]
    dequantized = value_of.get(data)
    params = _qdq_params(dequantized, DEQUANTIZE)
    if params is None:
        return None
    weight = value.args[1].value.numpy()
    codes = detect_int8(weight if conv else weight.T)
    if codes is None:
        return None
    codes = Int8Weight(codes.codes.reshape(weight.shape if conv else weight.T.shape), codes.scale)
    quantized = value_of.get(dequantized.args[0])
    source = quantized.args[0] if _qdq_params(quantized, QUANTIZE) == params else data
    return Int8Chain(op=value, end_var=binding.var, weight=codes, input_scale=params[0], input_zero_point=params[1],
                     source=source, position=position)


def _extend(chain, value_of: dict, users: dict, uses: dict, claimed: set, *, elementwise=None) -> None:
    elementwise = elementwise or _fold_elementwise
    while uses.get(chain.end_var, 0) == 1 and len(users.get(chain.end_var, [])) == 1:
        user = users[chain.end_var][0]
        if user in claimed:
            return
        value = value_of[user]
        name = getattr(getattr(value, "op", None), "name", "")
        if name == QUANTIZE and _fold_qdq(chain, user, value, value_of, users, uses):
            continue
        if not elementwise(chain, name, value):
            return
        chain.absorbed.append(chain.end_var)
        chain.end_var = user


def _fold_qdq(chain: Int8Chain, user, value, value_of: dict, users: dict, uses: dict) -> bool:
    params = _qdq_params(value, QUANTIZE)
    readers = users.get(user, [])
    if params is None or not readers or uses.get(user, 0) != len(readers):
        return False
    if any(_qdq_params(value_of.get(reader), DEQUANTIZE) != params or not value_of[reader].args[0].same_as(user)
           for reader in readers):
        return False
    chain.steps.append(("qdq", params[0], params[1]))
    chain.absorbed += [chain.end_var, user]
    chain.end_var, chain.aliases = readers[0], chain.aliases + list(readers[1:])
    return True


def _fold_elementwise(chain: Int8Chain, name: str, value) -> bool:
    from tvm import relax
    from tvm.ir.expr import GenericConst

    current = chain.end_var
    if name == "relax.add":
        other = value.args[1] if value.args[0].same_as(current) else value.args[0]
        if isinstance(other, GenericConst) and chain.bias is None and not chain.steps:
            chain.bias = _bias(other.value.numpy(), chain)
            return chain.bias is not None
        if (chain.is_conv and chain.residual is None and isinstance(other, relax.Var)
                and [int(v) for v in other.ty.shape] == [int(v) for v in current.ty.shape]):
            chain.residual = other
            chain.steps.append(("residual",))
            return True
        return False
    if name == "relax.nn.relu":
        chain.steps.append(("relu",))
        return True
    if name == "relax.clip":
        bounds = [_number(arg) for arg in value.args[1:3]]
        if None in bounds:
            return False
        chain.steps.append(("clip", bounds[0], bounds[1]))
        return True
    return _fold_bound_call(chain, name, value)


def _fold_bound_call(chain, name: str, value) -> bool:
    """ONNX ``Clip`` with constant bounds imports as ``call_tir(maximum | minimum, [x, scalar])``."""
    from tvm.ir.expr import GenericConst

    if name != "relax.call_tir":
        return False
    callee, args = value.args[0].name_hint, list(value.args[1].fields)
    if len(args) != 2 or not args[0].same_as(chain.end_var) or not isinstance(args[1], GenericConst) or args[1].value.numpy().size != 1:
        return False
    bound = float(args[1].value.numpy().reshape(-1)[0])
    if callee.startswith("maximum"):
        chain.steps.append(("clip", bound, math.inf))
        return True
    if callee.startswith("minimum"):
        chain.steps.append(("clip", -math.inf, bound))
        return True
    return False


def _bias(array: np.ndarray, chain: Int8Chain) -> np.ndarray | None:
    channels = chain.weight.codes.shape[0]
    if array.size != channels or array.dtype != np.float32:
        return None
    if chain.is_conv and array.shape not in ((1, channels, 1, 1), (channels, 1, 1)):
        return None
    return array.reshape(-1).astype(np.float32)


def _qdq_params(value, op_name: str) -> tuple[float, int] | None:
    """``(scale, zero_point)`` of a per-tensor int8 ``quantize`` / ``dequantize`` call, else ``None``."""
    from tvm.ir.expr import GenericConst

    if getattr(getattr(value, "op", None), "name", "") != op_name or len(value.args) != 3:
        return None
    scale, zero = value.args[1], value.args[2]
    if not (isinstance(scale, GenericConst) and isinstance(zero, GenericConst)):
        return None
    if scale.value.numpy().size != 1 or zero.value.numpy().size != 1 or str(zero.value.dtype) != "int8":
        return None
    if op_name == QUANTIZE and str(value.attrs.out_dtype) != "int8":
        return None
    if op_name == DEQUANTIZE and str(value.attrs.out_dtype) != "float32":
        return None
    return float(scale.value.numpy().reshape(-1)[0]), int(zero.value.numpy().reshape(-1)[0])


def _number(expr) -> float | None:
    for attribute in ("value",):
        inner = getattr(expr, attribute, None)
        inner = getattr(inner, "value", inner)
        if isinstance(inner, (int, float)):
            return float(inner)
    return None


def _uses(func, bindings) -> tuple[dict, dict]:
    """How often each var is used (the function's result counts) and which bindings use it."""
    from tvm import relax

    counts: dict = {}
    users: dict = {}
    for binding in bindings:
        for var in relax.analysis.free_vars(binding.value):
            args = getattr(binding.value, "args", None)
            count = max(1, sum(1 for a in args if a.same_as(var))) if args is not None else 1
            counts[var] = counts.get(var, 0) + count
            users.setdefault(var, []).append(binding.var)
    for var in relax.analysis.free_vars(func.body.body):
        counts[var] = counts.get(var, 0) + 1
    return counts, users

