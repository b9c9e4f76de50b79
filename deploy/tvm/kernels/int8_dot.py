"""Four-way int8 dot products in int32 lanes, and the float epilogue of the int8 (QDQ) kernels.

Both int8 kernels carry four 8-bit values per int32 lane ("quads"): an activation quad holds four
consecutive input channels of one pixel as unsigned bytes, a weight quad the matching four signed
weights of one output channel. One dot step is, per lane ``l``::

    acc[l] += sum_{t < 4} a[l].byte(t) * b[l].byte(t)        (a: u8, b: s8, sums in int32)

which is one ``vpdpbusd`` on AVX-512 VNNI (Intel's VNNI, "Intel 64 and IA-32 Architectures
Optimization Reference Manual", chapter "Intel DL Boost"; 64 multiply-adds per instruction against
16 for an fp32 FMA). It is called as the LLVM intrinsic ``llvm.x86.avx512.vpdpbusd.512``, the one
TVM's own tensor intrinsic ``VNNI_DOT_16x4_INTRIN`` (``tvm/s_tir/tensor_intrin/x86.py``) inserts when
a schedule tensorizes a 16x4 u8 x s8 reduction; our kernels are written loop by loop, so they call
it directly. Targets without VNNI get the same sum from byte shifts and int32 multiply-adds (correct
everywhere, 4-8x more instructions).

Activations are signed (QDQ with int8 activations, zero point ``z``): the quantize step stores
``u = q + 128`` so that ``vpdpbusd``'s unsigned operand holds them, and the kernels start every
accumulator at the per-output-channel compensation ``-(128 + z) * sum_k W[o, k]``, which removes
both the offset and the zero point: ``sum_k (u_k - 128 - z) W[o, k] = sum_k (q_k - z) W[o, k]``.

The epilogue is a list of float steps applied in vector registers before the only store, the QDQ
graph's own operations in order: ``("qdq", scale, zero_point)`` (QuantizeLinear then
DequantizeLinear: ``(clamp(round_half_even(v / s) + z, -128, 127) - z) * s``, as onnxruntime
computes it), ``("relu",)``, ``("clip", lo, hi)`` and ``("residual",)`` (add the residual operand).
A requantize that repeats the previous one with only ReLUs between is dropped (exact: ReLU keeps
values on the grid); each requantize divides like QuantizeLinear (a reciprocal multiply would round
differently at ties).
"""

from __future__ import annotations

import math

DOT_FLAVOURS = ("vnni", "generic")
VNNI_INTRINSIC = "llvm.x86.avx512.vpdpbusd.512"
QUAD_OFFSET = 128  # u = q + 128 for int8 activations


def dot_function(flavour: str, lanes: int = 16):
    """``dot(acc, a, b) -> acc + sum_t u8(a.byte t) * s8(b.byte t)`` on ``int32 x lanes`` vectors."""
    from tvm.script import tirx as T

    if flavour not in DOT_FLAVOURS:
        raise ValueError(f"unknown int8 dot flavour {flavour!r}; known: {', '.join(DOT_FLAVOURS)}")
    vtype = f"int32x{lanes}"

    if flavour == "vnni":
        if lanes != 16:
            raise ValueError(f"vpdpbusd works on 16 int32 lanes, not {lanes}")

        def vnni(acc, a, b):
            # LLVM 19+ declares the byte operands as <64 x i8> (older releases: <16 x i32>)
            return T.call_llvm_pure_intrin(vtype, VNNI_INTRINSIC, acc, T.reinterpret("int8x64", a), T.reinterpret("int8x64", b))

        return vnni

    def const(value):
        return T.Broadcast(T.int32(value), lanes)

    def generic(acc, a, b):
        total = acc
        for t in range(4):
            unsigned = T.bitwise_and(T.shift_right(a, const(8 * t)), const(255))
            signed = T.shift_right(T.shift_left(b, const(24 - 8 * t)), const(24))
            total = total + unsigned * signed
        return total

    return generic


def host_dot_flavour(vector_floats: int) -> str:
    """``"vnni"`` when kernels are built for this machine's AVX-512 (16 float lanes) and it has
    AVX-512 VNNI, else ``"generic"`` (every other preset is a cross target without it)."""
    if vector_floats < 16:
        return "generic"
    import tvm
    from tvm.target import codegen

    host = tvm.target.Target({"kind": "llvm", "mcpu": str(codegen.llvm_get_system_cpu())})
    return "vnni" if codegen.target_has_features(["avx512vnni"], host) else "generic"


def simplified_steps(steps: tuple) -> tuple:
    """``steps`` without a requantize that repeats the previous one with only ReLUs between: ReLU maps
    the ``(s, z)`` grid into itself (0 is the code ``z``), so the second rounding changes nothing."""
    kept, grid = [], None
    for step in steps:
        if step[0] == "qdq" and grid == (step[1], step[2]):
            continue
        if step[0] != "relu":
            grid = (step[1], step[2]) if step[0] == "qdq" else None
        kept.append(step)
    return tuple(kept)


def apply_steps(value, steps: tuple, lanes: int, residual=None):
    """``value`` (float32 x lanes) after the epilogue ``steps`` (see the module docstring)."""
    from tvm.script import tirx as T

    steps = simplified_steps(steps)
    def const(number):
        return T.Broadcast(T.float32(number), lanes) if lanes > 1 else T.float32(number)

    for step in steps:
        kind = step[0]
        if kind == "qdq":
            scale, zero = float(step[1]), float(step[2])
            level = T.nearbyint(value / const(scale)) + const(zero)  # divide as QuantizeLinear does: the same ties
            value = (T.min(T.max(level, const(-128.0)), const(127.0)) - const(zero)) * const(scale)
        elif kind == "relu":
            value = T.max(value, const(0.0))
        elif kind == "clip":
            low, high = float(step[1]), float(step[2])
            value = value if math.isinf(low) else T.max(value, const(low))
            value = value if math.isinf(high) else T.min(value, const(high))
        elif kind == "residual":
            value = value + residual
        else:
            raise ValueError(f"unknown epilogue step {step!r}")
    return value
