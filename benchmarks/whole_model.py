"""Whole-model batch-1 latency of the TVM build against onnxruntime on the *dense* original.

Models: LeNet-5 (the bundled MNIST checkpoint; with ``--lenet-run`` also the exported model of that
`compress run` as the variant "default run"), ResNet-20 and MobileNetV2 for 3x32x32 (``compress.models``, seeded random
weights: speed does not depend on the values, only on the zero pattern). Variants: dense; R x 1
block sparsity (R = 16, 8) at 90% and 95% of the blocks of every conv / linear weight except the
first conv, the last linear layer and depthwise convs (block L2 norm, per layer); ternary (TWN:
delta = 0.7 mean|w|, one scale per layer) on the same layers, alone and on top of 90% 16x1 sparsity.

Candidates per model: onnxruntime dense, onnxruntime on each variant, our TVM build of the dense
model and of each variant (``deploy.tvm.compile_onnx`` for the ``host`` preset). Each thread count
is measured in its own process (``TVM_NUM_THREADS`` is read once, when TVM's pool starts), with
onnxruntime's ``intra_op_num_threads`` set to the same count. Timing: rounds over all candidates in a
rotating order; in each round a candidate runs a burst of ``--burst`` calls of which the first
``--settle`` are untimed (so the other runtime's spinning threads have gone to sleep), the rest
timed one by one. Ratios are onnxruntime-dense time / candidate time: of the medians and of the mins.

Also written: per-layer time shares of the ResNet-20 90% 16x1 build (VM instrument, one thread) and
each conv layer's throughput on the non-zeros next to onnxruntime's dense throughput on that shape.

Usage::

    python benchmarks/whole_model.py [--quick] [--threads 1,2] [--lenet-run RUN_DIR] [--out benchmarks/whole_model.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = {"lenet5": (1, 1, 28, 28), "resnet20": (1, 3, 32, 32), "mobilenetv2-small": (1, 3, 32, 32)}
VARIANTS = ("90% 16x1", "95% 16x1", "90% 8x1", "95% 8x1", "ternary", "ternary + 90% 16x1")
QUICK_VARIANTS = ("90% 16x1", "95% 16x1")


def export_model(name: str, path: Path) -> Path:
    """Dense ONNX of ``name`` (LeNet-5: the bundled MNIST checkpoint)."""
    import onnx
    import torch

    from deploy.onnx.torch_export import export_dense

    if name == "lenet5":
        from pipeline.model_io import build_model, load_bundle

        model = build_model(load_bundle(ROOT / "pipeline" / "examples" / "lenet5_mnist.pt"))
    else:
        from compress.models import create_model

        torch.manual_seed(0)
        model = create_model(name)
    onnx.save(export_dense(model.eval(), torch.zeros(MODELS[name]), opset=17), str(path))
    return path


def _weights(model):
    """(initializer, op, is_depthwise) of every Conv / Gemm / MatMul weight, in graph order."""
    from onnx import numpy_helper

    inits = {init.name: init for init in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul") and len(node.input) > 1 and node.input[1] in inits:
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            found.append((inits[node.input[1]], node.op_type, group > 1))
    return found, numpy_helper


def make_variant(src: Path, dst: Path, variant: str) -> Path:
    """Write ``variant`` of the dense ONNX ``src`` to ``dst`` (see the module docstring)."""
    import onnx

    model = onnx.load(str(src))
    weights, numpy_helper = _weights(model)
    for index, (init, op, depthwise) in enumerate(weights):
        if depthwise or index == 0 or index == len(weights) - 1:
            continue
        weight = numpy_helper.to_array(init).copy()
        rows_first = weight if op == "Conv" or (op == "Gemm") else weight.T
        flat = rows_first.reshape(rows_first.shape[0], -1)
        if "16x1" in variant or "8x1" in variant:
            ratio = 0.9 if variant.split("%")[0].endswith("90") else 0.95
            flat = _block_prune(flat, rows=16 if "16x1" in variant else 8, ratio=ratio)
        if variant.startswith("ternary"):
            flat = _ternarize(flat)
        pruned = flat.reshape(rows_first.shape)
        weight = pruned if rows_first is weight else pruned.T
        init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(weight, dtype=np.float32), init.name))
    onnx.save(model, str(dst))
    return dst


def _block_prune(flat: np.ndarray, *, rows: int, ratio: float) -> np.ndarray:
    """Zero the ``ratio`` of ``rows x 1`` blocks with the smallest L2 norm (a last partial block row
    counts as a block of its own height)."""
    from deploy.tvm.row_blocks import row_blocks

    blocks = row_blocks(flat, rows)
    norms = np.linalg.norm(blocks, axis=1)
    keep = norms > np.quantile(norms, ratio)
    return (blocks * keep[:, None, :]).reshape(-1, flat.shape[1])[: flat.shape[0]]


def _ternarize(flat: np.ndarray) -> np.ndarray:
    nonzero = flat[flat != 0]
    if nonzero.size == 0:
        return flat
    delta = 0.7 * np.abs(nonzero).mean()
    keep = np.abs(flat) > delta
    alpha = np.abs(flat[keep]).mean() if keep.any() else 0.0
    return (np.sign(flat) * keep * alpha).astype(np.float32)


def build(work: Path, *, variants, lenet_run: Path | None) -> dict:
    """Export, derive and compile every model; returns the plan the timing processes read."""
    from deploy.tvm.compile import compile_onnx

    import onnx

    from deploy.tvm.onnx_input import load_onnx_for_tvm

    plan = {}
    for name, shape in MODELS.items():
        dense = export_model(name, work / f"{name}-dense.onnx")
        entries = {"dense": str(dense)}
        for variant in variants:
            entries[variant] = str(make_variant(dense, work / f"{name}-{variant.replace(' ', '_').replace('%', '')}.onnx", variant))
        if name == "lenet5" and lenet_run is not None:  # the run's compact ONNX, decoded to dense arrays
            entries["default run"] = str(work / "lenet5-default-run.onnx")
            onnx.save(load_onnx_for_tvm(next(lenet_run.glob("*-export/model.onnx"))), entries["default run"])
        libraries = {}
        for variant, path in entries.items():
            print(f"compiling {name} {variant}", file=sys.stderr, flush=True)
            out = work / Path(path).stem
            result = compile_onnx(path, target="host", out_dir=out, input_shape=shape)
            libraries[variant] = str(result.library_path)
        plan[name] = {"shape": list(shape), "onnx": entries, "tvm": libraries}
    return plan


def _sessions(plan_entry: dict, threads: int):
    import onnxruntime as ort
    import tvm
    from tvm import relax

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    x = np.random.default_rng(0).standard_normal(plan_entry["shape"]).astype(np.float32)
    candidates, outputs = {}, {}
    for variant, path in plan_entry["onnx"].items():
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        candidates[f"onnxruntime {variant}"] = (lambda s=session, n=name: s.run(None, {n: x}))
        outputs[f"onnxruntime {variant}"] = session.run(None, {name: x})[0]
    tensor = tvm.runtime.tensor(x)
    for variant, library in plan_entry["tvm"].items():
        vm = relax.VirtualMachine(tvm.runtime.load_module(library), tvm.cpu())
        main = vm["main"]
        candidates[f"tvm {variant}"] = (lambda f=main: f(tensor))
        outputs[f"tvm {variant}"] = main(tensor).numpy()
    return candidates, outputs


def measure(plan: dict, *, threads: int, rounds: int, burst: int, settle: int) -> dict:
    """Time every candidate of every model (runs inside the process whose thread count is fixed)."""
    results = {}
    for model, entry in plan.items():
        candidates, outputs = _sessions(entry, threads)
        names = list(candidates)
        samples = {name: [] for name in names}
        for index in range(rounds):
            order = names[index % len(names):] + names[: index % len(names)]
            for name in order:
                call = candidates[name]
                for repeat in range(burst):
                    start = time.perf_counter_ns()
                    call()
                    if repeat >= settle:
                        samples[name].append((time.perf_counter_ns() - start) / 1e6)
        errors = {}
        for variant in entry["tvm"]:
            errors[variant] = float(np.abs(outputs[f"tvm {variant}"] - outputs[f"onnxruntime {variant}"]).max())
        results[model] = {"samples": {n: [float(np.min(s)), float(np.median(s)), float(np.percentile(s, 90))] for n, s in samples.items()},
                          "max_abs_error": errors}
    return results


def layer_profile(plan: dict, variant: str) -> list[dict]:
    """Per-call time of the ResNet-20 build of ``variant`` (VM instrument) and per-conv throughput."""
    import onnx
    import onnxruntime as ort
    import tvm
    from onnx import helper, shape_inference
    from tvm import relax

    entry = plan["resnet20"]
    vm = relax.VirtualMachine(tvm.runtime.load_module(entry["tvm"][variant]), tvm.cpu())
    tensor = tvm.runtime.tensor(np.random.default_rng(0).standard_normal(entry["shape"]).astype(np.float32))
    totals: dict[str, float] = {}
    state = {}

    def instrument(func, name, before_run, ret_value, *args):
        if before_run:
            state["start"] = time.perf_counter()
        else:
            totals[name] = totals.get(name, 0.0) + time.perf_counter() - state["start"]

    for _ in range(20):
        vm["main"](tensor)
    vm.set_instrument(instrument)
    calls = 200
    for _ in range(calls):
        vm["main"](tensor)
    report = json.loads(Path(entry["tvm"][variant]).with_name("compile_report.json").read_text())
    model = onnx.load(entry["onnx"][variant])
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1  # the exported batch is dynamic
    model = shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.value_info}
    inits = {i.name: i for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    rows = []
    conv_layers = [layer for layer in report["layers"] if layer["op"] == "conv2d"]
    for layer in conv_layers:  # the graph's conv of the same weight shape, in order
        node = next(n for n in convs if list(inits[n.input[1]].dims) == layer["weight_shape"])
        convs.remove(node)
        out = shapes.get(node.output[0]) or [1, layer["weight_shape"][0], 0, 0]
        out_hw = out[2] * out[3]
        weight = onnx.numpy_helper.to_array(inits[node.input[1]])
        dense_flops = 2.0 * weight.size * out_hw
        nonzero_flops = dense_flops * (1.0 - layer["sparsity_ratio"])
        seconds = totals.get(layer["name"], 0.0) / calls
        single = helper.make_model(helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"], **{a.name: helper.get_attribute_value(a) for a in node.attribute})],
            "conv", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, shapes.get(node.input[0]) or entry["shape"])],
            [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], [onnx.numpy_helper.from_array(weight, "w")]),
            opset_imports=[helper.make_opsetid("", 17)])
        session = ort.InferenceSession(single.SerializeToString(), options, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(1).standard_normal(shapes.get(node.input[0]) or entry["shape"]).astype(np.float32)
        ort_times = []
        for _ in range(20):
            session.run(None, {"x": x})
        for _ in range(100):
            start = time.perf_counter()
            session.run(None, {"x": x})
            ort_times.append(time.perf_counter() - start)
        ort_seconds = float(np.median(ort_times))
        rows.append({"layer": layer["name"], "weight": "x".join(map(str, layer["weight_shape"])), "out": f"{out[2]}x{out[3]}",
                     "skipped": layer["sparsity_ratio"], "tvm_us": seconds * 1e6,
                     "tvm_gflops_nonzero": nonzero_flops / seconds / 1e9 if seconds else 0.0,
                     "ort_us": ort_seconds * 1e6, "ort_gflops_dense": dense_flops / ort_seconds / 1e9})
    total = sum(totals.values())
    shares = sorted(totals.items(), key=lambda kv: -kv[1])
    return rows, [(name, seconds / calls * 1e6, seconds / total) for name, seconds in shares]


def markdown(results: dict, plan: dict, profile, *, command: str, threads: list[int]) -> str:
    from deploy.bench.machine import cpu_model

    lines = ["# Whole-model latency: our TVM build vs onnxruntime on the dense original", "",
             f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, no GPU",
             f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"- versions: Python {platform.python_version()}, {_versions()}",
             f"- command: `{command}`", "",
             "Ratio = onnxruntime-dense time / candidate time (higher is faster); `median` compares medians, `min` compares",
             "minima. `max err` = max abs difference between the TVM build and onnxruntime on the same variant.", ""]
    lines += _targets(results, threads)
    for count in threads:
        lines += [f"## {count} thread{'s' if count > 1 else ''} (onnxruntime intra-op = TVM_NUM_THREADS = {count})", ""]
        for model, result in results[count].items():
            base = result["samples"]["onnxruntime dense"]
            lines += [f"### {model}", "", "| candidate | min ms | median ms | p90 ms | ratio (median) | ratio (min) | max err |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            for name, (low, mid, p90) in result["samples"].items():
                variant = name.split(" ", 1)[1]
                err = f"{result['max_abs_error'][variant]:.1e}" if name.startswith("tvm") else ""
                lines.append(f"| {name} | {low:.3f} | {mid:.3f} | {p90:.3f} | {base[1] / mid:.2f}x | {base[0] / low:.2f}x | {err} |")
            lines.append("")
    rows, shares = profile
    lines += ["## ResNet-20, 90% 16x1: per-layer throughput (1 thread)", "",
              "TVM time per conv from the VM instrument (adds about 1-2 us per call); GFLOP/s on the non-zero weights.",
              "onnxruntime: the same conv alone, dense weights, one thread.", "",
              "| layer | weight | output | blocks skipped | TVM us | TVM GFLOP/s (non-zeros) | onnxruntime dense us | onnxruntime GFLOP/s |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['weight']} | {r['out']} | {r['skipped']:.0%} | {r['tvm_us']:.1f} | "
                     f"{r['tvm_gflops_nonzero']:.1f} | {r['ort_us']:.1f} | {r['ort_gflops_dense']:.1f} |")
    lines += ["", "## ResNet-20, 90% 16x1: where the time goes now (1 thread, VM instrument)", "",
              "| VM call | us per inference | share |", "|---|---:|---:|"]
    for name, micros, share in shares[:15]:
        lines.append(f"| {name} | {micros:.1f} | {share:.1%} |")
    lines.append(f"| (other {max(0, len(shares) - 15)} calls) | {sum(m for _, m, _ in shares[15:]):.1f} | "
                 f"{sum(s for _, _, s in shares[15:]):.1%} |")
    return "\n".join(lines) + "\n"


TARGETS = (  # (model, candidate, target ratio) of issue 13
    ("resnet20", "tvm 90% 16x1", 3.0), ("resnet20", "tvm 95% 16x1", 4.0), ("mobilenetv2-small", "tvm 90% 16x1", 2.0),
    ("mobilenetv2-small", "tvm 90% 8x1", 2.0), ("lenet5", "tvm default run", 1.5), ("lenet5", "tvm dense", 0.8),
    ("resnet20", "tvm dense", 0.8), ("mobilenetv2-small", "tvm dense", 0.8),
)


def _targets(results: dict, threads: list[int]) -> list[str]:
    """The targets table: each target ratio against the measured median and min ratios."""
    lines = ["## Targets", "", "| model | candidate | target | " + " | ".join(f"{t} thread(s): median / min" for t in threads) + " |",
             "|---|---|---:|" + "---|" * len(threads)]
    for model, candidate, target in TARGETS:
        cells = []
        for count in threads:
            samples = results[count].get(model, {}).get("samples", {})
            if candidate not in samples:
                cells.append("not measured")
                continue
            base, row = samples["onnxruntime dense"], samples[candidate]
            median, low = base[1] / row[1], base[0] / row[0]
            cells.append(f"{median:.2f}x / {low:.2f}x {'met' if median >= target and low >= target else 'NOT met'}")
        lines.append(f"| {model} | {candidate} | {target:g}x | " + " | ".join(cells) + " |")
    return lines + [""]


def _versions() -> str:
    from importlib import metadata

    return ", ".join(f"{name} {metadata.version(name)}" for name in ("torch", "onnx", "onnxruntime", "apache-tvm"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two variants, fewer rounds")
    parser.add_argument("--threads", default="1,2", help="thread counts, each measured in its own process")
    parser.add_argument("--lenet-run", type=Path, default=None, help="a `compress run` directory: use its exported LeNet-5")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--settle", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "whole_model.md")
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure is not None:  # a timing process: the plan in, results as JSON out
        plan = json.loads(args.measure.read_text())
        threads = int(os.environ["TVM_NUM_THREADS"])
        result = {"measure": measure(plan, threads=threads, rounds=args.rounds, burst=args.burst, settle=args.settle)}
        if threads == 1:
            result["profile"] = layer_profile(plan, "90% 16x1")
        print(json.dumps(result))
        return
    threads = [int(t) for t in args.threads.split(",")]
    with tempfile.TemporaryDirectory(prefix="whole-model-") as tmp:
        work = Path(tmp)
        plan = build(work, variants=QUICK_VARIANTS if args.quick else VARIANTS, lenet_run=args.lenet_run)
        (work / "plan.json").write_text(json.dumps(plan))
        results, profile = {}, None
        for count in threads:
            print(f"timing with {count} thread(s)", file=sys.stderr, flush=True)
            command = [sys.executable, __file__, "--measure", str(work / "plan.json"), "--rounds", str(args.rounds),
                       "--burst", str(args.burst), "--settle", str(args.settle)]
            done = subprocess.run(command, env={**os.environ, "TVM_NUM_THREADS": str(count)}, capture_output=True, text=True, check=True)
            output = json.loads(done.stdout.strip().splitlines()[-1])
            results[count] = output["measure"]
            profile = output.get("profile", profile)
    if profile is None:
        profile = ([], [])
    command = "python benchmarks/whole_model.py " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.write_text(markdown(results, plan, profile, command=command.strip(), threads=threads))
    args.out.with_suffix(".json").write_text(json.dumps({"results": results, "profile": profile}, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
