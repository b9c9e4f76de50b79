"""int8 on the bundled LeNet-5 (full MNIST test set): fp32 vs calibrated + QAT int8 accuracy, the QDQ
ONNX's size and onnxruntime's integer kernels, and onnxruntime int8 vs fp32 latency, interleaved.

Steps: the bundled model (fp32) -> ``create_quant_method("int8")`` on every layer: activation ranges
on 16 training batches, 200 straight-through fine-tuning steps (batch 64, the quantize stage's
defaults) -> ``deploy.onnx.qdq.export_qdq``. Accuracy: the torch fake-quantized model and onnxruntime
on the QDQ file (ORT_ENABLE_ALL: ``QLinearConv`` / ``QGemm``). Latency: onnxruntime at 1 thread on the
dense fp32 ONNX of the bundled model and on the QDQ ONNX, batch 1 and 64, calls interleaved. Run::

    PYTHONPATH=. python benchmarks/int8_qdq.py --out benchmarks/int8_qdq.md
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from compress.optim.loop import evaluate, start_training, train_epoch
from compress.quant import create_quant_method
from compress.types import QuantRecord
from deploy.bench.interleave import measure_interleaved
from deploy.bench.machine import cpu_model
from deploy.onnx.qdq import export_qdq, onnxruntime_int8_ops
from deploy.onnx.torch_export import export_dense
from pipeline.data import load_dataset
from pipeline.model.bundle import build_model, load_bundle

EXAMPLE = Path(__file__).resolve().parents[1] / "pipeline" / "examples" / "lenet5_mnist.pt"


def _isa() -> str:
    """The vector extensions onnxruntime's int8 kernels can use, from /proc/cpuinfo."""
    flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), [])
    return ", ".join(flag for flag in ("avx2", "avx512f", "avx512_vnni", "avx_vnni") if flag in flags) or "none listed"


def _session(path: Path) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _onnx_accuracy(path: Path, data) -> float:
    session, correct, count = _session(path), 0, 0
    for x, y in data.test_batches(batch_size=500):
        correct += int((session.run(None, {"input": x.numpy()})[0].argmax(1) == y.numpy()).sum())
        count += len(y)
    return correct / count


def _quantize(model, data, *, steps: int, batch_size: int):
    method = create_quant_method("int8", skip_first_last=False)
    method.calibrate(model, data.train_batches(batch_size=batch_size, seed=0, epoch=0))
    optimizer = start_training(method, model, total_steps=steps)
    torch.manual_seed(0)
    train_epoch(model, itertools.islice(data.train_batches(batch_size=batch_size, seed=0, epoch=0), steps), method, optimizer)
    method.finalize(model)
    return method


def run(args) -> str:
    torch.set_num_threads(1)
    bundle = load_bundle(EXAMPLE)
    model = build_model(bundle)
    data = load_dataset("mnist", model_input_shape=bundle.input_shape)
    example = next(data.test_batches(batch_size=64))[0]
    fp32_accuracy = evaluate(model, data.test_batches())
    folder = Path(tempfile.mkdtemp())
    (folder / "fp32.onnx").write_bytes(export_dense(model, example, opset=17).SerializeToString())
    start = time.perf_counter()
    method = _quantize(model, data, steps=args.steps, batch_size=64)
    seconds = time.perf_counter() - start
    int8_accuracy = evaluate(model, data.test_batches())
    records = method.record_dicts()
    method.activations.remove()
    result = export_qdq(model, example, folder / "int8.onnx", records=[QuantRecord.from_dict(r) for r in records],
                        activations={r["fqn"]: (r["input_scale"], r["output_scale"]) for r in records})
    ort_accuracy = _onnx_accuracy(folder / "int8.onnx", data)
    lines = [
        "# int8 (calibrated, QAT) on the bundled LeNet-5",
        "",
        f"CPU: {cpu_model()}; `PYTHONPATH=. python benchmarks/int8_qdq.py --steps {args.steps} --runs {args.runs}`; "
        f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__}, 1 thread; ISA: {_isa()}; "
        f"load average at the start {os.getloadavg()[0]:.1f} (shared machine).",
        "",
        "| model | accuracy (10,000 MNIST test images) | ONNX bytes |",
        "|---|---:|---:|",
        f"| fp32 (bundled) | {100 * fp32_accuracy:.2f}% | {(folder / 'fp32.onnx').stat().st_size:,} |",
        f"| int8, torch fake-quantized | {100 * int8_accuracy:.2f}% | |",
        f"| int8 QDQ, onnxruntime | {100 * ort_accuracy:.2f}% | {(folder / 'int8.onnx').stat().st_size:,} |",
        "",
        f"Calibration (16 batches) + {args.steps} QAT steps: {seconds:.1f} s. Stored conv / linear weights: "
        f"{sum(layer.stored_bytes for layer in result.sizes.layers):,} bytes for {sum(layer.numel for layer in result.sizes.layers):,} weights. "
        f"onnxruntime (ORT_ENABLE_ALL) runs the QDQ file as {onnxruntime_int8_ops(folder / 'int8.onnx')}.",
        "",
        "| batch | fp32 median ms | fp32 min ms | int8 median ms | int8 min ms | speed-up (median) | speed-up (min) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    sessions = {"fp32": _session(folder / "fp32.onnx"), "int8": _session(folder / "int8.onnx")}
    for batch in (1, 64):
        x = next(data.test_batches(batch_size=batch))[0].numpy()
        stats = measure_interleaved({name: (lambda s=s: s.run(None, {"input": x})) for name, s in sessions.items()},
                                    warmup=20, runs=args.runs, progress=False)
        fp32, int8 = stats["fp32"], stats["int8"]
        lines.append(f"| {batch} | {fp32.median_ms:.3f} | {fp32.min_ms:.3f} | {int8.median_ms:.3f} | {int8.min_ms:.3f} | "
                     f"{fp32.median_ms / int8.median_ms:.2f}x | {fp32.min_ms / int8.min_ms:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    text = run(args)
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
