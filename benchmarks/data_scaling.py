"""Data scaling: peak memory of ``compress train-sparse`` as the image folder grows, and training
throughput of the pipeline's loop against a plain PyTorch loop on the same DataLoader.

1. Generates JPEG folders of 1,000 / 5,000 / 20,000 images at 256 x 256 (10 classes, smooth random
   colour fields with a few rectangles, quality 90) under ``--root`` (kept between runs).
2. Peak memory: ``compress train-sparse`` on a ResNet-18 at 224 px (``benchmarks/data_scaling_models.py``)
   for a fixed number of steps (``--epoch-steps``; the machine is shared and slow, so no full epochs),
   sampling every 0.25 s the RSS of the main process and the proportional set size (PSS) of the
   whole process tree (main process + DataLoader workers; PSS counts shared pages once).
3. Throughput: interleaved runs of ``pipeline.training.run_training`` (plain SGD through the
   TrainingMethod base) and of a plain loop (``zero_grad / cross_entropy / backward / step``) with the
   same DataLoader (``pipeline.data.loader.train_loader``, augmentation on), model and optimizer;
   images/s over the same number of steps, timed from the loader's creation (worker start included).

4. ``--full-run``: peak memory of ``compress run --target arm64`` (every stage) on ResNet-18, 1,000 images.

Usage: python benchmarks/data_scaling.py [--root /tmp/data-scaling] [--out benchmarks/data_scaling.json] [--full-run]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from itertools import islice
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZES = (1_000, 5_000, 20_000)
CLASSES = 10


def make_folder(root: Path, count: int) -> Path:
    """``count`` JPEGs at 256 px in 10 class folders (made once; a ``.done`` marker says complete)."""
    from PIL import Image, ImageDraw

    folder = root / f"jpeg-{count}"
    if (folder / ".done").exists():
        return folder
    rng = np.random.default_rng(count)
    for index in range(count):
        label = index % CLASSES
        (folder / f"class{label}").mkdir(parents=True, exist_ok=True)
        corners = rng.integers(0, 256, (2, 2, 3)).astype(np.float32)
        ramp = np.linspace(0, 1, 256, dtype=np.float32)
        field = (corners[0, 0] * (1 - ramp)[:, None, None] + corners[1, 1] * ramp[:, None, None]) * 0.5 \
            + (corners[0, 1] * (1 - ramp)[None, :, None] + corners[1, 0] * ramp[None, :, None]) * 0.5
        image = Image.fromarray(field.astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(3):
            x, y = rng.integers(0, 200, 2)
            draw.rectangle([int(x), int(y), int(x) + 40 + 5 * label, int(y) + 40], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        image.save(folder / f"class{label}" / f"{index:06d}.jpg", quality=90)
    (folder / ".done").write_text("")
    return folder


def save_model(path: Path, arch: str) -> Path:
    from benchmarks.data_scaling_models import MODELS
    from pipeline.model.bundle import ModelBundle, save_bundle

    torch.manual_seed(0)
    model = MODELS[arch](num_classes=CLASSES)
    return save_bundle(path, ModelBundle(arch=f"benchmarks.data_scaling_models:{_factory(arch)}", input_shape=(3, 224, 224), state_dict=model.state_dict()))


def _factory(arch: str) -> str:
    return {"resnet18": "resnet18", "mobilenetv2": "mobilenet_v2"}[arch]


def peak_memory(model: Path, arch: str, folder: Path, *, workers: int, steps: int, batch_size: int) -> dict:
    """Peak RSS (main process) and peak PSS (process tree) of one ``compress train-sparse`` run."""
    out = Path(tempfile.mkdtemp(prefix="data-scaling-run-")) / "run"
    command = [sys.executable, "-m", "pipeline", "--quiet", "train-sparse", str(model), "--arch", f"benchmarks.data_scaling_models:{_factory(arch)}",
               "--data", str(folder), "--epochs", "1", "--epoch-steps", str(steps), "--batch-size", str(batch_size),
               "--test-limit", str(batch_size), "--workers", str(workers), "--method", "l1-prox", "--out", str(out)]
    return _watched(command)


def full_run(model: Path, arch: str, folder: Path, *, workers: int, steps: int, batch_size: int) -> dict:
    """Peak memory of ``compress run --target arm64`` (every stage of the built-in recipe, 1 epoch of ``steps`` steps each)."""
    out = Path(tempfile.mkdtemp(prefix="data-scaling-full-")) / "run"
    command = [sys.executable, "-m", "pipeline", "--quiet", "run", str(model), "--arch", f"benchmarks.data_scaling_models:{_factory(arch)}",
               "--target", "arm64", "--data", str(folder), "--epochs", "1", "--epoch-steps", str(steps), "--batch-size", str(batch_size),
               "--test-limit", str(2 * batch_size), "--workers", str(workers), "--out", str(out), "--json"]
    result = _watched(command)
    from pipeline.manifest import read_manifest

    result["stages"] = {record["name"]: record["status"] for record in read_manifest(out)["stages"]}
    return result


def _watched(command: list[str]) -> dict:
    """Run ``command``; peak RSS of its main process and peak PSS of its process tree, sampled every 0.25 s."""
    import psutil

    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peaks = {"rss_mb": 0.0, "tree_pss_mb": 0.0}

    def sample() -> None:
        root = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peaks["rss_mb"] = max(peaks["rss_mb"], root.memory_info().rss / 2**20)
                peaks["tree_pss_mb"] = max(peaks["tree_pss_mb"], sum(_pss(p) for p in tree) / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.25)

    watcher = threading.Thread(target=sample)
    start = time.perf_counter()
    watcher.start()
    _, err = process.communicate()
    watcher.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[3:5])} failed: {err.decode()[-2000:]}")
    return {**{k: round(v, 1) for k, v in peaks.items()}, "seconds": round(time.perf_counter() - start, 1)}


def _pss(process) -> int:
    import psutil

    try:
        return process.memory_full_info().pss
    except psutil.Error:
        return 0


def throughput(arch: str, folder: Path, *, workers: int, steps: int, batch_size: int, repeats: int) -> dict:
    """Images/s of the pipeline's loop and of a plain loop, interleaved ``repeats`` times."""
    from pipeline.data import load_dataset

    data = load_dataset(str(folder), model_input_shape=(3, 224, 224), workers=workers, test_limit=batch_size)
    results: dict[str, list[float]] = {"pipeline": [], "plain": []}
    for _ in range(repeats):
        results["plain"].append(_plain(arch, data, workers=workers, steps=steps, batch_size=batch_size))
        results["pipeline"].append(_pipeline(arch, data, steps=steps, batch_size=batch_size))
    summary = {name: {"min": round(min(v), 3), "median": round(statistics.median(v), 3), "runs": [round(x, 3) for x in v]} for name, v in results.items()}
    summary["ratio_median"] = round(summary["pipeline"]["median"] / summary["plain"]["median"], 3)
    return summary


def _model(arch: str) -> torch.nn.Module:
    from benchmarks.data_scaling_models import MODELS

    torch.manual_seed(0)
    return MODELS[arch](num_classes=CLASSES)


def _plain(arch: str, data, *, workers: int, steps: int, batch_size: int) -> float:
    from pipeline.data.loader import train_loader

    model = _model(arch).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    with torch.no_grad():  # the pipeline checks the labels with one forward pass before its epoch: the same warm-up here
        model.eval()(data.train_x[:1])
    model.train()
    start = time.perf_counter()
    loader = train_loader(data.train, data.preprocess, batch_size=batch_size, seed=0, epoch=0, augment=data.augmentation("on"), workers=workers)
    seen = 0
    for inputs, targets in islice(loader, steps):
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
        seen += len(targets)
    return seen / (time.perf_counter() - start)


def _pipeline(arch: str, data, *, steps: int, batch_size: int) -> float:
    """``run_training`` (plain SGD with momentum 0.9) for ``steps`` steps; its own images/s of the epoch."""
    from compress.optim.method import TrainingMethod
    from pipeline.stage import RunOptions, StageContext
    from pipeline.stages.common import make_method
    from pipeline.training.loop import run_training

    stage = Path(tempfile.mkdtemp(prefix="data-scaling-stage-"))
    options = RunOptions(seed=0, progress=False, epoch_steps=steps, train_device="cpu")
    ctx = StageContext(run_dir=stage, stage_dir=stage, stage_id="bench", options=options, history=[], load_data=None, log=lambda _: None)
    method = make_method(TrainingMethod, {"lr": 0.01, "momentum": 0.9}, what="bench")
    history = run_training(ctx, _model(arch), method, data, epochs=1, batch_size=batch_size, label="bench", augment="on")
    return float(history[0]["images_per_second"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "data-scaling")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "data_scaling.json")
    parser.add_argument("--archs", default="resnet18,mobilenetv2")
    parser.add_argument("--memory-steps", type=int, default=4)
    parser.add_argument("--speed-steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--full-run", action="store_true", help="only: compress run --target arm64 on ResNet-18, 1,000 images")
    args = parser.parse_args()
    folders = {count: make_folder(args.root, count) for count in SIZES}
    if args.full_run:
        model = save_model(args.root / "resnet18.pt", "resnet18")
        result = full_run(model, "resnet18", folders[SIZES[0]], workers=1, steps=args.memory_steps, batch_size=args.batch_size)
        print(json.dumps(result), flush=True)
        return
    report = {"cpu": _cpu(), "threads": torch.get_num_threads(), "torch": torch.__version__, "batch_size": args.batch_size,
              "memory_steps": args.memory_steps, "speed_steps": args.speed_steps, "memory": {}, "throughput": {}}
    for arch in args.archs.split(","):
        model = save_model(args.root / f"{arch}.pt", arch)
        if not args.skip_memory and arch == "resnet18":
            for workers in (1, 2):
                for count, folder in folders.items():
                    result = peak_memory(model, arch, folder, workers=workers, steps=args.memory_steps, batch_size=args.batch_size)
                    report["memory"][f"{arch} workers={workers} images={count}"] = result
                    print(arch, workers, count, result, flush=True)
        for workers in (1, 2):
            result = throughput(arch, folders[SIZES[0]], workers=workers, steps=args.speed_steps, batch_size=args.batch_size, repeats=args.repeats)
            report["throughput"][f"{arch} workers={workers}"] = result
            print(arch, workers, result, flush=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
