"""The QDQ epilogue steps as one elementwise kernel, for the operators no int8 or float kernel absorbs.

Between layers a QDQ graph keeps short elementwise runs: ``QuantizeLinear -> DequantizeLinear ->
Clip -> QuantizeLinear -> DequantizeLinear`` after a depthwise convolution, a fake-quantized pooling
result. Each operator is one pass over the tensor; this kernel applies the whole run
(:func:`deploy.tvm.kernels.int8_dot.apply_steps`: requantize, ReLU, clip) in vector registers in
one pass: ``y = steps(x)``, 16 lanes at a time, the remainder one by one.
"""

from __future__ import annotations

from deploy.tvm.kernels.int8_dot import apply_steps

STEP_LANES = 16


def qdq_steps_func(*, shape: tuple[int, ...], steps: tuple):
    """Build ``x (float32, shape) -> y (float32, shape)``."""
    from tvm.script import tirx as T

    size = 1
    for extent in shape:
        size *= int(extent)
    full, rest, lanes = size // STEP_LANES, size % STEP_LANES, STEP_LANES
    dims = [int(extent) for extent in shape]

    @T.prim_func(private=True, check_well_formed=False)
    def qdq_steps(x: T.Buffer(dims, "float32"), y: T.Buffer(dims, "float32")):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        with T.sblock("root"):  # Relax's reshape detection inspects every single-input call_tir callee
            x_flat = T.decl_buffer((size,), "float32", data=x.data)
            y_flat = T.decl_buffer((size,), "float32", data=y.data)
            for i in T.serial(full):
                y_flat[T.Ramp(i * lanes, 1, lanes)] = apply_steps(x_flat[T.Ramp(i * lanes, 1, lanes)], steps, lanes)
            for i in T.serial(rest):
                y_flat[full * lanes + i] = apply_steps(x_flat[full * lanes + i], steps, 1)

    return qdq_steps
