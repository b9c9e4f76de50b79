"""Latency and size of models before / after structured channel removal (onnxruntime, batch 1, CPU).

For each model and channel ratio: plan + remove channels (L1 importance) with ``compress.prune``,
export the dense and the pruned model with ``torch.onnx.export`` (opset 17, TorchScript exporter),
then time both onnxruntime sessions (1 intra-op thread) interleaved A/B after a warm-up and report
medians. Weights are randomly initialised: latency and size do not depend on training, accuracy
is not measured here.

Usage::

    python benchmarks/channel_pruning.py --iterations 100 --out benchmarks/channel_pruning.md
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import time
import warnings

import numpy as np
import onnxruntime as ort
import torch

from compress.models import create_model, model_input_shape
from compress.prune import count_compute, max_output_difference, prune_channels


def export_onnx(model: torch.nn.Module, example: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(), (example,), buffer, opset_version=17, dynamo=False, input_names=["input"], output_names=["output"]
        )
    return buffer.getvalue()


def session(onnx_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def interleaved_medians(sessions: list[ort.InferenceSession], feed: dict, *, warmup: int, iterations: int) -> list[float]:
    """Median milliseconds per session, runs interleaved A, B, A, B, ... after ``warmup`` rounds."""
    for _ in range(warmup):
        for sess in sessions:
            sess.run(None, feed)
    times: list[list[float]] = [[] for _ in sessions]
    for _ in range(iterations):
        for index, sess in enumerate(sessions):
            start = time.perf_counter()
            sess.run(None, feed)
            times[index].append((time.perf_counter() - start) * 1e3)
    return [statistics.median(t) for t in times]


def measure(name: str, ratio: float, *, multiple: int, warmup: int, iterations: int) -> dict:
    torch.manual_seed(0)
    model = create_model(name).eval()
    example = torch.randn(1, *model_input_shape(name))
    result = prune_channels(model, example_inputs=(example,), channel_ratio=ratio, channel_multiple=multiple)
    dense_onnx, pruned_onnx = export_onnx(model, example), export_onnx(result.model, example)
    feed = {"input": example.numpy().astype(np.float32)}
    dense_ms, pruned_ms = interleaved_medians([session(dense_onnx), session(pruned_onnx)], feed, warmup=warmup, iterations=iterations)
    before, after = count_compute(model, (example,)), count_compute(result.model, (example,))
    return {
        "model": name,
        "ratio": ratio,
        "multiple": multiple,
        "params": (before.params, after.params),
        "macs": (before.macs, after.macs),
        "onnx_bytes": (len(dense_onnx), len(pruned_onnx)),
        "latency_ms": (dense_ms, pruned_ms),
        "masked_vs_pruned": max_output_difference(result.masked_model, result.model, inputs=(example,)),
    }


def markdown(rows: list[dict], *, command: str, warmup: int, iterations: int) -> str:
    lines = [
        "# Channel pruning: size and onnxruntime latency before / after channel removal",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {platform.processor() or 'unknown CPU'}; torch {torch.__version__}, "
        f"onnxruntime {ort.__version__}; torch and onnxruntime limited to 1 thread; batch 1; "
        f"{warmup} warm-up rounds, then {iterations} interleaved A/B runs, median reported. The host is shared "
        "with other jobs, so absolute times are noisy; the ratio is measured side by side in one run.",
        "",
        "Models are randomly initialised (latency and size do not depend on the weights); channels are "
        "chosen by L1 filter norm at the given per-layer-group ratio; `multiple` rounds every kept width "
        "up to a multiple of that many channels (`channel_multiple`). `max|masked-pruned|` checks that "
        "removal reproduces the masked model.",
        "",
        "| model | channel ratio | multiple | params before | params after | MACs before | MACs after | ONNX KiB before | ONNX KiB after | ms before | ms after | speedup | max\\|masked-pruned\\| |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['ratio']:.1f} | {r['multiple']} | {r['params'][0]:,} | {r['params'][1]:,} | {r['macs'][0]:,} | "
            f"{r['macs'][1]:,} | {r['onnx_bytes'][0] / 1024:.1f} | {r['onnx_bytes'][1] / 1024:.1f} | "
            f"{r['latency_ms'][0]:.3f} | {r['latency_ms'][1]:.3f} | {r['latency_ms'][0] / r['latency_ms'][1]:.2f}x | "
            f"{r['masked_vs_pruned']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet20", "mobilenetv2-small"])
    parser.add_argument("--ratios", nargs="+", type=float, default=[0.3, 0.5, 0.7])
    parser.add_argument("--channel-multiples", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--out", default=None, help="write the markdown table here (default: stdout)")
    args = parser.parse_args()
    if args.iterations < 50:
        parser.error(f"--iterations must be >= 50 for a stable median, got {args.iterations}")
    torch.set_num_threads(1)
    rows = [
        measure(n, r, multiple=k, warmup=args.warmup, iterations=args.iterations)
        for n in args.models
        for r in args.ratios
        for k in args.channel_multiples
    ]
    command = "python benchmarks/channel_pruning.py " + " ".join(
        [f"--models {' '.join(args.models)}", f"--ratios {' '.join(map(str, args.ratios))}",
         f"--channel-multiples {' '.join(map(str, args.channel_multiples))}",
         f"--warmup {args.warmup}", f"--iterations {args.iterations}"] + ([f"--out {args.out}"] if args.out else [])
    )  # fmt: skip
    text = markdown(rows, command=command, warmup=args.warmup, iterations=args.iterations)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    print(text)


if __name__ == "__main__":
    main()
