"""Whole-model batch-1 latency of the TVM build against onnxruntime on the *dense* original.

Models: LeNet-5 (the bundled MNIST checkpoint; with ``--lenet-run`` also the exported model of that
`compress run` as the variant "default run"), a LeNet-style net (3x3 convs with padding 1, 32 and 64
channels at 28x28, a 3136x200 linear layer), ResNet-20 and MobileNetV2 for 3x32x32
(``compress.models``) and ResNet-18 at 3x224x224 (the test zoo's definition, ``tests/zoo``); seeded
random weights: speed depends on the zero pattern, not on the values. Variants: dense; R x 1 block
sparsity (R = 16) at 90% / 95% of the blocks of every conv / linear weight except the first conv,
the last linear layer and depthwise convs (block L2 norm, per layer); "92% unstructured": the 92%
smallest weights of those layers zeroed (magnitude, per layer).

Candidates per model: onnxruntime on the dense model and our TVM build of each variant
(``deploy.tvm.compile_onnx`` for the ``host`` preset). Each thread count is measured in its own
process (``TVM_NUM_THREADS`` is read once, when TVM's pool starts), with onnxruntime's
``intra_op_num_threads`` set to the same count. Timing: rounds over all candidates in a rotating
order; in each round a candidate runs a burst of calls of which the first ``--settle`` are untimed
(so the other runtime's spinning threads have gone to sleep), the rest timed one by one. Ratios are
onnxruntime-dense time / candidate time: of the medians and of the mins.

Also written: the ResNet-18 (224 px) 90% 16x1 build per conv layer at one thread (VM instrument):
its time and GFLOP/s on the non-zeros next to onnxruntime's dense GFLOP/s on the same conv alone.

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
from deploy.bench.vm_calls import summed_by_name, vm_call_seconds  # noqa: E402  (after the path insert)

from whole_model_variants import export_model, make_variant  # noqa: E402  (after the path insert)

# name -> (input shape, variants, rounds, burst): a burst of the 224 px model takes about 0.1 s
MODELS = {
    "lenet5": ((1, 1, 28, 28), (), 40, 10),
    "lenet-style": ((1, 1, 28, 28), ("92% unstructured",), 40, 10),
    "resnet20": ((1, 3, 32, 32), ("90% 16x1", "95% 16x1"), 40, 10),
    "mobilenetv2-small": ((1, 3, 32, 32), ("90% 16x1",), 40, 10),
    "resnet18-224": ((1, 3, 224, 224), ("90% 16x1",), 12, 5),
}
PROFILE_MODEL, PROFILE_VARIANT = "resnet18-224", "90% 16x1"


def build(work: Path, *, models: dict, lenet_run: Path | None) -> dict:
    """Export, derive and compile every model; returns the plan the timing processes read."""
    import onnx

    from deploy.tvm.compile import compile_onnx
    from deploy.tvm.onnx_input import load_onnx_for_tvm

    plan = {}
    for name, (shape, variants, rounds, burst) in models.items():
        dense = export_model(name, work / f"{name}-dense.onnx", shape=shape)
        entries = {"dense": str(dense)}
        for variant in variants:
            stem = variant.replace(" ", "_").replace("%", "")
            entries[variant] = str(make_variant(dense, work / f"{name}-{stem}.onnx", variant))
        if name == "lenet5" and lenet_run is not None:  # the run's compact ONNX, decoded to dense arrays
            entries["default run"] = str(work / "lenet5-default-run.onnx")
            onnx.save(load_onnx_for_tvm(next(lenet_run.glob("*-export/model.onnx"))), entries["default run"])
        libraries = {}
        for variant, path in entries.items():
            print(f"compiling {name} {variant}", file=sys.stderr, flush=True)
            result = compile_onnx(path, target="host", out_dir=work / Path(path).stem, input_shape=shape)
            libraries[variant] = str(result.library_path)
        plan[name] = {"shape": list(shape), "onnx": entries, "tvm": libraries, "rounds": rounds, "burst": burst}
    return plan


def _sessions(plan_entry: dict, threads: int):
    import tvm  # before onnxruntime: the other order fails to register TVM's script printer
    from tvm import relax

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    x = np.random.default_rng(0).standard_normal(plan_entry["shape"]).astype(np.float32)
    candidates, outputs = {}, {}
    for variant, path in plan_entry["onnx"].items():
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        outputs[f"onnxruntime {variant}"] = session.run(None, {session.get_inputs()[0].name: x})[0]
        if variant == "dense":
            candidates["onnxruntime dense"] = (lambda s=session, n=session.get_inputs()[0].name: s.run(None, {n: x}))
    tensor = tvm.runtime.tensor(x)
    for variant, library in plan_entry["tvm"].items():
        main = relax.VirtualMachine(tvm.runtime.load_module(library), tvm.cpu())["main"]
        candidates[f"tvm {variant}"] = (lambda f=main: f(tensor))
        outputs[f"tvm {variant}"] = main(tensor).numpy()
    return candidates, outputs


def measure(plan: dict, *, threads: int, settle: int, scale: float) -> dict:
    """Time every candidate of every model (runs inside the process whose thread count is fixed)."""
    results = {}
    for model, entry in plan.items():
        candidates, outputs = _sessions(entry, threads)
        names = list(candidates)
        samples = {name: [] for name in names}
        for index in range(max(2, int(entry["rounds"] * scale))):
            order = names[index % len(names):] + names[: index % len(names)]
            for name in order:
                call = candidates[name]
                for repeat in range(entry["burst"]):
                    start = time.perf_counter_ns()
                    call()
                    if repeat >= min(settle, entry["burst"] - 1):
                        samples[name].append((time.perf_counter_ns() - start) / 1e6)
        errors = {variant: float(np.abs(outputs[f"tvm {variant}"] - outputs[f"onnxruntime {variant}"]).max()) for variant in entry["tvm"]}
        results[model] = {"samples": {n: [float(np.min(s)), float(np.median(s)), float(np.percentile(s, 90))] for n, s in samples.items()},
                          "max_abs_error": errors}
    return results


def pool_check(*, rounds: int = 40) -> dict:
    """Speed-up of TVM's thread pool on a trivially parallel loop (vector multiply-adds over a 256 x 4096
    array, 20 passes) against the same loop serial, timed interleaved: how much of a second core the
    machine gives at this moment, whatever the kernels do."""
    import tvm
    from tvm.script import tirx as T

    def sweep(parallel: bool):
        rows_loop = T.parallel if parallel else T.serial

        @T.prim_func
        def func(a: T.Buffer((256, 4096), "float32"), b: T.Buffer((256, 4096), "float32")):
            T.func_attr({"tir.noalias": True})
            for i in rows_loop(256):
                for k, j in T.grid(20, 4096):
                    b[i, j] = b[i, j] * T.float32(0.999) + a[i, j]

        return func

    module = tvm.IRModule({name: sweep(name == "parallel").with_attr("global_symbol", name) for name in ("parallel", "serial")})
    library = tvm.compile(module, target=tvm.target.Target({"kind": "llvm", "mcpu": _llvm_cpu()}))
    a, b = (tvm.runtime.tensor(np.ones((256, 4096), np.float32)) for _ in range(2))
    times = {"parallel": [], "serial": []}
    for _ in range(rounds):
        for name in times:
            start = time.perf_counter()
            library[name](a, b)
            times[name].append(time.perf_counter() - start)
    return {"min": min(times["serial"]) / min(times["parallel"]),
            "median": float(np.median(times["serial"]) / np.median(times["parallel"]))}


def layer_profile(plan: dict, model_name: str, variant: str, *, calls: int = 20) -> list[dict]:
    """Per-call time of the ``model_name`` build of ``variant`` (VM instrument, min over ``calls``
    inferences) and each conv's throughput next to onnxruntime's on the same conv alone (min of 40)."""
    import tvm
    from tvm import relax

    import onnx
    import onnxruntime as ort
    from onnx import helper, shape_inference

    entry = plan[model_name]
    vm = relax.VirtualMachine(tvm.runtime.load_module(entry["tvm"][variant]), tvm.cpu())
    tensor = tvm.runtime.tensor(np.random.default_rng(0).standard_normal(entry["shape"]).astype(np.float32))
    runs = vm_call_seconds(vm, tensor, calls=calls, warmup=3)
    per_call: dict[str, list[float]] = {}
    for name, seconds in (call for run in runs for call in run):
        per_call.setdefault(name, []).append(seconds)
    totals = summed_by_name(runs)
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
        seconds = min(per_call.get(layer["name"], [0.0]))
        single = helper.make_model(helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"], **{a.name: helper.get_attribute_value(a) for a in node.attribute})],
            "conv", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, shapes.get(node.input[0]) or entry["shape"])],
            [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], [onnx.numpy_helper.from_array(weight, "w")]),
            opset_imports=[helper.make_opsetid("", 17)])
        session = ort.InferenceSession(single.SerializeToString(), options, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(1).standard_normal(shapes.get(node.input[0]) or entry["shape"]).astype(np.float32)
        ort_times = []
        for _ in range(5):
            session.run(None, {"x": x})
        for _ in range(40):
            start = time.perf_counter()
            session.run(None, {"x": x})
            ort_times.append(time.perf_counter() - start)
        ort_seconds = float(np.min(ort_times))
        rows.append({"layer": layer["name"], "weight": "x".join(map(str, layer["weight_shape"])), "out": f"{out[2]}x{out[3]}",
                     "skipped": layer["sparsity_ratio"], "tvm_us": seconds * 1e6,
                     "tile": layer["reason"].split("lanes ")[1].split(" tile")[0] if "lanes " in layer["reason"] else "",
                     "tvm_gflops_nonzero": nonzero_flops / seconds / 1e9 if seconds else 0.0,
                     "ort_us": ort_seconds * 1e6, "ort_gflops_dense": dense_flops / ort_seconds / 1e9})
    total = sum(totals.values())
    shares = sorted(totals.items(), key=lambda kv: -kv[1])
    return rows, [(name, seconds / calls * 1e6, seconds / total) for name, seconds in shares]


def markdown(results: dict, profile, *, command: str, threads: list[int], loads: dict, pools: dict) -> str:
    from deploy.bench.machine import cpu_model

    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else platform.machine()
    lines = ["# Whole-model latency: our TVM build vs onnxruntime on the dense original", "",
             f"- machine: {cpu_model()} ({isa}; LLVM -mcpu {_llvm_cpu()}), {os.cpu_count()} logical CPUs, "
             f"{platform.system()} {platform.release()}, no GPU",
             f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"- versions: Python {platform.python_version()}, {_versions()}",
             f"- command: `{command}`" + ("; the `--lenet-run` directory is a `compress run` of the default recipe (LeNet-5,"
                                          " MNIST) made on this machine the same day" if "--lenet-run" in command else ""),
             "- load: the machine is shared; 1-minute load average at the start / end of each timing process: "
             + ", ".join(f"{count} thread(s) {a:.1f} / {b:.1f}" for count, (a, b) in loads.items()), "",
             "Ratio = onnxruntime-dense time / candidate time (higher is faster); `median` compares medians, `min` compares",
             "minima. `max err` = max abs difference between the TVM build and onnxruntime on the same variant.",
             "Both engines run at the same thread count in one process, interleaved; onnxruntime's intra-op pool spins",
             "after each run (its default), TVM's pool sleeps: the first calls of every burst are untimed so the other",
             "engine's spinning threads have stopped before a timed call.", ""] + READING_GUIDE
    lines += _targets(results, threads) + _scaling(results, threads, pools)
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
    lines += [f"## {PROFILE_MODEL}, {PROFILE_VARIANT}: per-layer throughput (1 thread)", "",
              "TVM: min time per conv over the profiled inferences (VM instrument, adds about 1-2 us per call); GFLOP/s on",
              "the non-zero weights. onnxruntime: the same conv alone, dense weights, one thread, min of 40 calls.",
              "Efficiency = TVM GFLOP/s on the non-zeros / onnxruntime dense GFLOP/s.", "",
              "| layer | weight | output | blocks skipped | tile (ch x vec x lanes) | TVM us | TVM GFLOP/s (non-zeros) | "
              "onnxruntime dense us | onnxruntime GFLOP/s | efficiency |", "|---|---|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        efficiency = r["tvm_gflops_nonzero"] / r["ort_gflops_dense"] if r["ort_gflops_dense"] else 0.0
        lines.append(f"| {r['layer']} | {r['weight']} | {r['out']} | {r['skipped']:.0%} | {r.get('tile', '')} | {r['tvm_us']:.1f} | "
                     f"{r['tvm_gflops_nonzero']:.1f} | {r['ort_us']:.1f} | {r['ort_gflops_dense']:.1f} | {efficiency:.2f} |")
    lines += ["", f"## {PROFILE_MODEL}, {PROFILE_VARIANT}: where the time goes (1 thread, VM instrument, sum over calls)", "",
              "| VM call | us per inference | share |", "|---|---:|---:|"]
    for name, micros, share in shares[:15]:
        lines.append(f"| {name} | {micros:.1f} | {share:.1%} |")
    lines.append(f"| (other {max(0, len(shares) - 15)} calls) | {sum(m for _, m, _ in shares[15:]):.1f} | "
                 f"{sum(s for _, _, s in shares[15:]):.1%} |")
    return "\n".join(lines) + "\n"


READING_GUIDE = [
    "How the TVM builds run: every conv with groups = 1 is one direct-convolution kernel over flat pixel tiles",
    "(R output channels x P vectors of 16 pixels in zmm registers, zero R x 1 weight blocks skipped, bias / residual /",
    "activation fused, masked stores where a vector crosses a row end); the tile is picked per layer by a cost model",
    "(`deploy/tvm/conv_tiles.py`) and named in each build's `compile_report.json`: a dense weight gets the dense",
    "register-blocked tile, unstructured sparsity short 1-2 row blocks. Depthwise convs, linear layers and the other",
    "operators keep their kernels and schedules. Check a kernel with `objdump -d` on the built library: the hot loop is",
    "`vbroadcastss` + `vfmadd231ps` on registers, no accumulator loads or stores.",
    "",
    "Reading the 2-thread columns: the thread counts are those asked of both engines; when the load average above is",
    "higher than the 2 logical CPUs, neither engine gets a free second core (onnxruntime's own 2-thread / 1-thread",
    "ratio in the scaling table shows it), so those columns and the scaling table measure the shared machine's",
    "contention as much as the kernels.", ""]

TARGETS = (  # (model, candidate, {threads: target ratio against dense onnxruntime})
    ("resnet20", "tvm 90% 16x1", {1: 4.0, 2: 3.0}), ("mobilenetv2-small", "tvm 90% 16x1", {1: 2.5, 2: 2.0}),
    ("resnet18-224", "tvm 90% 16x1", {1: 3.0, 2: 3.0}), ("lenet-style", "tvm 92% unstructured", {1: 1.5, 2: 1.5}),
    ("resnet18-224", "tvm dense", {1: 0.9, 2: 0.9}), ("resnet20", "tvm dense", {1: 0.9, 2: 0.9}),
    ("mobilenetv2-small", "tvm dense", {1: 0.9, 2: 0.9}), ("lenet-style", "tvm dense", {1: 0.9, 2: 0.9}),
    ("lenet5", "tvm dense", {1: 0.9, 2: 0.9}), ("lenet5", "tvm default run", {1: 1.0, 2: 1.0}),
)
SCALING = (("resnet18-224", "tvm 90% 16x1", 1.6), ("resnet20", "tvm 90% 16x1", 1.3))  # 2 threads over 1, same engine


def _targets(results: dict, threads: list[int]) -> list[str]:
    """The targets table: each target ratio against the measured median and min ratios."""
    lines = ["## Targets", "", "| model | candidate | " + " | ".join(f"{t} thread(s): target, median / min" for t in threads) + " |",
             "|---|---|" + "---|" * len(threads)]
    for model, candidate, goals in TARGETS:
        cells = []
        for count in threads:
            samples = results[count].get(model, {}).get("samples", {})
            target = goals.get(count, goals[max(goals)])
            if candidate not in samples:
                cells.append(f">= {target:g}x: not measured")
                continue
            base, row = samples["onnxruntime dense"], samples[candidate]
            median, low = base[1] / row[1], base[0] / row[0]
            verdict = "met" if median >= target and low >= target else "NOT met"
            cells.append(f">= {target:g}x: {median:.2f}x / {low:.2f}x {verdict}")
        lines.append(f"| {model} | {candidate} | " + " | ".join(cells) + " |")
    return lines + [""]


def _scaling(results: dict, threads: list[int], pools: dict) -> list[str]:
    """2-thread over 1-thread speed of the same candidate (medians and mins of separate processes)."""
    if not {1, 2} <= set(threads):
        return []
    pool = pools.get(2)
    lines = ["## Thread scaling (TVM at 2 threads over TVM at 1, and onnxruntime's)", "",
             "| model | candidate | target | TVM median / min | onnxruntime dense median / min |", "|---|---|---:|---|---|"]
    for model, candidate, target in SCALING:
        one, two = (results[c].get(model, {}).get("samples", {}) for c in (1, 2))
        if candidate not in one or candidate not in two:
            continue
        ours = (one[candidate][1] / two[candidate][1], one[candidate][0] / two[candidate][0])
        theirs = (one["onnxruntime dense"][1] / two["onnxruntime dense"][1], one["onnxruntime dense"][0] / two["onnxruntime dense"][0])
        verdict = "met" if min(ours) >= target else "NOT met"
        lines.append(f"| {model} | {candidate} | {target:g}x | {ours[0]:.2f}x / {ours[1]:.2f}x {verdict} | {theirs[0]:.2f}x / {theirs[1]:.2f}x |")
    if pool:
        lines += ["", f"What the machine gave a second thread during the 2-thread timing: TVM's pool ran a trivially parallel loop "
                      f"{pool['median']:.2f}x (median) / {pool['min']:.2f}x (min) faster than the same loop serial (2.0x = a free core)."]
    return lines + [""]


def _llvm_cpu() -> str:
    import tvm

    return str(tvm.target.codegen.llvm_get_system_cpu())


def _versions() -> str:
    from importlib import metadata

    return ", ".join(f"{name} {metadata.version(name)}" for name in ("torch", "onnx", "onnxruntime", "apache-tvm"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the rounds, no 95%% variant")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ", ".join(MODELS))
    parser.add_argument("--threads", default="1,2", help="thread counts, each measured in its own process")
    parser.add_argument("--lenet-run", type=Path, default=None, help="a `compress run` directory: use its exported LeNet-5")
    parser.add_argument("--settle", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "whole_model.md")
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure is not None:  # a timing process: the plan in, results as JSON out
        plan = json.loads(args.measure.read_text())
        threads = int(os.environ["TVM_NUM_THREADS"])
        start_load = os.getloadavg()[0]
        result = {"measure": measure(plan, threads=threads, settle=args.settle, scale=args.scale)}
        if threads == 1 and PROFILE_MODEL in plan and PROFILE_VARIANT in plan[PROFILE_MODEL]["tvm"]:
            result["profile"] = layer_profile(plan, PROFILE_MODEL, PROFILE_VARIANT)
        result["pool"] = pool_check()
        result["load"] = [start_load, os.getloadavg()[0]]
        print(json.dumps(result))
        return
    threads = [int(t) for t in args.threads.split(",")]
    models = {name: MODELS[name] for name in args.models.split(",")}
    if args.quick:
        models = {name: (shape, tuple(v for v in variants if not v.startswith("95")), rounds, burst)
                  for name, (shape, variants, rounds, burst) in models.items()}
    with tempfile.TemporaryDirectory(prefix="whole-model-") as tmp:
        work = Path(tmp)
        plan = build(work, models=models, lenet_run=args.lenet_run)
        (work / "plan.json").write_text(json.dumps(plan))
        results, profile, loads, pools = {}, None, {}, {}
        for count in threads:
            print(f"timing with {count} thread(s)", file=sys.stderr, flush=True)
            command = [sys.executable, __file__, "--measure", str(work / "plan.json"), "--settle", str(args.settle),
                       "--scale", str(0.25 if args.quick else 1.0)]
            done = subprocess.run(command, env={**os.environ, "TVM_NUM_THREADS": str(count)}, capture_output=True, text=True, check=True)
            output = json.loads(done.stdout.strip().splitlines()[-1])
            results[count], loads[count], pools[count] = output["measure"], output["load"], output["pool"]
            profile = output.get("profile", profile)
    command = "python benchmarks/whole_model.py " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.write_text(markdown(results, profile or ([], []), command=command.strip(), threads=threads, loads=loads, pools=pools))
    args.out.with_suffix(".json").write_text(json.dumps({"results": results, "profile": profile, "load": loads, "pool": pools}, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
