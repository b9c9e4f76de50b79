"""Peer engines side by side with our TVM build: batch-1 latency against onnxruntime fp32 on the dense ONNX.

Models (seeded random weights; speed depends on the zero pattern, not the values): ResNet-20 and
MobileNetV2 for 3x32x32 (``compress.models``), ResNet-18 at 3x224x224 (the test zoo, ``tests/zoo``).
BatchNorm is folded into the convs in torch first (``torch.fx`` fuse), so every engine gets the
same weights. Variant "90% 16x1": in every conv / linear weight except the first conv, the last
linear layer and depthwise convs, the 90% of 16x1 output-channel blocks with the smallest L2 norm are
zeroed (per layer; the same rule as ``benchmarks/whole_model.py``).

Engines, each in its own worker process (``benchmarks/peers_worker.py``) under its own interpreter:

- onnxruntime fp32 on the dense ONNX: the baseline of every ratio;
- onnxruntime int8: static QDQ (``quantize_static``, per-channel int8 weights, uint8 activations,
  MinMax over 8 random calibration batches) of the dense ONNX;
- our TVM build (``deploy.tvm.compile.compile_onnx(..., target="host")``, Relax VM) of each variant;
- DeepSparse (its own virtual environment) on each variant's ONNX, and on the int8 QDQ of the
  sparse variant;
- ExecuTorch with the XNNPACK delegate (its own virtual environment): ``torch.export`` of the
  folded model, lowered with ``XnnpackPartitioner`` to a ``.pte``, run by the pybindings runtime.

Timing: per thread count a fresh set of workers (onnxruntime ``intra_op_num_threads``,
``TVM_NUM_THREADS``, DeepSparse ``num_cores``, ExecuTorch's threadpool all set to that count). For
each model, rounds over all its candidates in a rotating order; in a round each candidate runs a
burst of ``--settle`` untimed then ``--timed`` timed calls in its worker while the other workers
wait on their pipes, so machine noise hits all engines alike. Per round and candidate the burst
median is kept; a candidate's ratio in a round is the baseline's burst median / its own. Reported:
median and min over rounds of the time, the median and max of the per-round ratio (higher is
faster), and the ratio of the overall minima.

Usage (one command; virtual environments are created under ``benchmarks/.scratch`` when missing)::

    python benchmarks/peers.py [--models resnet20,mobilenetv2-small,resnet18-224] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SCRATCH = ROOT / "benchmarks" / ".scratch"
WORKER = ROOT / "benchmarks" / "peers_worker.py"
ET_EXPORT = ROOT / "benchmarks" / "peers_executorch.py"
TORCH_WHEELS = Path("/opt/wheels")

# name -> (input shape, rounds, timed calls per burst)
MODELS = {
    "resnet20": ((1, 3, 32, 32), 60, 10),
    "mobilenetv2-small": ((1, 3, 32, 32), 60, 10),
    "resnet18-224": ((1, 3, 224, 224), 24, 3),
}
SPARSE = "90% 16x1"
BASELINE = "onnxruntime fp32 dense"
# venv name -> (pip requirements, import check)
VENVS = {
    "deepsparse": (["deepsparse==1.8.0"], "import deepsparse"),
    "executorch": (["executorch==1.5.1"], "from executorch.extension.pybindings import portable_lib"),
}


def build_torch(name: str):
    """The model ``name`` in eval mode with BatchNorm folded into its convs (``torch.fx`` fuse)."""
    import torch
    from torch.fx.experimental.optimization import fuse

    torch.manual_seed(0)
    if name == "resnet18-224":
        from tests.zoo import create

        model = create("resnet18")
    else:
        from compress.models import create_model

        model = create_model(name)
    return fuse(model.eval())


def block_prune(model, *, rows: int = 16, ratio: float = 0.9):
    """A copy of ``model`` with ``ratio`` of the ``rows x 1`` output-channel blocks zeroed per layer
    (smallest L2 norm), skipping the first conv, the last linear layer and depthwise convs."""
    import torch

    from deploy.tvm.row_blocks import row_blocks

    pruned = copy.deepcopy(model)
    layers = [m for m in pruned.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    for index, layer in enumerate(layers):
        depthwise = isinstance(layer, torch.nn.Conv2d) and layer.groups > 1
        if depthwise or index in (0, len(layers) - 1):
            continue
        flat = layer.weight.detach().numpy().reshape(layer.weight.shape[0], -1)
        blocks = row_blocks(flat, rows)
        norms = np.linalg.norm(blocks, axis=1)
        kept = (blocks * (norms > np.quantile(norms, ratio))[:, None, :]).reshape(-1, flat.shape[1])[: flat.shape[0]]
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(kept)).reshape(layer.weight.shape))
    return pruned


def export_onnx(model, *, shape: tuple, path: Path) -> Path:
    """Dense ONNX (opset 17, the project's exporter) of ``model`` at ``path``."""
    import onnx
    import torch

    from deploy.onnx.torch_export import export_dense

    onnx.save(export_dense(model, torch.zeros(shape), opset=17), str(path))
    return path


def deepsparse_onnx(source: Path, path: Path) -> Path:
    """A copy of ``source`` at IR version 8 (DeepSparse's onnx 1.14 reads at most IR 9), without
    opset imports of domains no node uses (the quantizer adds ``ai.onnx.ml`` 5, which it rejects)."""
    import onnx

    model = onnx.load(str(source))
    model.ir_version = min(model.ir_version, 8)
    used = {node.domain for node in model.graph.node}
    kept = [o for o in model.opset_import if o.domain in used or o.domain in ("", "ai.onnx")]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    onnx.save(model, str(path))
    return path


def quantize_int8(source: Path, path: Path, *, shape: tuple, batches: int = 8) -> Path:
    """Static QDQ int8 of ``source`` (per-channel weights, uint8 activations, random calibration)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        """``batches`` seeded standard-normal inputs, then None."""

        def __init__(self):
            rng = np.random.default_rng(1)
            self.items = iter([{"input": rng.standard_normal(shape).astype(np.float32)} for _ in range(batches)])

        def get_next(self):
            return next(self.items, None)

    prepared = path.with_name(path.stem + "-pre.onnx")
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return path


def compile_tvm(source: Path, *, shape: tuple, out_dir: Path) -> Path:
    """Our ``host`` build of ``source``; the library path."""
    from deploy.tvm.compile import compile_onnx

    return Path(compile_onnx(source, target="host", out_dir=out_dir, input_shape=shape).library_path)


def ensure_venv(name: str, *, log) -> Path | None:
    """The interpreter of venv ``name`` under the scratch folder, created and filled when missing
    (torch from the local CPU wheel so no CUDA build is pulled); None when it cannot install."""
    venv = SCRATCH / f"venv-{name}"
    python = venv / "bin" / "python"
    requirements, check = VENVS[name]
    if python.exists() and subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    extra = [str(w) for w in sorted(TORCH_WHEELS.glob("torch-*+cpu-*.whl"))[-1:]] if name == "executorch" else []
    done = subprocess.run([str(python), "-m", "pip", "install", *extra, *requirements], capture_output=True, text=True)
    log.write(done.stdout + done.stderr)
    if done.returncode or subprocess.run([str(python), "-c", check], capture_output=True).returncode:
        return None
    return python


def lower_executorch(python: Path, model, *, shape: tuple, work: Path, stem: str) -> tuple[Path, dict]:
    """``torch.export`` ``model`` here, lower it to an XNNPACK ``.pte`` in the ExecuTorch venv."""
    import torch

    program = work / f"{stem}.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(shape),)), str(program))
    target = work / f"{stem}.pte"
    done = subprocess.run([str(python), str(ET_EXPORT), str(program), str(target)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}")
    return target, json.loads(done.stdout.strip().splitlines()[-1])


ENGINES = ("onnxruntime-fp32", "onnxruntime-int8", "tvm", "deepsparse", "executorch")


def _candidate(plan: dict, *, model: str, label: str, engine: str, runtime: str, make) -> None:
    """Add candidate ``label`` of ``model`` to ``plan`` from ``make()`` -> (path, reference variant),
    or record why it could not be built."""
    key = f"{model} | {label}"
    try:
        path, reference = make()
    except Exception as error:  # the table says why, the rest of the plan goes on
        plan["failures"][key] = f"build: {type(error).__name__}: {_last_line(error)}"
        return
    plan["candidates"][key] = {"engine": engine, "runtime": runtime, "path": str(path), "model": model, "label": label,
                               "input": plan["inputs"][model], "reference": reference}


def _last_line(error: BaseException) -> str:
    """The last line of ``error``'s message, at most 300 characters."""
    text = str(error).strip()
    return text.splitlines()[-1][:300] if text else ""


def build_model(plan: dict, name: str, *, work: Path, pythons: dict) -> None:
    """Export, quantize, compile and lower both variants of ``name`` for every engine into ``plan``."""
    shape = MODELS[name][0]
    np.save(work / f"{name}-input.npy", np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    plan["inputs"][name] = str(work / f"{name}-input.npy")
    dense = build_torch(name)
    torch_models = {"dense": dense, SPARSE: block_prune(dense)}
    onnx_files = {}
    for variant, model in torch_models.items():
        stem = f"{name}-{variant.replace(' ', '_').replace('%', '')}"
        print(f"building {name} {variant}", file=sys.stderr, flush=True)
        onnx_files[variant] = export_onnx(model, shape=shape, path=work / f"{stem}.onnx")
        plan["references"][f"{name} | {variant}"] = str(onnx_files[variant])
        if variant == "dense":
            _candidate(plan, model=name, label=BASELINE, engine="onnxruntime-fp32", runtime="onnxruntime",
                       make=lambda: (onnx_files["dense"], "dense"))
            _candidate(plan, model=name, label="onnxruntime int8 dense", engine="onnxruntime-int8", runtime="onnxruntime",
                       make=lambda: (quantize_int8(onnx_files["dense"], work / f"{stem}-int8.onnx", shape=shape), "dense"))
        _candidate(plan, model=name, label=f"tvm {variant}", engine="tvm", runtime="tvm",
                   make=lambda s=stem, v=variant: (compile_tvm(onnx_files[v], shape=shape, out_dir=work / f"{s}-tvm"), v))
        if pythons.get("deepsparse"):
            _candidate(plan, model=name, label=f"deepsparse {variant}", engine="deepsparse", runtime="deepsparse",
                       make=lambda s=stem, v=variant: (deepsparse_onnx(onnx_files[v], work / f"{s}-ds.onnx"), v))
        if pythons.get("deepsparse") and variant == SPARSE:
            _candidate(plan, model=name, label=f"deepsparse int8 {variant}", engine="deepsparse", runtime="deepsparse",
                       make=lambda s=stem, v=variant: (deepsparse_onnx(quantize_int8(onnx_files[v], work / f"{s}-int8.onnx", shape=shape),
                                                                       work / f"{s}-int8-ds.onnx"), v))
        if pythons.get("executorch"):
            _candidate(plan, model=name, label=f"executorch-xnnpack {variant}", engine="executorch", runtime="executorch",
                       make=lambda s=stem, m=model, v=variant: _lowered(plan, pythons["executorch"], m, shape=shape, work=work, stem=s, variant=v))


def _lowered(plan: dict, python: Path, model, *, shape: tuple, work: Path, stem: str, variant: str):
    """The ``.pte`` of ``model`` and its reference variant; the partition counts go to the plan's notes."""
    path, counts = lower_executorch(python, model, shape=shape, work=work, stem=stem)
    plan["notes"][f"{stem}.pte"] = counts
    return path, variant


def reference_outputs(plan: dict) -> dict:
    """onnxruntime fp32 output of each model variant on its input (what every candidate is checked against)."""
    import onnxruntime as ort

    outputs = {}
    for key, path in plan["references"].items():
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        x = np.load(plan["inputs"][key.split(" | ")[0]])
        outputs[key] = session.run(None, {session.get_inputs()[0].name: x})[0].reshape(-1)
    return outputs


class Worker:
    """One engine's worker process, fed burst requests over its stdin."""

    def __init__(self, *, engine: str, python: Path, threads: int, plan_path: Path, log: Path):
        env = {**os.environ, "TVM_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads), "NM_DISABLE_ANALYTICS": "1",
               "PYTHONPATH": ""}
        self.log = open(log, "a")
        self.process = subprocess.Popen([str(python), str(WORKER), "--engine", engine, "--threads", str(threads), "--plan", str(plan_path)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        line = self.process.stdout.readline()
        self.ready = json.loads(line) if line.strip() else {"ready": [], "outputs": {}, "errors": {engine: f"worker exited {self.process.wait()}, see {log.name}"}}

    def burst(self, key: str, *, settle: int, timed: int) -> list[float]:
        """Times in ms of ``timed`` calls of ``key`` after ``settle`` untimed ones."""
        self.process.stdin.write(json.dumps({"key": key, "settle": settle, "timed": timed}) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())["ms"]

    def close(self) -> None:
        """Stop the worker (an empty request line) and wait for it."""
        if self.process.poll() is None:
            self.process.stdin.write("\n")
            self.process.stdin.flush()
            self.process.wait(timeout=60)
        self.log.close()


def measure(plan: dict, *, plan_path: Path, pythons: dict, threads: int, settle: int, scale: float, work: Path) -> dict:
    """Interleaved timing of every candidate at ``threads`` threads; per candidate its samples,
    per-round burst medians, output check and load errors."""
    engines = sorted({c["engine"] for c in plan["candidates"].values()}, key=ENGINES.index)
    workers = {e: Worker(engine=e, python=pythons[e], threads=threads, plan_path=plan_path, log=work / f"worker-{e}-{threads}.log")
               for e in engines}
    result = {"load": [os.getloadavg()[0]], "models": {}, "errors": {}, "outputs": {}}
    try:
        for worker in workers.values():
            result["errors"].update(worker.ready["errors"])
            result["outputs"].update(worker.ready["outputs"])
        for model, (_, rounds, timed) in MODELS.items():
            keys = [k for k, c in plan["candidates"].items() if c["model"] == model and k in result["outputs"]]
            if not keys:
                continue
            print(f"timing {model} at {threads} thread(s): {len(keys)} candidates", file=sys.stderr, flush=True)
            rows = {k: {"samples": [], "rounds": []} for k in keys}
            for index in range(max(3, int(rounds * scale))):
                for key in keys[index % len(keys):] + keys[: index % len(keys)]:
                    times = workers[plan["candidates"][key]["engine"]].burst(key, settle=settle, timed=timed)
                    rows[key]["samples"] += times
                    rows[key]["rounds"].append(float(np.median(times)))
            result["models"][model] = {"rows": rows, "load": os.getloadavg()[0]}
    finally:
        for worker in workers.values():
            worker.close()
    result["load"].append(os.getloadavg()[0])
    return result


def summarize(plan: dict, result: dict, references: dict) -> dict:
    """Per model and candidate: time median / min, per-round ratio median / worst / best, ratio of
    minima, and the max abs difference from onnxruntime fp32 on the same variant."""
    table = {}
    for model, entry in result["models"].items():
        base = entry["rows"][f"{model} | {BASELINE}"]
        table[model] = {}
        for key, row in entry["rows"].items():
            ratios = np.array(base["rounds"]) / np.array(row["rounds"])
            candidate = plan["candidates"][key]
            reference = references[f"{model} | {candidate['reference']}"]
            error = float(np.abs(np.array(result["outputs"][key]) - reference).max())
            table[model][candidate["label"]] = {
                "median_ms": float(np.median(row["samples"])), "min_ms": float(np.min(row["samples"])),
                "ratio_median": float(np.median(ratios)), "ratio_worst": float(np.min(ratios)), "ratio_best": float(np.max(ratios)),
                "ratio_of_mins": float(np.min(base["samples"]) / np.min(row["samples"])), "max_err": error,
                "ref_scale": float(np.abs(reference).max()), "rounds": len(ratios)}
    return table


def machine() -> dict:
    """CPU model, ISA summary and core count (lscpu), kernel and Python."""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    isa = [name for name, flag in (("AVX-512F", "avx512f"), ("AVX-512 VNNI", "avx512_vnni"), ("AVX-512 BF16", "avx512_bf16"),
                                   ("AVX2", "avx2"), ("FMA", "fma"), ("AVX-VNNI", "avx_vnni")) if flag in flags]
    return {"cpu": fields.get("Model name", platform.processor()).strip(), "vendor": fields.get("Vendor ID", "").strip(),
            "family": fields.get("CPU family", "").strip(), "model": fields.get("Model", "").strip(),
            "isa": ", ".join(isa), "cpus": os.cpu_count(), "hypervisor": fields.get("Hypervisor vendor", "").strip(),
            "l2": fields.get("L2 cache", "").strip(), "l3": fields.get("L3 cache", "").strip(),
            "kernel": f"{platform.system()} {platform.release()}", "python": platform.python_version()}


def versions(pythons: dict) -> dict:
    """Package versions of each interpreter the workers use."""
    wanted = {sys.executable: ("torch", "onnx", "onnxruntime", "apache-tvm")}
    if pythons.get("deepsparse"):
        wanted[str(pythons["deepsparse"])] = ("deepsparse", "onnx", "numpy")
    if pythons.get("executorch"):
        wanted[str(pythons["executorch"])] = ("executorch", "torch", "torchao")
    found = {}
    for python, names in wanted.items():
        code = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
        done = subprocess.run([python, "-c", code, *names], capture_output=True, text=True)
        found[python] = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr.strip()[-200:]}
    return found


NOTES = [
    "onnxruntime: intra-op pool of N threads (N - 1 workers plus the caller), which spins after each run by "
    "default; the untimed calls at the start of each burst let a previous engine's spinning threads go idle.",
    "TVM: our Relax VM build; its pool (TVM_NUM_THREADS) sleeps between calls.",
    "DeepSparse: `Engine(model, batch_size=1, num_cores=N)`; it reads the ONNX, runs its own graph compiler and "
    "uses unstructured sparsity in conv / gemm weights where it judges it pays; int8 runs the onnxruntime QDQ "
    "file of the sparse variant. Analytics disabled (`NM_DISABLE_ANALYTICS=1`).",
    "ExecuTorch: `to_edge_transform_and_lower(torch.export.export(model), partitioner=[XnnpackPartitioner()])`; "
    "the pybindings runtime (`_load_for_executorch`, threadpool reset to N). The XNNPACK delegate creates its "
    "runtime with flags 0 (only `XNN_FLAG_BASIC_PROFILING` when profiling), never XNNPACK's sparse-inference hint "
    "`XNN_FLAG_HINT_SPARSE_INFERENCE` (which TFLite's XNNPACK delegate sets for models with sparse weight tensors), "
    "so XNNPACK's sparse NCHW path is not reachable from ExecuTorch: its 90% variant runs the dense NHWC kernels "
    "over the zeros.",
    "onnxruntime int8 does not skip zeros either; its 90% variant is not timed (same speed as dense).",
]
INSTALL_NOTES = [
    "`deepsparse` latest on the registry (1.9.0, June 2025) is a 6 kB source tombstone: `pip install deepsparse` "
    "fails with `'deepsparse' has reached end-of-life and is no longer supported as of June 2025.` The last "
    "release with wheels, 1.8.0 (cp38-cp311, manylinux x86_64; onnx 1.14, numpy 1.26), is pinned instead.",
    "`executorch` 1.5.1 does not declare torch; its venv gets the local torch 2.13.0+cpu wheel (no CUDA build "
    "downloaded), the same release as the system torch, so `torch.export.save` files load across the two.",
]


def markdown(report: dict, *, threads: list[int], command: str) -> str:
    """The peers.md text."""
    m = report["machine"]
    lines = ["# Peer engines vs our TVM build: batch-1 latency against onnxruntime fp32 on the dense ONNX", "",
             f"- CPU: {m['cpu']} ({m['vendor']} family {m['family']} model {m['model']}, {m['hypervisor']} guest), "
             f"{m['cpus']} logical CPUs, L2 {m['l2']}, L3 {m['l3']}; ISA: {m['isa']}; {m['kernel']}; no GPU",
             f"- date: {report['date']} UTC",
             f"- command: `{command}`",
             "- load average (1 min) at the start / end of each thread count's timing: "
             + ", ".join(f"{t} thread(s) {report['results'][str(t)]['load'][0]:.1f} / {report['results'][str(t)]['load'][1]:.1f}"
                         for t in threads) + f" on {m['cpus']} CPUs: the machine is shared and busy, read ratios, not times",
             "- versions: " + "; ".join(f"`{Path(p).parent.parent.name if '.scratch' in p else 'system'}`: "
                                         + ", ".join(f"{k} {v}" for k, v in vs.items()) for p, vs in report["versions"].items()),
             "", "Models: seeded random weights, BatchNorm folded in torch; **90% 16x1** zeroes 90% of the 16x1 output-channel "
             "blocks (smallest L2 norm, per layer) of every conv / linear weight except the first conv, the last linear "
             "layer and depthwise convs. Each engine runs in its own process; per round every candidate runs one burst "
             f"({report['settle']} untimed + the timed calls) while the others wait, in a rotating order. Time: median / min "
             "over all timed calls. Ratio = onnxruntime fp32 dense / candidate (higher is faster): per round from the two "
             "burst medians, then the median and the worst (min) over rounds; `ratio of mins` compares the overall "
             "minima (as `whole_model.md` does). `max err`: max abs difference of the output from onnxruntime fp32 on "
             "the same variant (`out` = max abs output).", "",
             "Under this load (several runnable processes per CPU) a 2-thread call needs both CPUs at once: engines "
             "whose threads meet at barriers (all of them) lose whole scheduler slices when one thread is preempted, "
             "so 2-thread medians and worst rounds measure the neighbours as much as the engine; the minima are the "
             "runs that got both CPUs. The 1-thread tables are the comparable ones.", ""]
    for count in threads:
        result = report["results"][str(count)]
        lines += [f"## {count} thread{'s' if count > 1 else ''}", ""]
        for model, rows in result["table"].items():
            lines += [f"### {model} (batch 1, {'x'.join(map(str, MODELS[model][0][1:]))}; rounds: {next(iter(rows.values()))['rounds']},"
                      f" load {result['load_by_model'][model]:.1f})", "",
                      "| candidate | median ms | min ms | ratio median | ratio worst round | ratio of mins | max err (out) |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            for label, r in rows.items():
                lines.append(f"| {label} | {r['median_ms']:.3f} | {r['min_ms']:.3f} | {r['ratio_median']:.2f}x | "
                             f"{r['ratio_worst']:.2f}x | {r['ratio_of_mins']:.2f}x | {r['max_err']:.1e} ({r['ref_scale']:.1f}) |")
            lines.append("")
    failures = {**report["failures"], **{k: v for t in threads for k, v in report["results"][str(t)]["errors"].items()}}
    lines += ["## Could not run, and install notes", ""]
    lines += [f"- {key}: {reason}" for key, reason in sorted(failures.items())] or ["- every engine installed and every candidate ran"]
    lines += [f"- {note}" for note in report["install_notes"]]
    lines += ["", "## What each engine does", ""] + [f"- {note}" for note in NOTES]
    if report["notes"]:
        lines += ["- XNNPACK partition (delegate calls / other calls left in the graph): "
                  + ", ".join(f"{k}: {v['delegate_calls']} / {v['portable_calls']}" for k, v in report["notes"].items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Build every candidate, time them interleaved at each thread count, write the .md and .json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet20,mobilenetv2-small,resnet18-224", help="subset of " + ", ".join(MODELS))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--settle", type=int, default=2, help="untimed calls at the start of every burst")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the rounds per model")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "peers.md")
    args = parser.parse_args(argv)
    for name in [n for n in MODELS if n not in args.models.split(",")]:
        del MODELS[name]
    threads = [int(t) for t in args.threads.split(",")]
    work = SCRATCH / "peers-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    command = "python benchmarks/peers.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = {"failures": {}, "install_notes": list(INSTALL_NOTES), "settle": args.settle, "machine": machine(), "command": command.strip(),
              "date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M}"}
    pythons = {"onnxruntime-fp32": Path(sys.executable), "onnxruntime-int8": Path(sys.executable), "tvm": Path(sys.executable)}
    with open(work / "install.log", "w") as log:
        for name in VENVS:
            print(f"virtual environment for {name}", file=sys.stderr, flush=True)
            pythons[name] = ensure_venv(name, log=log)
            if pythons[name] is None:
                report["failures"][name] = f"install failed: `{' '.join(VENVS[name][0])}`, see {work / 'install.log'}"
    plan = {"inputs": {}, "references": {}, "candidates": {}, "failures": report["failures"], "notes": {}}
    for name in MODELS:
        build_model(plan, name, work=work, pythons=pythons)
    plan_path = work / "plan.json"
    plan_path.write_text(json.dumps(plan, indent=1))
    references = reference_outputs(plan)
    report.update(notes=plan["notes"], versions=versions(pythons), results={})
    for count in threads:
        result = measure(plan, plan_path=plan_path, pythons=pythons, threads=count, settle=args.settle, scale=args.scale, work=work)
        report["results"][str(count)] = {"table": summarize(plan, result, references), "load": result["load"], "errors": result["errors"],
                                         "load_by_model": {m: e["load"] for m, e in result["models"].items()}}
    args.out.write_text(markdown(report, threads=threads, command=report["command"]))
    (work / "peers.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
