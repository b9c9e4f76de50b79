"""Per-layer benchmark: our sparse / ternary TVM kernels vs TVM dense vs onnxruntime dense.

For each layer shape ``(N, K, M)`` (weight ``[N, K]``, ``M`` activation rows; ``M > 1`` stands for
a batch or an im2col convolution) and each sparsity, a random weight with exactly that fraction of
all-zero ``R x 1`` blocks is timed three ways in one process, with the same Python-side timer:
our kernel (BSR ``R`` = 16 / 8 / 4, CSR, ternary), TVM dense (``matmul`` through TVM's normal
pipeline, what ``compile_onnx`` does for a dense layer) and onnxruntime dense (a one-node ``MatMul``
model). Timings: median over ``--repeat`` rounds of ``--number`` calls each.

Usage::

    python benchmarks/tvm_kernels.py [--quick] [--out benchmarks/tvm_kernels.md]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.tvm.layer_bench import host_target, layer_module, random_block_sparse  # noqa: E402

SHAPES = ((512, 2048, 1), (256, 1024, 8), (64, 576, 64))
QUICK_SHAPES = ((512, 2048, 1),)
SPARSITIES = (0.5, 0.7, 0.9, 0.95, 0.98)
KERNELS = (("sparse-bsr", 16), ("sparse-bsr", 8), ("sparse-bsr", 4), ("sparse-csr", 1))


def median_seconds(fn, *, number: int, repeat: int) -> float:
    """Median over ``repeat`` rounds of the mean time of ``number`` calls of ``fn``."""
    fn()
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - start) / number)
    return float(np.median(rounds))


def tvm_runner(mod, x: np.ndarray):
    """Zero-argument callable running ``main(x)`` of ``mod`` compiled for the host."""
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.compile(mod, target=host_target()), tvm.cpu())
    main, argument = vm["main"], tvm.runtime.tensor(x)
    return lambda: main(argument)


def ort_runner(weight: np.ndarray, x: np.ndarray):
    """Zero-argument callable running ``x @ weight.T`` as a one-node onnxruntime MatMul model."""
    import onnx
    import onnxruntime
    from onnx import helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "layer",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [x.shape[0], weight.shape[0]])],
        [numpy_helper.from_array(np.ascontiguousarray(weight.T), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return lambda: session.run(None, {"x": x})


def bench_shape(shape, *, sparsities, kernels, number: int, repeat: int) -> list[dict]:
    """All rows of one layer shape: dense baselines once, then each kernel at each sparsity."""
    out_features, in_features, batch = shape
    x = np.random.default_rng(0).standard_normal((batch, in_features)).astype(np.float32)
    dense = random_block_sparse(out_features=out_features, in_features=in_features, block_rows=1, sparsity_ratio=0)
    timing = {"number": number, "repeat": repeat}
    tvm_dense = median_seconds(tvm_runner(layer_module(dense, batch=batch, kernel="dense"), x), **timing)
    rows = []
    for sparsity in sparsities:
        for kernel, block_rows in kernels:
            weight = random_block_sparse(out_features=out_features, in_features=in_features, block_rows=block_rows,
                                         sparsity_ratio=sparsity)
            mod = layer_module(weight, batch=batch, kernel=kernel, block_rows=block_rows)
            rows.append(_row(shape, kernel, block_rows, sparsity, median_seconds(tvm_runner(mod, x), **timing),
                             tvm_dense, median_seconds(ort_runner(weight, x), **timing)))
        ternary = (np.sign(random_block_sparse(out_features=out_features, in_features=in_features, block_rows=1,
                                               sparsity_ratio=sparsity)) * 0.05).astype(np.float32)
        rows.append(_row(shape, "ternary", 1, sparsity, median_seconds(tvm_runner(
            layer_module(ternary, batch=batch, kernel="ternary"), x), **timing), tvm_dense,
            median_seconds(ort_runner(ternary, x), **timing)))
    return rows


def _row(shape, kernel, block_rows, sparsity, ours, tvm_dense, ort_dense) -> dict:
    return {"shape": shape, "kernel": kernel, "block": f"{block_rows}x1", "sparsity": sparsity,
            "ours_ms": ours * 1e3, "tvm_dense_ms": tvm_dense * 1e3, "ort_dense_ms": ort_dense * 1e3}


def to_markdown(rows: list[dict], *, command: str, seconds: float) -> str:
    """Markdown report: header with command and machine, one table per layer shape."""
    import onnxruntime
    import tvm

    lines = ["# TVM sparse / ternary kernels vs dense (per layer)", "",
             f"- command: `{command}`",
             f"- machine: {platform.machine()} {_cpu_model()}, {len(__import__('os').sched_getaffinity(0))} cpus "
             "(shared with other jobs; ratios are side by side in one run)",
             f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, run time {seconds:.0f} s",
             f"- versions: apache-tvm {tvm.__version__}, onnxruntime {onnxruntime.__version__}, numpy {np.__version__}",
             "- ours = our kernel through TVM; TVM dense = `matmul` with TVM's default (untuned) pipeline; "
             "ORT dense = onnxruntime MatMul on the same (zero-filled) weight. Times are medians in ms; "
             "`x` columns are speed-ups of ours (higher is better).", ""]
    lines += _summary(rows)
    for shape in dict.fromkeys(row["shape"] for row in rows):
        lines += [f"## weight {shape[0]}x{shape[1]}, rows M={shape[2]}", "",
                  "| kernel | block | sparsity | ours ms | TVM dense ms | ORT dense ms | x TVM dense | x ORT dense |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in (r for r in rows if r["shape"] == shape):
            lines.append(f"| {row['kernel']} | {row['block']} | {row['sparsity']:.2f} | {row['ours_ms']:.4f} | "
                         f"{row['tvm_dense_ms']:.4f} | {row['ort_dense_ms']:.4f} | "
                         f"{row['tvm_dense_ms'] / row['ours_ms']:.1f} | {row['ort_dense_ms'] / row['ours_ms']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def _summary(rows: list[dict]) -> list[str]:
    """Per shape and kernel: the lowest measured sparsity from which ours beats ORT dense at every higher one."""
    lines = ["## Summary: sparsity from which our kernel beats onnxruntime dense", "",
             "| weight | rows M | kernel | block | beats ORT dense from |", "|---|---|---|---|---|"]
    for key in dict.fromkeys((r["shape"], r["kernel"], r["block"]) for r in rows):
        series = sorted((r for r in rows if (r["shape"], r["kernel"], r["block"]) == key), key=lambda r: r["sparsity"])
        winning = [r["sparsity"] for i, r in enumerate(series)
                   if all(s["ours_ms"] < s["ort_dense_ms"] for s in series[i:])]
        shape = key[0]
        start = f"{winning[0]:.2f}" if winning else "never (in the tested range)"
        lines.append(f"| {shape[0]}x{shape[1]} | {shape[2]} | {key[1]} | {key[2]} | {start} |")
    return lines + ["", "TVM dense (default pipeline: LegalizeOps loops, no schedule) is slower than every kernel "
                    "here, which is why the measured break-even table (deploy/tvm/breakeven_host.json) is at or "
                    "near 0 for most shapes.", ""]


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one shape, fewer repeats")
    parser.add_argument("--number", type=int, default=20, help="calls per timing round")
    parser.add_argument("--repeat", type=int, default=7, help="timing rounds (median)")
    parser.add_argument("--out", default=str(Path(__file__).with_suffix(".md")), help="markdown output")
    args = parser.parse_args(argv)
    command = "python benchmarks/tvm_kernels.py " + " ".join(sys.argv[1:] if argv is None else argv)
    start = time.perf_counter()
    rows = []
    for shape in QUICK_SHAPES if args.quick else SHAPES:
        rows += bench_shape(shape, sparsities=SPARSITIES, kernels=KERNELS, number=args.number,
                            repeat=3 if args.quick else args.repeat)
        print(f"done {shape}", flush=True)
    Path(args.out).write_text(to_markdown(rows, command=command.strip(), seconds=time.perf_counter() - start))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
