"""Single-layer modules and timers: the measuring tools behind the break-even table and benchmarks.

A layer is ``y[M, N] = x[M, K] @ W.T``. :func:`layer_module` builds it as TVM dense (``matmul``
with a constant, through TVM's normal pipeline, exactly what the compile does for a dense layer)
or as one of our kernels; :func:`time_layer` compiles it for the ``host`` preset and returns the median
seconds over ``repeat`` runs of TVM's ``time_evaluator``. :func:`random_block_sparse` makes a weight
with an exact fraction of all-zero ``R x 1`` blocks.
"""

from __future__ import annotations

import numpy as np

from deploy.tvm.kernel_calls import emit_bsr_matmul, emit_csr_matmul, emit_ternary_matmul
from deploy.tvm.targets import build_tvm_target, get_target
from deploy.tvm.weight_formats import CSR_UNROLL_DEFAULT, detect_ternary, encode_bsr, encode_csr

LAYER_KERNELS = ("dense", "sparse-bsr", "sparse-csr", "ternary")


def random_block_sparse(*, out_features: int, in_features: int, block_rows: int, sparsity_ratio: float,
                        seed: int = 0) -> np.ndarray:
    """Gaussian ``[N, K]`` weight whose ``block_rows x 1`` blocks are zero with exactly this ratio."""
    rng = np.random.default_rng(seed)
    n_blocks = (out_features // block_rows) * in_features
    keep = np.zeros(n_blocks, dtype=bool)
    keep[rng.choice(n_blocks, size=int(round((1.0 - sparsity_ratio) * n_blocks)), replace=False)] = True
    mask = np.repeat(keep.reshape(out_features // block_rows, 1, in_features), block_rows, axis=1)
    weight = rng.standard_normal((out_features, in_features)).astype(np.float32)
    return weight * mask.reshape(out_features, in_features)


def layer_module(weight: np.ndarray, *, batch: int, kernel: str, block_rows: int = 1):
    """IRModule with ``main(x[batch, K]) -> x @ weight.T`` computed by ``kernel``."""
    from tvm import relax

    if kernel not in LAYER_KERNELS:
        raise ValueError(f"unknown layer kernel {kernel!r}; allowed: {', '.join(LAYER_KERNELS)}")
    out_features, in_features = weight.shape
    builder = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((batch, in_features), "float32"))
    sizes = {"batch": batch, "in_features": in_features, "out_features": out_features, "name": "layer"}
    with builder.function("main", [x]):
        with builder.dataflow():
            if kernel == "dense":
                call = relax.op.matmul(x, relax.const(np.ascontiguousarray(weight.T)))
            else:
                call = _EMIT[kernel](builder, x, _encode(weight, kernel, block_rows), **sizes)
            output = builder.emit_output(builder.emit(call))
        builder.emit_func_output(output)
    return builder.get()


def time_layer(mod, *, batch: int, in_features: int, repeat: int = 5, min_repeat_ms: int = 20) -> float:
    """Compile ``mod`` for the host and return the median seconds of one ``main`` call."""
    import tvm
    from tvm import relax

    executable = tvm.compile(mod, target=host_target())
    vm = relax.VirtualMachine(executable, tvm.cpu())
    x = tvm.runtime.tensor(np.random.default_rng(0).standard_normal((batch, in_features)).astype(np.float32))
    timer = vm.time_evaluator("main", tvm.cpu(), number=1, repeat=repeat, min_repeat_ms=min_repeat_ms)
    return float(np.median(timer(x).results))


def run_layer(mod, x: np.ndarray) -> np.ndarray:
    """Compile ``mod`` for the host and return ``main(x)`` (for numerics checks)."""
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.compile(mod, target=host_target()), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def host_target():
    """TVM target of the ``host`` preset (LLVM for this machine's CPU)."""
    return build_tvm_target(get_target("host"))


def _encode(weight: np.ndarray, kernel: str, block_rows: int):
    if kernel == "sparse-bsr":
        return encode_bsr(weight, block_rows=block_rows)
    if kernel == "sparse-csr":
        return encode_csr(weight, unroll=CSR_UNROLL_DEFAULT)
    ternary = detect_ternary(weight)
    if ternary is None:
        raise ValueError("weight is not ternary (one positive and one negative value per row)")
    return ternary


_EMIT = {"sparse-bsr": emit_bsr_matmul, "sparse-csr": emit_csr_matmul, "ternary": emit_ternary_matmul}
