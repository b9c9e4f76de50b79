"""Batch-1 latency and library size of ternary code kernels against float ones and onnxruntime.

Models (``compress.models``, seeded random weights: speed depends on the zero pattern, not on the
values): LeNet-5 (1x28x28), ResNet-20 and MobileNetV2 (3x32x32). Variants, each compiled by
``deploy.tvm.compile_onnx`` for the ``host`` preset:

- ``fp32 dense``: the exported model;
- ``fp32 sparse``: 90% of the 16x1 blocks (L2 norm, per layer) zeroed in every conv / linear weight
  except the first conv, the last linear layer and depthwise convs;
- ``ternary sparse``: the same zero blocks, the kept weights projected per output channel with TWN
  (``compress.quant.project_twn``), so the compile stage recognises them and stores 2-bit codes;
- ``int8-weight dense`` / ``int8-weight sparse``: the same layers (dense, or with the same zero
  blocks) projected to symmetric per-channel int8 (``compress.quant.project_int8``): the compile
  stage stores int8 codes and computes in float32 (weight-only int8; no int8 activations).

Against onnxruntime on the dense model, fp32 and int8 (static QDQ from ``onnxruntime.quantization``,
per-channel weights, 8 random calibration inputs). Each thread count runs in its own process
(``TVM_NUM_THREADS`` and onnxruntime's ``intra_op_num_threads``); candidates run in rotating
round-robin order, each round a burst of calls of which the first ``SETTLE`` are untimed. Also
written: per-layer times (VM instrument, min over calls) of LeNet-5's fp32 sparse and ternary
sparse builds, and every library's size.

Usage::

    python benchmarks/quantized_compute.py [--quick] [--threads 1,2] [--out benchmarks/quantized_compute.md]
"""

from __future__ import annotations

import argparse
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
from deploy.bench.vm_calls import vm_call_seconds  # noqa: E402  (after the path insert)

MODELS = {"lenet5": (1, 1, 28, 28), "resnet20": (1, 3, 32, 32), "mobilenetv2-small": (1, 3, 32, 32)}
VARIANTS = ("fp32 dense", "fp32 sparse", "ternary sparse", "int8-weight dense", "int8-weight sparse")
SPARSITY, BLOCK_ROWS, SETTLE = 0.9, 16, 3


def _prunable(model):
    """Conv / linear modules to prune and ternarize: not the first conv, the last linear, depthwise."""
    import torch

    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    return [m for m in layers[1:-1] if not (isinstance(m, torch.nn.Conv2d) and m.groups > 1)]


def _block_mask(flat, *, rows: int, ratio: float):
    import torch

    padded_rows = -(-flat.shape[0] // rows) * rows
    padded = torch.zeros(padded_rows, flat.shape[1])
    padded[: flat.shape[0]] = flat
    norms = padded.view(-1, rows, flat.shape[1]).norm(dim=1)
    keep = norms > torch.quantile(norms.flatten(), ratio)
    return keep.repeat_interleave(rows, 0)[: flat.shape[0]]


def make_model(name: str, variant: str):
    """The torch model of ``variant`` (see the module docstring)."""
    import torch

    from compress.models import create_model
    from compress.quant import project_int8, project_twn

    torch.manual_seed(0)
    model = create_model(name).eval()
    if variant == "fp32 dense":
        return model
    with torch.no_grad():
        for module in _prunable(model):
            flat = module.weight.view(module.weight.shape[0], -1)
            mask = _block_mask(flat, rows=BLOCK_ROWS, ratio=SPARSITY if "sparse" in variant else 0.0)
            if variant.startswith("int8"):
                flat.copy_(project_int8(flat * mask, per_channel=True, mask=mask).dequantize().view_as(flat))
            elif variant == "ternary sparse":
                flat.copy_(project_twn(flat * mask, per_channel=True, mask=mask).dequantize().view_as(flat))
            else:
                flat.mul_(mask)
    return model


def build(work: Path, *, models: dict) -> dict:
    """Export and compile every variant; quantize the dense ONNX for onnxruntime int8."""
    import onnx
    import torch

    from deploy.onnx.torch_export import export_dense
    from deploy.tvm.compile import compile_onnx

    plan = {}
    for name, shape in models.items():
        entry = {"shape": list(shape), "onnx": {}, "tvm": {}, "sizes": {}, "layers": {}}
        for variant in VARIANTS:
            path = work / f"{name}-{variant.replace(' ', '-')}.onnx"
            onnx.save(export_dense(make_model(name, variant), torch.zeros(shape), opset=17), str(path))
            print(f"compiling {name} {variant}", file=sys.stderr, flush=True)
            result = compile_onnx(path, target="host", out_dir=work / path.stem, input_shape=shape)
            entry["onnx"][variant], entry["tvm"][variant] = str(path), str(result.library_path)
            entry["sizes"][variant] = result.library_path.stat().st_size
            entry["layers"][variant] = [layer.to_dict() for layer in result.layers]
        entry["onnx"]["int8 qdq"] = str(_quantize_static(Path(entry["onnx"]["fp32 dense"]), work, shape))
        plan[name] = entry
    return plan


def _quantize_static(dense: Path, work: Path, shape) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.batches = iter([{"input": rng.random(shape).astype(np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.batches, None)

    out = work / f"{dense.stem}-int8.onnx"
    quantize_static(str(dense), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return out


def _candidates(entry: dict, threads: int):
    import tvm  # before onnxruntime: the other order fails to register TVM's script printer
    from tvm import relax

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    x = np.random.default_rng(0).random(entry["shape"]).astype(np.float32)
    candidates, errors = {}, {}
    for variant in ("fp32 dense", "int8 qdq"):
        session = ort.InferenceSession(entry["onnx"][variant], options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        candidates[f"onnxruntime {variant}"] = (lambda s=session, n=name: s.run(None, {n: x}))
    tensor = tvm.runtime.tensor(x)
    for variant, library in entry["tvm"].items():
        main = relax.VirtualMachine(tvm.runtime.load_module(library), tvm.cpu())["main"]
        candidates[f"tvm {variant}"] = (lambda f=main: f(tensor))
        session = ort.InferenceSession(entry["onnx"][variant], options, providers=["CPUExecutionProvider"])
        expected = session.run(None, {session.get_inputs()[0].name: x})[0]
        errors[variant] = float(np.abs(main(tensor).numpy() - expected).max())
    return candidates, errors


def measure(plan: dict, *, threads: int, rounds: int, burst: int) -> dict:
    """Interleaved timing of every candidate of every model (inside the process of ``threads``)."""
    results = {}
    for model, entry in plan.items():
        candidates, errors = _candidates(entry, threads)
        names = list(candidates)
        samples = {name: [] for name in names}
        for index in range(rounds):
            for name in names[index % len(names):] + names[: index % len(names)]:
                for repeat in range(burst):
                    start = time.perf_counter_ns()
                    candidates[name]()
                    if repeat >= SETTLE:
                        samples[name].append((time.perf_counter_ns() - start) / 1e6)
        results[model] = {"ms": {n: [float(np.min(s)), float(np.median(s))] for n, s in samples.items()}, "max_abs_error": errors}
    return results


def layer_times(entry: dict, variant: str, *, calls: int) -> dict[str, float]:
    """Microseconds per call of each PrimFunc of one build (VM instrument; min over ``calls`` inferences)."""
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.runtime.load_module(entry["tvm"][variant]), tvm.cpu())
    tensor = tvm.runtime.tensor(np.random.default_rng(0).random(entry["shape"]).astype(np.float32))
    per_call: dict[str, list[float]] = {}
    for name, seconds in (call for run in vm_call_seconds(vm, tensor, calls=calls, warmup=3) for call in run):
        per_call.setdefault(name, []).append(seconds)
    return {name: min(times) * 1e6 for name, times in per_call.items()}


def _cpu() -> str:
    """``/proc/cpuinfo``'s model name, LLVM's name of the core and the logical CPU count."""
    import tvm

    name = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")), platform.processor())
    return f"{name} (LLVM: {tvm.target.codegen.llvm_get_system_cpu()}, {os.cpu_count()} logical CPUs, shared with other jobs)"


def _isa() -> str:
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    return ", ".join(f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni") if f" {f}" in flags)


def _ratio(base: list[float], other: list[float]) -> str:
    """``base / other`` of the medians and of the mins (how many times faster ``other`` is)."""
    return f"{base[1] / other[1]:.2f}x / {base[0] / other[0]:.2f}x"


def markdown(plan: dict, results: dict, *, command: str, cpu: str, isa: str) -> str:
    """The benchmark's markdown page."""
    lines = ["# Ternary code kernels: batch-1 latency and library size", "",
             f"Written by `{command}` on {time.strftime('%Y-%m-%d')}; CPU: {cpu}; ISA: {isa}. "
             "Times in ms (median / min of interleaved rounds); ratios are median / min.", ""]
    for threads, result in results.items():
        lines += [f"## {threads} thread(s)", "", "| model | candidate | median ms | min ms | vs onnxruntime fp32 dense | max abs error vs onnxruntime |",
                  "|---|---|---|---|---|---|"]
        for model, data in result["measure"].items():
            base = data["ms"]["onnxruntime fp32 dense"]
            for name, ms in data["ms"].items():
                error = data["max_abs_error"].get(name.removeprefix("tvm "), None)
                lines.append(f"| {model} | {name} | {ms[1]:.3f} | {ms[0]:.3f} | {_ratio(base, ms)} | "
                             f"{'-' if error is None else f'{error:.1e}'} |")
        lines.append("")
    lines += ["## Ternary sparse against fp32 sparse (same zero blocks)", "", "| model | threads | ternary speed-up (median / min) |", "|---|---|---|"]
    for threads, result in results.items():
        for model, data in result["measure"].items():
            lines.append(f"| {model} | {threads} | {_ratio(data['ms']['tvm fp32 sparse'], data['ms']['tvm ternary sparse'])} |")
    lines += ["", "## Library sizes (host build) and weight payload of the code kernels", "",
              "| model | " + " | ".join(VARIANTS) + " | ternary build: code-kernel weight payload |", "|---|" + "---|" * (len(VARIANTS) + 1)]
    for model, entry in plan.items():
        payload = sum(layer.get("payload_bytes", 0) for layer in entry["layers"]["ternary sparse"])  # ternary build
        lines.append(f"| {model} | " + " | ".join(f"{entry['sizes'][v] / 1024:.1f} KiB" for v in VARIANTS) + f" | {payload / 1024:.1f} KiB |")
    if "layers" in results.get(1, {}):
        lines += ["", "## LeNet-5 per layer, 1 thread (VM instrument, min of 200 inferences, us)", "",
                  "| layer | fp32 sparse kernel | us | ternary kernel | us | ternary speed-up | int8-weight kernel | us | int8 speed-up |",
                  "|---|---|---|---|---|---|---|---|---|"]
        times, layers = results[1]["layers"], plan["lenet5"]["layers"]
        for fp32, ternary, int8 in zip(layers["fp32 sparse"], layers["ternary sparse"], layers["int8-weight sparse"]):
            a, b, c = (times[v].get(layer["name"]) for v, layer in
                       (("fp32 sparse", fp32), ("ternary sparse", ternary), ("int8-weight sparse", int8)))
            lines.append(f"| {fp32['name']} {'x'.join(map(str, fp32['weight_shape']))} | {fp32['kernel']} | {a or 0:.2f} | "
                         f"{ternary['kernel']} | {b or 0:.2f} | {f'{a / b:.2f}x' if a and b else '-'} | "
                         f"{int8['kernel']} | {c or 0:.2f} | {f'{a / c:.2f}x' if a and c else '-'} |")
    return "\n".join(lines + _targets(plan, results) + NOTES) + "\n"


NOTES = [
    "", "## Notes", "",
    "- The default run's arm64 library (the issue's size target) is measured by `tests/deploy/test_quantized_lenet.py` "
    "(a default-run-like LeNet-5) and by compiling a `compress run --target arm64` export: see the commit messages "
    "and the report's kernel table (library vs ONNX weight bytes per layer).",
    "- Ternary linear kernel (AVX-512): per kept 16x1 block one index load, one input broadcast, two mask loads "
    "(`kmovw` straight from the code word) and two merge-masked `vaddps`, against one vector load and one FMA for "
    "float: at these sizes the float blocks stay in L2, so the 16x smaller codes do not pay for the second vector "
    "operation. They would for weights that do not fit the cache (a dense ternary 400k-weight layer: 1.6 MB float, "
    "100 KB codes).",
    "- Ternary / int8 convolutions use their own row kernel (codes expanded to float once per call, then the float "
    "row kernel's loop); the float build uses the flat-pixel tiled kernel, which is faster on these layers. Feeding "
    "the expanded blocks to the tiled kernel was tried: the arm64 library of the default run grew from 97.7 KiB to "
    "129.7 KiB (its unrolled tiles) and the payload over the ONNX's to 1.38x, and on the host the build "
    "constant-folded the expansion (its inputs are all constants), storing float blocks again, so it was not kept.",
    "- Where the ternary ResNet-20 / MobileNetV2 builds lose their time (VM instrument, 1 thread, ResNet-20): "
    "the code convolutions take about what the float ones take (80 us vs 77 us in all), but the phase-pad copies "
    "before them take 125 us against 30 us in the fp32 build, with the same TIR; the int8-weight build, which uses "
    "the same code kernel and pads, does not show it (0.091 vs 0.085 ms). Not found yet.",
    "- int8 here is weight-only: the library stores int8 codes and per-channel scales, activations stay float32. "
    "int8 activations (calibration, QDQ export, VNNI / SDOT kernels) are not built.",
]


def _targets(plan: dict, results: dict) -> list[str]:
    """The issue's targets with the measured numbers (met / not met)."""
    lines = ["", "## Targets", ""]
    if "layers" in results.get(1, {}):
        times, layers = results[1]["layers"], plan["lenet5"]["layers"]
        for fp32, ternary in zip(layers["fp32 sparse"], layers["ternary sparse"]):
            if not ternary["kernel"].startswith("ternary"):
                continue
            a, b = times["fp32 sparse"].get(fp32["name"]), times["ternary sparse"].get(ternary["name"])
            if a and b:
                goal = 1.2 if ternary["op"] == "matmul" else 1.0
                verdict = "met" if a / b >= goal else "NOT met"
                lines.append(f"- LeNet-5 {ternary['op']} {'x'.join(map(str, ternary['weight_shape']))}: ternary {a / b:.2f}x the "
                             f"fp32 sparse kernel (target >= {goal}x{' for linear layers' if goal > 1 else ': never slower'}): {verdict}.")
    for threads, result in results.items():
        data = result["measure"].get("resnet20")
        if data and "tvm int8-weight dense" in data["ms"]:
            ms = data["ms"]
            lines.append(f"- ResNet-20 int8 dense at {threads} thread(s): {_ratio(ms['onnxruntime fp32 dense'], ms['tvm int8-weight dense'])} "
                         f"of onnxruntime fp32 dense (target >= 1.5x) and {_ratio(ms['onnxruntime int8 qdq'], ms['tvm int8-weight dense'])} "
                         "of onnxruntime int8 (target >= 1.0x): NOT met as specified: the build stores int8 weights but computes "
                         "in float32 (no int8 activations, no VNNI kernel).")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few rounds (a smoke run)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "quantized_compute.md"))
    parser.add_argument("--plan", help=argparse.SUPPRESS)  # child process: measure this plan
    args = parser.parse_args(argv)
    rounds, burst = (4, 8) if args.quick else (30, 13)
    if args.plan:
        plan = json.loads(Path(args.plan).read_text())
        result = {"measure": measure(plan, threads=int(os.environ["TVM_NUM_THREADS"]), rounds=rounds, burst=burst)}
        if os.environ["TVM_NUM_THREADS"] == "1":
            result["layers"] = {v: layer_times(plan["lenet5"], v, calls=200) for v in ("fp32 sparse", "ternary sparse", "int8-weight sparse")}
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        plan = build(Path(tmp), models=MODELS)
        plan_path = Path(tmp) / "plan.json"
        plan_path.write_text(json.dumps(plan))
        results = {}
        for threads in (int(t) for t in args.threads.split(",")):
            env = {**os.environ, "TVM_NUM_THREADS": str(threads)}
            done = subprocess.run([sys.executable, __file__, "--plan", str(plan_path)] + (["--quick"] if args.quick else []),
                                  env=env, capture_output=True, text=True, check=True)
            results[threads] = json.loads(done.stdout.strip().splitlines()[-1])
    command = "python benchmarks/quantized_compute.py" + (" --quick" if args.quick else "") + f" --threads {args.threads}"
    Path(args.out).write_text(markdown(plan, results, command=command, cpu=_cpu(), isa=_isa()))
    kept = {model: {key: entry[key] for key in ("shape", "sizes", "layers")} for model, entry in plan.items()}  # no temp paths
    Path(args.out).with_suffix(".json").write_text(json.dumps({"plan": kept, "results": results}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
