"""Models as users ship them: compile time and batch-1 latency of our TVM build against onnxruntime
on the same ONNX file.

Models (seeded random weights; written here, nothing downloaded):

- ``yolo``: a YOLOv8n-style detector (Jocher et al., Ultralytics YOLOv8, 2023): Conv-BN-SiLU, C2f
  blocks with ``Split`` / ``Concat``, an SPPF block (three 5x5 ``MaxPool``), an FPN + PAN neck with
  nearest ``Resize``, decoupled heads with a DFL box decoder (``Softmax`` over a non-last axis)
  and anchor grids built with ``arange`` / ``meshgrid`` from each feature map's size.
- ``efficientnet-b0``: EfficientNet-B0 (Tan & Le, 2019) written the way a popular third-party
  PyTorch port writes it: TF-style "same" padding computed from ``x.shape`` in ``forward``,
  swish, squeeze-excite.

Each is exported with ``torch.onnx.export`` and dynamic batch, height and width (as detectors are
shipped), then compiled by ``deploy.tvm.compile_onnx`` for the ``host`` preset at the benchmark's
input size (fix shape, fold on onnxruntime, import, our kernels). Variants: ``dense`` and, with
``--sparse``, 90% of the 16x1 blocks of every 1x1 convolution zeroed (block L2 norm, per layer).
Latency: one process per thread count (``TVM_NUM_THREADS`` is read once, when TVM's pool starts;
onnxruntime's ``intra_op_num_threads`` is set to the same count), candidates interleaved by
``deploy.bench.interleave.measure_interleaved``; one candidate call is a burst of ``--burst``
inferences (the first call after a switch pays for the other engine's spinning threads), its time
divided by the burst.

Usage::

    python benchmarks/user_models.py [--models yolo-320,yolo-640,efficientnet-b0-224] [--threads 1,2] [--sparse] [--out benchmarks/user_models.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
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

MODELS = {"yolo-320": ("yolo", 320), "yolo-640": ("yolo", 640), "efficientnet-b0-224": ("efficientnet-b0", 224)}


def _torch_models():
    """The two architectures, defined inside a function so that timing processes do not import torch."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class ConvBnSiLU(nn.Sequential):
        def __init__(self, cin, cout, kernel=1, stride=1):
            super().__init__(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU())

    class Bottleneck(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.cv1, self.cv2 = ConvBnSiLU(channels, channels, 3), ConvBnSiLU(channels, channels, 3)

        def forward(self, x):
            return x + self.cv2(self.cv1(x))

    class C2f(nn.Module):
        def __init__(self, cin, cout, repeats=1, shortcut=True):
            super().__init__()
            self.hidden = cout // 2
            self.cv1 = ConvBnSiLU(cin, 2 * self.hidden)
            self.blocks = nn.ModuleList(Bottleneck(self.hidden) if shortcut else
                                        nn.Sequential(ConvBnSiLU(self.hidden, self.hidden, 3), ConvBnSiLU(self.hidden, self.hidden, 3))
                                        for _ in range(repeats))
            self.cv2 = ConvBnSiLU((2 + repeats) * self.hidden, cout)

        def forward(self, x):
            parts = list(self.cv1(x).split((self.hidden, self.hidden), 1))
            for block in self.blocks:
                parts.append(block(parts[-1]))
            return self.cv2(torch.cat(parts, 1))

    class SPPF(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.cv1, self.cv2 = ConvBnSiLU(cin, cin // 2), ConvBnSiLU(cin * 2, cout)
            self.pool = nn.MaxPool2d(5, 1, 2)

        def forward(self, x):
            x = self.cv1(x)
            a = self.pool(x)
            b = self.pool(a)
            return self.cv2(torch.cat((x, a, b, self.pool(b)), 1))

    class Yolo(nn.Module):
        """YOLOv8n widths (16-256 channels), 80 classes, DFL with 16 bins, strides 8 / 16 / 32."""

        def __init__(self, classes=80, bins=16):
            super().__init__()
            self.stem = nn.Sequential(ConvBnSiLU(3, 16, 3, 2), ConvBnSiLU(16, 32, 3, 2), C2f(32, 32))
            self.p3 = nn.Sequential(ConvBnSiLU(32, 64, 3, 2), C2f(64, 64, 2))
            self.p4 = nn.Sequential(ConvBnSiLU(64, 128, 3, 2), C2f(128, 128, 2))
            self.p5 = nn.Sequential(ConvBnSiLU(128, 256, 3, 2), C2f(256, 256), SPPF(256, 256))
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.n4, self.n3 = C2f(384, 128, shortcut=False), C2f(192, 64, shortcut=False)
            self.down3, self.m4 = ConvBnSiLU(64, 64, 3, 2), C2f(192, 128, shortcut=False)
            self.down4, self.m5 = ConvBnSiLU(128, 128, 3, 2), C2f(384, 256, shortcut=False)
            self.box = nn.ModuleList(nn.Sequential(ConvBnSiLU(c, 64, 3), ConvBnSiLU(64, 64, 3), nn.Conv2d(64, 4 * bins, 1)) for c in (64, 128, 256))
            self.cls = nn.ModuleList(nn.Sequential(ConvBnSiLU(c, 80, 3), ConvBnSiLU(80, 80, 3), nn.Conv2d(80, classes, 1)) for c in (64, 128, 256))
            self.register_buffer("bins", torch.arange(bins, dtype=torch.float32).view(1, bins, 1, 1))
            self.bin_count = bins

        def forward(self, x):
            x = self.stem(x)
            p3 = self.p3(x)
            p4 = self.p4(p3)
            p5 = self.p5(p4)
            n4 = self.n4(torch.cat((self.up(p5), p4), 1))
            n3 = self.n3(torch.cat((self.up(n4), p3), 1))
            m4 = self.m4(torch.cat((self.down3(n3), n4), 1))
            m5 = self.m5(torch.cat((self.down4(m4), p5), 1))
            outputs = []
            for feature, box, cls, stride in zip((n3, m4, m5), self.box, self.cls, (8, 16, 32)):
                batch, _, height, width = feature.shape
                distribution = box(feature).view(batch, 4, self.bin_count, height * width).transpose(1, 2).softmax(1)
                distance = F.conv2d(distribution, self.bins).view(batch, 4, height * width)
                grid_y, grid_x = torch.meshgrid(torch.arange(height, dtype=torch.float32) + 0.5,
                                                torch.arange(width, dtype=torch.float32) + 0.5, indexing="ij")
                anchors = torch.stack((grid_x, grid_y), 0).view(1, 2, height * width)
                top_left, bottom_right = anchors - distance[:, :2], anchors + distance[:, 2:]
                boxes = torch.cat(((top_left + bottom_right) / 2, bottom_right - top_left), 1) * stride
                outputs.append(torch.cat((boxes, cls(feature).view(batch, -1, height * width).sigmoid()), 1))
            return torch.cat(outputs, 2)

    class SamePadConv(nn.Conv2d):
        """TF "same" padding computed from the input size at run time."""

        def forward(self, x):
            height, width = x.shape[-2:]
            pad_h = max((math.ceil(height / self.stride[0]) - 1) * self.stride[0] + self.kernel_size[0] - height, 0)
            pad_w = max((math.ceil(width / self.stride[1]) - 1) * self.stride[1] + self.kernel_size[1] - width, 0)
            if pad_h or pad_w:
                x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
            return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    class Swish(nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(x)

    class MBConv(nn.Module):
        def __init__(self, cin, cout, *, expansion, kernel, stride):
            super().__init__()
            hidden = cin * expansion
            self.expand = nn.Sequential(SamePadConv(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), Swish()) if expansion != 1 else nn.Identity()
            self.depthwise = nn.Sequential(SamePadConv(hidden, hidden, kernel, stride, groups=hidden, bias=False), nn.BatchNorm2d(hidden), Swish())
            squeezed = max(1, cin // 4)
            self.reduce, self.excite = SamePadConv(hidden, squeezed, 1), SamePadConv(squeezed, hidden, 1)
            self.project = nn.Sequential(SamePadConv(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            y = self.depthwise(self.expand(x))
            scale = self.reduce(F.adaptive_avg_pool2d(y, 1))
            y = y * torch.sigmoid(self.excite(scale * torch.sigmoid(scale)))
            y = self.project(y)
            return x + y if self.residual else y

    class EfficientNetB0(nn.Module):
        STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
                  (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))

        def __init__(self, classes=1000):
            super().__init__()
            layers, channels = [SamePadConv(3, 32, 3, 2, bias=False), nn.BatchNorm2d(32), Swish()], 32
            for expansion, kernel, stride, out, repeats in self.STAGES:
                for index in range(repeats):
                    layers.append(MBConv(channels, out, expansion=expansion, kernel=kernel, stride=stride if index == 0 else 1))
                    channels = out
            layers += [SamePadConv(channels, 1280, 1, bias=False), nn.BatchNorm2d(1280), Swish()]
            self.features, self.classifier = nn.Sequential(*layers), nn.Linear(1280, classes)

        def forward(self, x):
            return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))

    return {"yolo": Yolo, "efficientnet-b0": EfficientNetB0}


def export_model(kind: str, path: Path, *, size: int, sparse: bool) -> Path:
    """Export ``kind`` with dynamic batch / height / width; BN statistics randomised so folding matters."""
    import torch

    torch.manual_seed(0)
    model = _torch_models()[kind]().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        if sparse:
            _prune_pointwise(model, rows=16, ratio=0.9)
    torch.onnx.export(model, (torch.rand(1, 3, size, size),), str(path), dynamo=False, opset_version=17,
                      input_names=["images"], output_names=["output"],
                      dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch"}})
    return path


def _prune_pointwise(model, *, rows: int, ratio: float) -> None:
    """Zero the ``ratio`` smallest (L2) blocks of ``rows`` output channels x 1 input channel of every 1x1 conv."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d) and module.kernel_size == (1, 1) and module.groups == 1 and module.out_channels % rows == 0:
            weight = module.weight.data.view(module.out_channels // rows, rows, module.in_channels)
            norms = weight.norm(dim=1)
            cut = norms.flatten().kthvalue(max(1, int(ratio * norms.numel()))).values
            weight.mul_((norms > cut).unsqueeze(1).float())


def build(work: Path, names: list[str], *, sparse: bool) -> tuple[dict, dict]:
    """Export and compile every model (and variant); returns the plan the timing processes read and
    the compile errors of the entries that did not build."""
    from deploy.tvm.compile import compile_onnx
    from deploy.tvm.errors import CompileError

    plan, failed = {}, {}
    for name in names:
        kind, size = MODELS[name]
        for variant in ("dense", "90% 16x1 (1x1 convs)") if sparse else ("dense",):
            key = f"{name} {variant}"
            path = export_model(kind, work / f"{name}-{variant.split()[0]}.onnx", size=size, sparse=variant != "dense")
            start = time.perf_counter()
            try:
                result = compile_onnx(path, target="host", out_dir=work / f"{name}-{variant.split()[0]}", input_shape=(1, 3, size, size))
            except CompileError as error:
                failed[key] = str(error)
                print(f"{key}: {error}", file=sys.stderr)
                continue
            seconds = time.perf_counter() - start
            print(f"{key}: compiled in {seconds:.1f} s", file=sys.stderr)
            plan[key] = {"onnx": str(path), "tvm": str(result.library_path), "shape": [1, 3, size, size],
                         "compile_seconds": seconds, "onnx_bytes": path.stat().st_size}
    return plan, failed


def measure(plan: dict, *, threads: int, runs: int, burst: int) -> dict:
    """Interleaved timing of onnxruntime and our build for every entry (inside a process with ``threads``)."""
    import tvm  # before onnxruntime: the other order fails to register TVM's script printer
    from tvm import relax

    import onnxruntime as ort

    from deploy.bench.interleave import measure_interleaved

    results = {}
    for key, entry in plan.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(entry["onnx"], options, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).random(entry["shape"], dtype=np.float32)
        feeds = {session.get_inputs()[0].name: x}
        vm = relax.VirtualMachine(tvm.runtime.load_module(entry["tvm"]), tvm.cpu())
        main = vm["main"]
        tensor = tvm.runtime.tensor(x)
        error = float(np.abs(main(tensor).numpy() - session.run(None, feeds)[0]).max())
        stats = measure_interleaved({"onnxruntime": lambda: [session.run(None, feeds) for _ in range(burst)],
                                     "tvm": lambda: [main(tensor) for _ in range(burst)]},
                                    warmup=2, runs=runs, progress=False)
        results[key] = {"max_abs_error": error, **{name: [s.min_ms / burst, s.median_ms / burst] for name, s in stats.items()}}
        if threads == 1:
            results[key]["profile"] = profile(vm, tensor)
    return results


def profile(vm, tensor, *, calls: int = 5, top: int = 10) -> list[list]:
    """``[VM call, ms per inference, share]`` of the ``top`` most expensive calls of the VM
    (``set_instrument``, about 1-2 us added per call), summed over ``calls`` inferences."""
    per_call = summed_by_name(vm_call_seconds(vm, tensor, calls=calls))
    total = sum(per_call.values()) or 1.0
    ranked = sorted(per_call.items(), key=lambda item: -item[1])
    return [[name, seconds / calls * 1e3, seconds / total] for name, seconds in ranked[:top]]


def _timing_process(plan_path: Path, *, threads: int, runs: int, burst: int) -> tuple[dict, tuple[float, float]]:
    env = {**os.environ, "TVM_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    load_start = os.getloadavg()[0]
    output = subprocess.run([sys.executable, __file__, "--measure", str(plan_path), "--threads", str(threads),
                             "--runs", str(runs), "--burst", str(burst)], env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(output), (load_start, os.getloadavg()[0])


def markdown(plan: dict, results: dict, loads: dict, *, command: str, failed: dict) -> str:
    from deploy.bench.machine import cpu_model

    lines = ["# Models as users ship them: our TVM build vs onnxruntime on the same ONNX", "",
             f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, no GPU; shared with other jobs",
             f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; versions: Python {platform.python_version()}, {_versions()}",
             f"- command: `{command}`",
             "- 1-minute load average at the start / end of each timing process: "
             + ", ".join(f"{count} thread(s) {a:.1f} / {b:.1f}" for count, (a, b) in loads.items()), "",
             "Latency in ms per batch-1 inference (min and median over interleaved bursts). Ratio = onnxruntime / TVM",
             "(higher is faster). Compile time: `compile_onnx` for `host` (fix shape, fold, import, kernels, build, export).", "",
             "| model | variant | ONNX MB | compile s | threads | onnxruntime min / median | TVM min / median | ratio (median) | ratio (min) | max err |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, entry in plan.items():
        name, variant = key.split(" ", 1)
        for count, by_key in results.items():
            r = by_key[key]
            lines.append(f"| {name} | {variant} | {entry['onnx_bytes'] / 1e6:.1f} | {entry['compile_seconds']:.0f} | {count} | "
                         f"{r['onnxruntime'][0]:.2f} / {r['onnxruntime'][1]:.2f} | {r['tvm'][0]:.2f} / {r['tvm'][1]:.2f} | "
                         f"{r['onnxruntime'][1] / r['tvm'][1]:.2f}x | {r['onnxruntime'][0] / r['tvm'][0]:.2f}x | {r['max_abs_error']:.1e} |")
    for key, message in failed.items():
        lines.append(f"| {key.split(' ', 1)[0]} | {key.split(' ', 1)[1]} | | | | compile failed: {message} | | | | |")
    for key, entry in plan.items():
        rows = results.get(1, {}).get(key, {}).get("profile")
        if rows:
            lines += ["", f"## {key}: where the TVM build's time goes (1 thread, VM instrument, top {len(rows)} calls)", "",
                      "| VM call | ms per inference | share |", "|---|---:|---:|"]
            lines += [f"| {name} | {ms:.2f} | {share:.1%} |" for name, ms, share in rows]
    return "\n".join(lines) + "\n"


def _versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{name} {version(name)}" for name in ("torch", "onnx", "onnxruntime", "apache-tvm"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--sparse", action="store_true", help="also 90%% 16x1 block sparsity on the 1x1 convs")
    parser.add_argument("--runs", type=int, default=20, help="timed bursts per candidate")
    parser.add_argument("--burst", type=int, default=3, help="inferences per timed call")
    parser.add_argument("--out", default=None)
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(json.loads(Path(args.measure).read_text()), threads=int(args.threads), runs=args.runs, burst=args.burst)))
        return
    names = [name for name in args.models.split(",") if name]
    with tempfile.TemporaryDirectory(prefix="user-models-") as folder:
        work = Path(folder)
        plan, failed = build(work, names, sparse=args.sparse)
        (work / "plan.json").write_text(json.dumps(plan))
        results, loads = {}, {}
        for count in (int(t) for t in args.threads.split(",")):
            results[count], loads[count] = _timing_process(work / "plan.json", threads=count, runs=args.runs, burst=args.burst)
    text = markdown(plan, results, loads, command="python benchmarks/user_models.py " + " ".join(sys.argv[1:]), failed=failed)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
