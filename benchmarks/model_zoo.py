"""The test zoo at 224 px: compile time, batch-1 latency of our TVM build against onnxruntime on the
same dense ONNX, and the share of the whole-model time spent outside our conv / matmul kernels.

Models: ``tests/zoo`` (ResNet-18 / 50, MobileNetV2, MobileNetV3-Small, EfficientNet-B0, ShuffleNetV2,
SqueezeNet 1.1, VGG-11-BN, DenseNet-style, tiny ViT), full width and depth unless ``--width`` /
``--depth`` say otherwise, 1000 classes, seeded random weights, exported with ``torch.onnx`` at
opset 17. VGG-11-BN's hidden layers are 4096 x width as in the paper (a 25088x4096 first linear layer).

Per model: ``compile_onnx(target="host")`` wall time; then onnxruntime (``intra_op_num_threads`` =
``--threads``) and our build (``TVM_NUM_THREADS`` = ``--threads``, set before TVM starts its pool)
timed call by call, interleaved with a rotating order (:func:`deploy.bench.interleave.measure_interleaved`);
ratio = onnxruntime time / TVM time, of the medians and of the mins. Then the TVM build's per-call
times (VM instrument, min over ``--profile-calls`` inferences, about 2 us added per call): the
"other ops" share is the time in every PrimFunc that is not one of our fused kernels
(``conv2d_*`` / ``matmul_*`` / ``phase_pad_*``), i.e. what :mod:`deploy.tvm.schedule_rest` scheduled,
against the sum of all calls.

Usage::

    python benchmarks/model_zoo.py [--models resnet18,mobilenet-v2] [--threads 1] [--runs 20] \
        [--out benchmarks/model_zoo.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from deploy.bench.vm_calls import summed_by_name, vm_call_seconds  # noqa: E402  (after the path insert)
KERNEL_PREFIXES = ("conv2d_", "matmul_", "phase_pad_")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated zoo names (default: all)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--depth", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--profile-calls", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "model_zoo.json")
    return parser.parse_args(argv)


def export(name: str, *, size: int, width: float, depth: float, path: Path) -> None:
    import torch

    from tests.zoo import create

    torch.manual_seed(0)
    model = create(name, width=width, depth=depth, image_size=size, num_classes=1000)
    torch.onnx.export(model, (torch.randn(1, 3, size, size),), str(path), opset_version=17, input_names=["input"],
                      dynamo=False)


def measure(name: str, args, work: Path) -> dict:
    import onnxruntime as ort
    import tvm
    from tvm import relax

    from deploy.bench.interleave import measure_interleaved
    from deploy.tvm.compile import compile_onnx

    shape = (1, 3, args.size, args.size)
    path = work / f"{name}.onnx"
    export(name, size=args.size, width=args.width, depth=args.depth, path=path)
    start = time.perf_counter()
    result = compile_onnx(path, target="host", out_dir=work / name, input_shape=shape)
    compile_seconds = time.perf_counter() - start
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(result.library_path)), tvm.cpu())
    tensor = tvm.runtime.tensor(x)
    error = float(np.max(np.abs(vm["main"](tensor).numpy() - session.run(None, {"input": x})[0])))
    stats = measure_interleaved({"onnxruntime": lambda: session.run(None, {"input": x}),
                                 "tvm": lambda: vm["main"](tensor)},
                                warmup=args.warmup, runs=args.runs, progress=False)
    ort_stats, tvm_stats = stats["onnxruntime"], stats["tvm"]
    return {"model": name, "compile_s": round(compile_seconds, 1), "max_abs_error": error,
            "onnxruntime_ms": {"median": ort_stats.median_ms, "min": ort_stats.min_ms},
            "tvm_ms": {"median": tvm_stats.median_ms, "min": tvm_stats.min_ms},
            "ratio_median": ort_stats.median_ms / tvm_stats.median_ms, "ratio_min": ort_stats.min_ms / tvm_stats.min_ms,
            **profile(vm, tensor, calls=args.profile_calls)}


def profile(vm, tensor, *, calls: int) -> dict:
    """Per-PrimFunc time (VM instrument): the min over ``calls`` inferences of each call site's sum."""
    per_run = [summed_by_name([run]) for run in vm_call_seconds(vm, tensor, calls=calls)]
    best = {name: min(run.get(name, 0.0) for run in per_run) for name in per_run[0]}
    total = sum(best.values())
    others = {name: t for name, t in best.items() if not name.startswith(KERNEL_PREFIXES) and not name.startswith("vm.")}
    top = sorted(others.items(), key=lambda item: -item[1])[:5]
    return {"calls_ms": round(total * 1e3, 3), "other_ops_ms": round(sum(others.values()) * 1e3, 3),
            "other_ops_share": sum(others.values()) / total if total else 0.0,
            "top_other_ops": [[name, round(t * 1e3, 3)] for name, t in top]}


def main(argv=None) -> None:
    args = parse_args(argv)
    os.environ["TVM_NUM_THREADS"] = str(args.threads)  # read once, when TVM's pool starts
    from deploy.bench.machine import cpu_model
    from tests.zoo import ZOO

    names = [n for n in args.models.split(",") if n] or list(ZOO)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            row = measure(name, args, Path(tmp))
            rows.append(row)
            print(json.dumps(row), flush=True)
    record = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "cpu": cpu_model(), "threads": args.threads, "size": args.size, "width": args.width,
              "depth": args.depth, "runs": args.runs, "load_average": os.getloadavg(), "rows": rows}
    args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
