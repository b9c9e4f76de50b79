"""Batch-1 latency and library size of the int8 and ternary kernels against float ones and onnxruntime.

Models (``compress.models``, seeded random weights: speed depends on the zero pattern, not on the
values): LeNet-5 (1x28x28), ResNet-20 and MobileNetV2 (3x32x32). Variants, each compiled by
``deploy.tvm.compile_onnx`` for the ``host`` preset:

- ``fp32 dense``: the exported model;
- ``fp32 sparse``: 90% of the 16x1 blocks (L2 norm, per layer) zeroed in every conv / linear weight
  except the first conv, the last linear layer and depthwise convs;
- ``ternary sparse``: the same zero blocks, the kept weights projected per output channel with TWN
  (``compress.quant.project_twn``), so the compile stage recognises them and stores 2-bit codes;
- ``int8 dense`` / ``int8 sparse``: the dense model, or the model with 90% of its blocks of 16 output
  channels x 4 input channels (at one tap) zeroed in the same layers (the int8 kernels' block), made
  a QDQ model by onnxruntime's ``quantize_static`` (per-channel symmetric int8 weights, per-tensor
  symmetric int8 activations: zero points 0, 8 random calibration inputs); the compile stage runs it
  with int8 activations (u8 x s8 -> s32 dot products, ``vpdpbusd`` with AVX-512 VNNI).

Against onnxruntime on the dense model: fp32, the same symmetric QDQ file as the TVM int8 dense build
(``int8 qdq``, whose outputs the TVM int8 builds are compared with) and onnxruntime's default static
QDQ (asymmetric activations, ``int8 qdq default``: its ReLUs fold into the zero point, so it runs
fewer operators). Each thread count runs in its own process
(``TVM_NUM_THREADS`` and onnxruntime's ``intra_op_num_threads``); candidates run in rotating
round-robin order, each round a burst of calls of which the first ``SETTLE`` are untimed. Also
written: per-layer times (VM instrument, min over calls; a layer's pad / quantize-pack copy included)
of the fp32 sparse, ternary sparse and int8 sparse builds of LeNet-5 and ResNet-20, and every
library's size.

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
VARIANTS = ("fp32 dense", "fp32 sparse", "ternary sparse", "int8 dense", "int8 sparse")
INT8_VARIANTS = ("int8 dense", "int8 sparse")
SPARSITY, BLOCK_ROWS, QUAD, SETTLE = 0.9, 16, 4, 3
LAYER_VARIANTS = ("fp32 sparse", "ternary sparse", "int8 sparse")
LAYER_MODELS = ("lenet5", "resnet20")


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


def _quad_mask(weight, *, rows: int, ratio: float):
    """Keep-mask of ``weight [O, C, ...]`` over blocks of ``rows`` output channels x ``QUAD`` input
    channels at one tap (the int8 kernels' block), the ``ratio`` of lowest L2 norm zeroed."""
    import torch

    out, channels = weight.shape[:2]
    padded = torch.zeros(-(-out // rows) * rows, -(-channels // QUAD) * QUAD, *weight.shape[2:])
    padded[:out, :channels] = weight
    blocks = padded.view(padded.shape[0] // rows, rows, padded.shape[1] // QUAD, QUAD, -1)
    norms = blocks.norm(dim=(1, 3))
    keep = (norms > torch.quantile(norms.flatten(), ratio))[:, None, :, None, :].expand_as(blocks)
    return keep.reshape(padded.shape)[:out, :channels].reshape(weight.shape)


def make_model(name: str, variant: str):
    """The torch model of ``variant`` (see the module docstring)."""
    import torch

    from compress.models import create_model
    from compress.quant import project_twn

    torch.manual_seed(0)
    model = create_model(name).eval()
    if variant == "fp32 dense":
        return model
    if variant == "int8 dense":
        return model
    with torch.no_grad():
        for module in _prunable(model):
            if variant == "int8 sparse":
                module.weight.mul_(_quad_mask(module.weight, rows=BLOCK_ROWS, ratio=SPARSITY))
                continue
            flat = module.weight.view(module.weight.shape[0], -1)
            mask = _block_mask(flat, rows=BLOCK_ROWS, ratio=SPARSITY)
            if variant == "ternary sparse":
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
            if variant in INT8_VARIANTS:
                path = _quantize_static(path, work, shape, symmetric=True)
            print(f"compiling {name} {variant}", file=sys.stderr, flush=True)
            result = compile_onnx(path, target="host", out_dir=work / path.stem, input_shape=shape)
            entry["onnx"][variant], entry["tvm"][variant] = str(path), str(result.library_path)
            entry["sizes"][variant] = result.library_path.stat().st_size
            entry["layers"][variant] = [layer.to_dict() for layer in result.layers]
        entry["onnx"]["int8 qdq"] = entry["onnx"]["int8 dense"]
        entry["onnx"]["int8 qdq default"] = str(_quantize_static(Path(entry["onnx"]["fp32 dense"]), work, shape, symmetric=False))
        plan[name] = entry
    return plan


def _quantize_static(dense: Path, work: Path, shape, *, symmetric: bool) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.batches = iter([{"input": rng.random(shape).astype(np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.batches, None)

    out = work / f"{dense.stem}-{'qdq' if symmetric else 'qdq-default'}.onnx"
    extra = {"ActivationSymmetric": True, "WeightSymmetric": True} if symmetric else {}
    quantize_static(str(dense), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, extra_options=extra)
    return out


def _candidates(entry: dict, threads: int):
    import tvm  # before onnxruntime: the other order fails to register TVM's script printer
    from tvm import relax

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    x = np.random.default_rng(0).random(entry["shape"]).astype(np.float32)
    candidates, errors = {}, {}
    for variant in ("fp32 dense", "int8 qdq", "int8 qdq default"):
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
        if variant in INT8_VARIANTS:
            errors[f"{variant} steps"] = errors[variant] / _output_step(entry["onnx"][variant])
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


def _output_step(qdq_path: str) -> float:
    """Quantization step of a QDQ model's output (the scale of the DequantizeLinear producing it)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(qdq_path)
    node = next(n for n in model.graph.node if model.graph.output[0].name in n.output)
    scales = {init.name: init for init in model.graph.initializer}
    if node.op_type != "DequantizeLinear" or node.input[1] not in scales:
        return float("nan")
    return float(numpy_helper.to_array(scales[node.input[1]]))


def layer_us(times: dict[str, float], name: str) -> float:
    """A layer's microseconds: its kernel plus its pad copy or quantize-pack call."""
    return sum(times.get(key, 0.0) for key in (name, f"phase_pad_{name}", f"quantize_pack_{name}"))


def markdown(plan: dict, results: dict, *, command: str, cpu: str, isa: str) -> str:
    """The benchmark's markdown page."""
    lines = ["# int8 and ternary kernels: batch-1 latency and library size", "",
             f"Written by `{command}` on {time.strftime('%Y-%m-%d')}; CPU: {cpu}; ISA: {isa}. "
             "Times in ms (median / min of interleaved rounds); ratios are median / min. The error column is the "
             "largest absolute difference from onnxruntime running the same ONNX file (for the int8 builds, the "
             "same QDQ file, also in quantization steps of the output).", ""]
    for threads, result in results.items():
        lines += [f"## {threads} thread(s)", "",
                  "| model | candidate | median ms | min ms | vs onnxruntime fp32 dense | vs onnxruntime int8 qdq (same file) "
                  "| max abs error vs onnxruntime |", "|---|---|---|---|---|---|---|"]
        for model, data in result["measure"].items():
            base, int8 = data["ms"]["onnxruntime fp32 dense"], data["ms"]["onnxruntime int8 qdq"]
            for name, ms in data["ms"].items():
                variant = name.removeprefix("tvm ")
                error = data["max_abs_error"].get(variant)
                steps = data["max_abs_error"].get(f"{variant} steps")
                shown = "-" if error is None else f"{error:.1e}" + ("" if steps is None else f" ({steps:.2f} steps)")
                lines.append(f"| {model} | {name} | {ms[1]:.3f} | {ms[0]:.3f} | {_ratio(base, ms)} | {_ratio(int8, ms)} | {shown} |")
        lines.append("")
    lines += ["## Against fp32 sparse (same model, same share of zero blocks)", "",
              "| model | threads | ternary sparse speed-up | int8 sparse speed-up |", "|---|---|---|---|"]
    for threads, result in results.items():
        for model, data in result["measure"].items():
            ms = data["ms"]
            lines.append(f"| {model} | {threads} | {_ratio(ms['tvm fp32 sparse'], ms['tvm ternary sparse'])} | "
                         f"{_ratio(ms['tvm fp32 sparse'], ms['tvm int8 sparse'])} |")
    lines += ["", "## Library sizes (host build) and weight payload of the code kernels", "",
              "| model | " + " | ".join(VARIANTS) + " | ternary build: code-kernel weight payload | int8 sparse build: int8 weight payload |",
              "|---|" + "---|" * (len(VARIANTS) + 2)]
    for model, entry in plan.items():
        payloads = [sum(layer.get("payload_bytes", 0) for layer in entry["layers"][v]) for v in ("ternary sparse", "int8 sparse")]
        lines.append(f"| {model} | " + " | ".join(f"{entry['sizes'][v] / 1024:.1f} KiB" for v in VARIANTS) + " | "
                     + " | ".join(f"{p / 1024:.1f} KiB" for p in payloads) + " |")
    if "layers" in results.get(1, {}):
        lines += _layer_tables(plan, results[1]["layers"])
    return "\n".join(lines + _targets(plan, results) + NOTES) + "\n"


def _layer_tables(plan: dict, times: dict) -> list[str]:
    lines = []
    for model in LAYER_MODELS:
        lines += ["", f"## {model} per layer, 1 thread (VM instrument, min of 200 inferences, us; pad / quantize-pack copy included)", "",
                  "| layer | fp32 sparse kernel | us | ternary kernel | us | ternary speed-up | int8 kernel | us | int8 speed-up |",
                  "|---|---|---|---|---|---|---|---|---|"]
        layers = plan[model]["layers"]
        totals = [0.0, 0.0, 0.0]
        for fp32, ternary, int8 in _same_layers(*(layers[v] for v in LAYER_VARIANTS)):
            a, b, c = (layer_us(times[model][v], layer["name"]) for v, layer in zip(LAYER_VARIANTS, (fp32, ternary, int8)))
            totals = [totals[0] + a, totals[1] + b, totals[2] + c]
            lines.append(f"| {fp32['name']} {'x'.join(map(str, fp32['weight_shape']))} | {fp32['kernel']} | {a:.2f} | "
                         f"{ternary['kernel']} | {b:.2f} | {f'{a / b:.2f}x' if a and b else '-'} | "
                         f"{int8['kernel']} | {c:.2f} | {f'{a / c:.2f}x' if a and c else '-'} |")
        a, b, c = totals
        lines.append(f"| all layers | | {a:.2f} | | {b:.2f} | {a / b:.2f}x | | {c:.2f} | {a / c:.2f}x |")
    return lines


def _same_layers(first: list, *others: list):
    """Rows of the layers of ``first`` with, from each list of ``others``, the next unused layer of the
    same weight shape (the passes report layers in their own order)."""
    used = [set() for _ in others]
    for layer in first:
        row = [layer]
        for index, other in enumerate(others):
            match = next(i for i, candidate in enumerate(other) if i not in used[index]
                         and candidate["weight_shape"] == layer["weight_shape"])
            used[index].add(match)
            row.append(other[match])
        yield row


NOTES = [
    "", "## Notes", "",
    "- int8 builds: QuantizeLinear, zero padding and stride phases are one copy per layer (`quantize_pack`: "
    "unsigned byte quads, four input channels per int32, `u = q + 128`); the convolution multiplies 16 flat "
    "output pixels x 4 input channels by one broadcast weight quad per `vpdpbusd` (64 multiply-adds) with 8-16 "
    "output channels x 1-3 pixel vectors of accumulators; the +128 offset and the activation zero point are "
    "removed by a per-channel constant the accumulators start from; bias, requantization (QuantizeLinear -> "
    "DequantizeLinear), ReLU / clip and residual adds run in float registers before the only store. int8 "
    "sparse skips blocks of 16 (or 8) output channels x 4 input channels at one tap.",
    "- Threads: int8 kernels run in parallel only from 4M multiply-adds (`deploy.tvm.int8_qdq_fusion.PARALLEL_MIN_MACS`), "
    "so every ResNet-20 layer at 32 px runs on one thread; built with a 1M threshold the int8 ResNet-20 took "
    "0.235 ms at 2 threads against 0.169 ms serial (the second thread's wake-up costs more than a 2.4M-MAC layer "
    "takes), so the 2-thread rows measure the same serial kernels.",
    "- arm64: the int8 kernels compile with the portable dot product (byte shifts and int32 multiply-adds; "
    "checked under qemu against onnxruntime by `tests/deploy/test_int8_qdq.py`). SDOT needs the `+dotprod` "
    "feature, which the arm64 presets (plain `+neon`, any Armv8-A) do not declare, so it is not used yet.",
    "- onnxruntime's QDQ models here are slower than its fp32 model: with symmetric activations every ReLU, "
    "residual add and pooling keeps a DequantizeLinear / QuantizeLinear pair around it; its default static "
    "quantization (asymmetric activations) folds the ReLUs into zero points and is shown as "
    "`onnxruntime int8 qdq default`.",
    "- The default run's arm64 library (the issue's size target) is measured by `tests/deploy/test_quantized_lenet.py` "
    "(a default-run-like LeNet-5) and by compiling a `compress run --target arm64` export: see the commit messages "
    "and the report's kernel table (library vs ONNX weight bytes per layer).",
    "- Ternary linear kernel (AVX-512): per kept 16x1 block one index load, one input broadcast, two mask loads "
    "(`kmovw` straight from the code word) and two merge-masked `vaddps`, against one vector load and one FMA for "
    "float: at these sizes the float blocks stay in L2, so the 16x smaller codes do not pay for the second vector "
    "operation. They would for weights that do not fit the cache (a dense ternary 400k-weight layer: 1.6 MB float, "
    "100 KB codes).",
    "- Ternary convolutions use their own row kernel (codes expanded to float once per call, then the float "
    "row kernel's loop); the float build uses the flat-pixel tiled kernel, which is faster on these layers.",
    "- The ternary ResNet-20 / MobileNetV2 builds were 2x slower than here until their kernels declared "
    "`tirx.noalias` (TVM 0.27's spelling; the `tir.noalias` every kernel of the project sets is ignored): without "
    "it the ternary libraries had no no-alias `<name>_compute_` function for any kernel and their pad copies ran "
    "scalar (`phase_pad` of 16x32x32: 8.9 us against 1.4 us with AVX-512 stores). Float builds get the compute "
    "functions in these models, but a two-conv float model measured without them: the float kernels should "
    "declare the key too.",
]


def _targets(plan: dict, results: dict) -> list[str]:
    """The issue's targets with the measured numbers (met / not met)."""
    lines = ["", "## Targets", ""]
    for threads, result in results.items():
        ms = result["measure"]["lenet5"]["ms"]
        ratio = ms["tvm fp32 sparse"][1] / ms["tvm ternary sparse"][1]
        lines.append(f"- LeNet-5 ternary sparse at {threads} thread(s): {_ratio(ms['tvm fp32 sparse'], ms['tvm ternary sparse'])} "
                     f"of fp32 sparse (target >= 1.2x): {'met' if ratio >= 1.2 else 'NOT met'}.")
    for threads, result in results.items():
        data = result["measure"].get("resnet20")
        if not data:
            continue
        ms = data["ms"]
        int8 = ms["tvm int8 dense"]
        fp32 = ms["onnxruntime fp32 dense"][1] / int8[1]
        ort8 = min(ms["onnxruntime int8 qdq"][1], ms["onnxruntime int8 qdq default"][1]) / int8[1]
        sparse = ms["tvm int8 dense"][1] / ms["tvm int8 sparse"][1]
        lines.append(f"- ResNet-20 int8 dense at {threads} thread(s): {_ratio(ms['onnxruntime fp32 dense'], int8)} of onnxruntime "
                     f"fp32 dense (target >= 1.5x: {'met' if fp32 >= 1.5 else 'NOT met'}); {ort8:.2f}x (median) of the faster "
                     f"onnxruntime int8 QDQ (target >= 1.0x: {'met' if ort8 >= 1.0 else 'NOT met'}); int8 sparse "
                     f"{sparse:.2f}x faster than int8 dense (target > 1: {'met' if sparse > 1.0 else 'NOT met'}).")
    for model, data in results.get(1, {}).get("measure", {}).items():
        steps = [data["max_abs_error"].get(f"{v} steps", float("nan")) for v in INT8_VARIANTS]
        verdict = "met" if all(v <= 1.0 for v in steps) else "NOT met"
        lines.append(f"- {model}: TVM int8 outputs within {max(steps):.2f} quantization steps of onnxruntime's on the same "
                     f"QDQ file (target <= 1): {verdict}.")
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
            result["layers"] = {model: {v: layer_times(plan[model], v, calls=200) for v in LAYER_VARIANTS} for model in LAYER_MODELS}
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
