"""Whole-model numbers of the pipeline's real output: size, accuracy and batch-1 latency side by side.

Part 1 (LeNet-5 on the real MNIST, accuracy-backed) reads one or more finished ``compress run``
directories (``--run LABEL=DIR``), re-evaluates the dense and the compressed ONNX with onnxruntime on
the full MNIST test set, measures whole-file sizes (raw and gzip -9) and conv / linear weight bytes,
and times every artifact in ONE interleaved batch-1 measurement (``deploy.bench.measure_interleaved``):
dense ONNX on onnxruntime and on the TVM host build, then each run's compressed ONNX on onnxruntime
and its TVM host build (``deploy.runtimes.load_session``). The dense ONNX / TVM build are the ones
the run's report stage made from the original checkpoint (``NN-report/dense/``).

Part 2 (``--resnet``): ResNet-20 (3x32x32) with RANDOM weights (no CIFAR data offline), block
magnitude pruning applied directly with ``compress.prune`` (no fine-tuning, latency only), exported
with ``deploy.onnx.export_onnx`` and compiled with ``deploy.tvm.compile.compile_onnx`` for the host.

Usage (from the repository root)::

    python benchmarks/whole_pipeline.py --run speed=/tmp/pipebench/run-speed --run size=/tmp/pipebench/run-size \
        --resnet --runs 300 --json /tmp/pipebench/pipeline.json

Runtimes use their default thread counts (as the pipeline's report stage does); the script prints
markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def gzip_bytes(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))


def weight_bytes_fp32(onnx_path: Path) -> int:
    """Float32 bytes of the rank >= 2 initializers (conv / linear weights) of a dense ONNX file."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    total = 0
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.ndim >= 2:
            total += array.size * 4
    return total


def onnx_file_breakdown(onnx_path: Path) -> dict[str, int]:
    """Serialized bytes of the parts of a compressed ONNX file (``deploy.onnx.sizes.file_breakdown``)."""
    import onnx

    from deploy.onnx import read_layouts
    from deploy.onnx.sizes import file_breakdown

    model = onnx.load(str(onnx_path))
    return file_breakdown(model, read_layouts(model))


def stage_dir(run_dir: Path, name: str) -> Path:
    found = sorted(p for p in run_dir.iterdir() if p.is_dir() and p.name.split("-", 1)[-1] == name)
    if not found:
        raise SystemExit(f"{run_dir}: no stage directory for {name!r}")
    return found[-1]


def stage_metrics(manifest: dict, name: str) -> dict:
    for stage in manifest["stages"]:
        if stage.get("name") == name:
            return stage.get("metrics", {})
    return {}


def mnist_test(preprocess: dict):
    from pipeline.data.dataset import load_dataset
    from pipeline.data.preprocess import Preprocess

    prep = Preprocess(**{k: tuple(v) if isinstance(v, list) else v for k, v in preprocess.items()})
    data = load_dataset("mnist", preprocess=prep, model_input_shape=(1, 28, 28))
    return data


def onnx_accuracy(path: Path, data) -> float:
    from pipeline.stages.export import onnx_accuracy as accuracy

    return accuracy(path, data)


def lenet_part(runs: list[tuple[str, Path]], *, n_runs: int, warmup: int) -> dict:
    import torch

    from deploy.bench import measure_interleaved
    from deploy.runtimes import load_session

    first = runs[0][1]
    report_dir = stage_dir(first, "report")
    dense_onnx = report_dir / "dense" / "model-dense.onnx"
    dense_tvm = report_dir / "dense" / "tvm-host" / "model.so"
    source = torch.load(first / "00-input" / "model.pt", weights_only=True)
    data = mnist_test(source.get("preprocess") or {})
    dense_weight = weight_bytes_fp32(dense_onnx)
    result = {
        "dense": {
            "onnx": str(dense_onnx), "tvm": str(dense_tvm), "bytes": dense_onnx.stat().st_size,
            "gzip": gzip_bytes(dense_onnx), "weight_bytes": dense_weight,
            "accuracy": onnx_accuracy(dense_onnx, data), "test_samples": int(len(data.test_y)),
        },
        "runs": {},
    }
    x = data.test_x[:1].numpy()
    candidates = {
        "dense|onnxruntime": load_session("onnxruntime", dense_onnx),
        "dense|tvm-host": load_session("tvm", dense_tvm),
    }
    for label, run_dir in runs:
        manifest = json.loads((run_dir / "manifest.json").read_text())
        export = stage_metrics(manifest, "export")
        onnx_path = stage_dir(run_dir, "export") / "model.onnx"
        library = stage_dir(run_dir, "compile") / "host" / "model.so"
        report = json.loads((stage_dir(run_dir, "report") / "report.json").read_text())
        stored = sum(layer["stored_bytes"] for layer in export["sizes"]["layers"])
        result["runs"][label] = {
            "dir": str(run_dir),
            "recipe": manifest["recipe"],
            "options": manifest["options"],
            "onnx": str(onnx_path),
            "bytes": onnx_path.stat().st_size,
            "gzip": gzip_bytes(onnx_path),
            "weight_stored_bytes": stored,
            "breakdown": onnx_file_breakdown(onnx_path),
            "layers": export["sizes"]["layers"],
            "accuracy": onnx_accuracy(onnx_path, data),
            "export_onnx_test_accuracy": export.get("onnx_test_accuracy"),
            "compile_layers": stage_metrics(manifest, "compile").get("layers", []),
            "report_latency": report.get("latency", []),
        }
        candidates[f"{label}|onnxruntime"] = load_session("onnxruntime", onnx_path)
        candidates[f"{label}|tvm-host"] = load_session("tvm", library)
    for variant in ["dense", *result["runs"]]:  # TVM host build vs onnxruntime on the same ONNX
        expected = candidates[f"{variant}|onnxruntime"].run_one(x)
        actual = candidates[f"{variant}|tvm-host"].run_one(x)
        result.setdefault("tvm_vs_onnxruntime_max_abs", {})[variant] = float(np.max(np.abs(actual - expected)))
    calls = {key: (lambda s=session: s.run_one(x)) for key, session in candidates.items()}
    stats = measure_interleaved(calls, warmup=warmup, runs=n_runs, progress=False)
    result["latency"] = {key: stat.to_dict() for key, stat in stats.items()}
    return result


def resnet_part(*, sparsities: list[float], block: tuple[int, int], n_runs: int, warmup: int, seed: int) -> dict:
    import torch

    from compress.models import create_model
    from compress.prune import attach_masks, bake_masks, mask_layouts, prune_weights
    from compress.types import BlockShape
    from deploy.bench import measure_interleaved
    from deploy.onnx import export_onnx
    from deploy.runtimes import load_session
    from deploy.tvm.compile import compile_onnx

    torch.manual_seed(seed)
    work = Path(tempfile.mkdtemp(prefix="pipeline-resnet20-"))
    dense = create_model("resnet20").eval()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    dense_onnx = work / "dense.onnx"
    export_onnx(dense, x, dense_onnx, encoding="dense")
    t0 = time.perf_counter()
    dense_lib = compile_onnx(dense_onnx, target="host", out_dir=work / "dense-tvm", input_shape=(1, 3, 32, 32))
    result = {"work": str(work), "dense": {"bytes": dense_onnx.stat().st_size, "compile_s": time.perf_counter() - t0}, "pruned": {}}
    candidates = {
        "dense|onnxruntime": load_session("onnxruntime", dense_onnx),
        "dense|tvm-host": load_session("tvm", dense_lib.library_path),
    }
    for ratio in sparsities:
        model = create_model("resnet20").eval()
        model.load_state_dict(dense.state_dict())
        pruned = prune_weights(model, pattern="block", sparsity_ratio=ratio, block=BlockShape(*block))
        attach_masks(model, pruned.masks)
        bake_masks(model)
        layouts = mask_layouts(model, pruned.masks, pattern="block", block=BlockShape(*block))
        label = f"block{block[0]}x{block[1]}-{ratio:g}"
        path = work / f"{label}.onnx"
        exported = export_onnx(model.eval(), x, path, encoding="auto", layouts=layouts)
        t0 = time.perf_counter()
        built = compile_onnx(path, target="host", out_dir=work / f"{label}-tvm", input_shape=(1, 3, 32, 32))
        nnz = sum(layout.nnz for layout in layouts)
        numel = sum(layout.numel for layout in layouts)
        result["pruned"][label] = {
            "ratio": ratio, "sparsity": 1 - nnz / numel, "bytes": path.stat().st_size,
            "parity_vs_torch": exported.max_abs_error, "compile_s": time.perf_counter() - t0,
            "kernels": [layer.to_dict() for layer in built.layers],
        }
        candidates[f"{label}|onnxruntime"] = load_session("onnxruntime", path)
        candidates[f"{label}|tvm-host"] = load_session("tvm", built.library_path)
    xn = x.numpy()
    calls = {key: (lambda s=session: s.run_one(xn)) for key, session in candidates.items()}
    stats = measure_interleaved(calls, warmup=warmup, runs=n_runs, progress=False)
    result["latency"] = {key: stat.to_dict() for key, stat in stats.items()}
    return result


def lenet_markdown(res: dict) -> str:
    dense = res["dense"]
    lat = res["latency"]
    base = lat["dense|onnxruntime"]["median_ms"]
    lines = [
        "| variant | test acc. (10k) | drop (points) | ONNX bytes | x vs dense | gzip -9 bytes | x dense / gzip | weight bytes | x weights |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| dense fp32 | {dense['accuracy']*100:.2f}% | | {dense['bytes']} | 1.0x | {dense['gzip']} | {dense['bytes']/dense['gzip']:.1f}x | {dense['weight_bytes']} | 1.0x |",
    ]
    for label, run in res["runs"].items():
        drop = (dense["accuracy"] - run["accuracy"]) * 100
        lines.append(
            f"| {label} | {run['accuracy']*100:.2f}% | {drop:.2f} | {run['bytes']} | {dense['bytes']/run['bytes']:.1f}x | "
            f"{run['gzip']} | {dense['bytes']/run['gzip']:.1f}x | {run['weight_stored_bytes']} | {dense['weight_bytes']/run['weight_stored_bytes']:.0f}x |"
        )
    lines += ["", "| variant | runtime | median ms | p90 ms | x vs dense onnxruntime |", "|---|---|---:|---:|---:|"]
    for key, stat in lat.items():
        variant, runtime = key.split("|")
        lines.append(f"| {variant} | {runtime} | {stat['median_ms']:.4f} | {stat['p90_ms']:.4f} | {base/stat['median_ms']:.2f}x |")
    return "\n".join(lines)


def layers_markdown(res: dict) -> str:
    lines = []
    for label, run in res["runs"].items():
        lines += [f"{label}:", "", "| layer | shape | nnz / numel | ONNX format | stored bytes | TVM kernel |", "|---|---|---:|---|---:|---|"]
        for layer, compiled in zip(run["layers"], run["compile_layers"]):
            kernel = compiled["kernel"] + (f" {compiled['block_rows']}x1" if compiled.get("block_rows", 1) > 1 else "")
            lines.append(f"| {layer['fqn']} | {'x'.join(map(str, compiled['weight_shape']))} | {layer['nnz']} / {layer['numel']} | "
                         f"{layer['format']} | {layer['stored_bytes']} | {kernel} |")
        parts = ", ".join(f"{k} {v}" for k, v in run["breakdown"].items())
        lines += ["", f"Compressed file by part (bytes): {parts}; whole file {run['bytes']}.", ""]
    return "\n".join(lines)


def resnet_markdown(res: dict) -> str:
    lat = res["latency"]
    base = lat["dense|onnxruntime"]["median_ms"]
    lines = ["| variant | weight sparsity | ONNX bytes | runtime | median ms | p90 ms | x vs dense onnxruntime |", "|---|---:|---:|---|---:|---:|---:|"]
    for key, stat in lat.items():
        variant, runtime = key.split("|")
        info = res["pruned"].get(variant, {"sparsity": 0.0, "bytes": res["dense"]["bytes"]})
        lines.append(f"| {variant} | {info['sparsity']:.3f} | {info['bytes']} | {runtime} | {stat['median_ms']:.4f} | {stat['p90_ms']:.4f} | {base/stat['median_ms']:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="append", default=[], help="LABEL=RUN_DIR of a finished `compress run` (repeatable)")
    parser.add_argument("--resnet", action="store_true", help="also time ResNet-20 (random init, block pruning)")
    parser.add_argument("--resnet-sparsity", default="0.9,0.95", help="comma-separated block sparsities for ResNet-20")
    parser.add_argument("--block", default="16,1", help="ResNet-20 block rows,cols")
    parser.add_argument("--runs", type=int, default=300, help="timed interleaved runs per candidate")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="", help="write all numbers to this JSON file")
    args = parser.parse_args(argv)

    from deploy.bench import machine_info

    out: dict = {"machine": machine_info(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    started = time.perf_counter()
    if args.run:
        runs = []
        for item in args.run:
            label, _, path = item.partition("=")
            runs.append((label, Path(path)))
        out["lenet"] = lenet_part(runs, n_runs=args.runs, warmup=args.warmup)
        print("## LeNet-5 / MNIST\n")
        print(lenet_markdown(out["lenet"]))
        print()
        print(layers_markdown(out["lenet"]))
    if args.resnet:
        block = tuple(int(v) for v in args.block.split(","))
        sparsities = [float(v) for v in args.resnet_sparsity.split(",")]
        out["resnet20"] = resnet_part(sparsities=sparsities, block=block, n_runs=args.runs, warmup=args.warmup, seed=args.seed)
        print("## ResNet-20 (random init)\n")
        print(resnet_markdown(out["resnet20"]))
        print()
    out["seconds"] = time.perf_counter() - started
    if "lenet" in out:
        print(f"TVM host vs onnxruntime, max abs logit difference: {out['lenet']['tvm_vs_onnxruntime_max_abs']}")
    print(f"machine: {json.dumps(out['machine'])}; date {out['date']}; {out['seconds']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
