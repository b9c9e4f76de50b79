"""Sparsity meets robustness, end to end: an adversarially trained LeNet-5 through the whole pipeline.

MNIST analogue of "Sparsity Meets Robustness" (Dinh et al., arXiv 2003.00631); the paper's CIFAR-10
EnResNet20 experiment needs CIFAR-10, which is not available offline here.

1. ``benchmarks/robust_pretrain.py`` adversarially trains LeNet-5 (PGD, eps = 0.3) into a bundle.
2. This script runs ``compress run`` on it twice, to ``--target arm64``: with
   ``benchmarks/robust_adversarial.yaml`` (one run-level ``robust`` block: every training stage
   fine-tunes on PGD examples) and with ``benchmarks/robust_natural.yaml`` (the same stages, natural
   fine-tuning). Both reports attack every variant with PGD-20 (eps 0.3, step 2.5 eps / 20, random
   start) on the first 1,000 test images; the compiled variant's examples are crafted on the torch
   model of the exported weights and classified by onnxruntime on the shipped ONNX and by the TVM
   build.
3. It prints one markdown table per run (clean accuracy on the 10k test set, PGD-20 accuracy, weight
   sparsity, removed channels, wall time) and writes the rows as JSON.

Usage (repository root; ~3 min per adversarial epoch on the 2-core machine)::

    python benchmarks/robust_pretrain.py --epochs 8 --out /tmp/rob/lenet5_pgd.pt
    python benchmarks/robustness.py --model /tmp/rob/lenet5_pgd.pt --out /tmp/rob/bench --json /tmp/rob/bench.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECIPES = {"adversarial": HERE / "robust_adversarial.yaml", "natural": HERE / "robust_natural.yaml"}


def run_pipeline(model: Path, recipe: Path, out: Path, *, target: str) -> float:
    """``compress run`` as a user would; returns its wall time in seconds."""
    start = time.time()
    command = [sys.executable, "-m", "pipeline", "--quiet", "run", str(model), "--recipe", str(recipe), "--target", target, "--out", str(out)]
    if out.exists():
        command.append("--resume")
    subprocess.run(command, check=True)
    return time.time() - start


def rows_of(run: Path) -> list[dict]:
    manifest = json.loads((run / "manifest.json").read_text())
    report_record = next(r for r in manifest["stages"] if r["name"] == "report")
    report = json.loads((run / report_record["outputs"]["report-json"]["path"]).read_text())
    removed = {r["name"]: r["metrics"].get("removed_channel_sparsity") for r in manifest["stages"]}
    rows = []
    for variant in report["variants"]:
        rows.append({
            "variant": variant["name"],
            "clean": variant["accuracy"],
            "pgd20": (variant.get("robust_accuracy") or {}).get("pgd"),
            "pgd20_tvm": (variant.get("robust_accuracy_tvm") or {}).get("pgd"),
            "weight_sparsity": variant["weight_sparsity"],
            "removed_channel_sparsity": removed.get("prune") if variant["name"] in ("pruned", "quantized", "compiled") else None,
            "onnx_bytes": variant["size_bytes"].get("onnx"),
        })
    return rows


def table(label: str, rows: list[dict], seconds: float) -> str:
    def pct(value):
        return "" if value is None else f"{100 * value:.2f}"

    lines = [f"### {label} ({seconds / 60:.1f} min wall)", "",
             "| variant | clean (10k) | PGD-20 (1k) | PGD-20 on the TVM build | weight sparsity | removed channels |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['variant']} | {pct(row['clean'])} | {pct(row['pgd20'])} | {pct(row['pgd20_tvm'])} | "
                     f"{pct(row['weight_sparsity'])} | {pct(row['removed_channel_sparsity'])} |")
    dense, shipped = rows[0], rows[-1]
    lines += ["", f"Shipped vs dense: clean {100 * (shipped['clean'] - dense['clean']):+.2f} points, "
                  f"PGD-20 {100 * (shipped['pgd20'] - dense['pgd20']):+.2f} points."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="the adversarially trained bundle (robust_pretrain.py)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the two run directories")
    parser.add_argument("--target", default="arm64")
    parser.add_argument("--only", choices=tuple(RECIPES), default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = {}
    for label, recipe in RECIPES.items():
        if args.only and label != args.only:
            continue
        seconds = run_pipeline(args.model, recipe, args.out / label, target=args.target)
        results[label] = {"seconds": seconds, "rows": rows_of(args.out / label)}
        print(table(f"{label} fine-tuning ({recipe.name})", results[label]["rows"], seconds), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
