"""Goal search against the README's hand-written recipes, at the same measured speed-up.

For each model and each speed-up goal, runs ``compress run --target host --threads 1 --min-speedup G
--max-accuracy-drop D`` (the goal search; default budget 15 minutes) and reads the shipped
candidate's own report (speed-up of the TVM build against dense onnxruntime, median, interleaved;
accuracy on the full test split; ONNX size) and the search's wall time. Hand-written recipes are run
the same way without goals (``--recipe FILE``, or the built-in recipe) and read from the same
report fields, so both sides are measured by the same code.

Models: ``lenet5`` (the bundled LeNet-5 on the real MNIST) and ``resnet20`` (ResNet-20, trained here
for one epoch on synthetic CIFAR-shaped data made by :func:`synthetic_cifar`: the search's speed side
is real, its accuracies only compare candidates with each other).

Usage (from the repository root)::

    python benchmarks/goal_search.py --model lenet5 --goals 2,3,4 --out /tmp/goalbench --json /tmp/goalbench/lenet.json
    python benchmarks/goal_search.py --model lenet5 --hand default --hand rgsm=benchmarks/goal_search.rgsm.yaml --out /tmp/goalbench

Prints a markdown table; ``lscpu | grep "Model name"`` names the CPU in the table's caption.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def synthetic_cifar(path: Path, *, train: int = 4000, test: int = 1000, seed: int = 0) -> Path:
    """An ``.npz`` of CIFAR-shaped images (3x32x32 uint8) whose class is a colour / stripe pattern
    plus noise, learnable in one epoch (so accuracy moves when layers are pruned)."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def make(count: int):
        y = rng.integers(0, 10, count)
        base = np.zeros((count, 3, 32, 32), dtype=np.float32)
        for label in range(10):
            rows = y == label
            base[rows, label % 3] += 0.5
            base[rows, :, :, (label * 3) % 32:(label * 3) % 32 + 3] += 0.4
        x = np.clip(base + rng.normal(0, 0.25, base.shape), 0, 1)
        return (x * 255).astype(np.uint8), y.astype(np.int64)

    x_train, y_train = make(train)
    x_test, y_test = make(test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def resnet20_checkpoint(out: Path, data: Path) -> Path:
    """ResNet-20 trained for one epoch on ``data`` (``compress train-sparse`` with plain SGD would
    sparsify; a short dense training through the project's loop keeps it dense)."""
    import numpy as np
    import torch

    from compress.models import create_model
    from pipeline.model.bundle import ModelBundle, save_bundle

    arrays = np.load(data)
    x = torch.from_numpy(arrays["x_train"]).float() / 255.0
    y = torch.from_numpy(arrays["y_train"])
    torch.manual_seed(0)
    model = create_model("resnet20")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for start in range(0, len(y), 64):
        loss = torch.nn.functional.cross_entropy(model(x[start:start + 64]), y[start:start + 64])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return save_bundle(out, ModelBundle(arch="resnet20", input_shape=(3, 32, 32), state_dict=model.state_dict()))


def run(args: list[str]) -> tuple[int, float]:
    start = time.perf_counter()
    code = subprocess.run([sys.executable, "-m", "pipeline", "--quiet", "run", *args], cwd=ROOT).returncode
    return code, time.perf_counter() - start


def shipped(run_dir: Path) -> dict:
    """Speed-up, accuracy, drop and size of what a finished run ships, from its own report."""
    from deploy.report import load_report
    from pipeline.goal.verify import measured_values
    from pipeline.manifest import read_manifest

    manifest = read_manifest(run_dir)
    record = next(r for r in manifest["stages"] if r["name"] == "report")
    return measured_values(load_report(run_dir / record["outputs"]["report-json"]["path"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("lenet5", "resnet20"), default="lenet5")
    parser.add_argument("--goals", default="2,3,4", help="speed-up goals, comma separated ('' for none)")
    parser.add_argument("--max-accuracy-drop", type=float, default=0.005)
    parser.add_argument("--budget", type=float, default=None, help="--search-budget minutes (default: the tool's)")
    parser.add_argument("--hand", action="append", default=[], help="LABEL=RECIPE or 'default' (the built-in recipe)")
    parser.add_argument("--extra", default="", help="extra compress run arguments, space separated")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    common = ["--target", "host", "--threads", "1", *args.extra.split()]
    if args.model == "resnet20":
        data = synthetic_cifar(args.out / "cifar-synthetic.npz")
        model = resnet20_checkpoint(args.out / "resnet20.pt", data)
        common = [str(model), "--arch", "resnet20", "--data", str(data), *common]
    rows = []
    for goal in [float(g) for g in args.goals.split(",") if g.strip()]:
        out = args.out / f"{args.model}-goal-{goal:g}x"
        budget = [] if args.budget is None else ["--search-budget", str(args.budget)]
        code, seconds = run([*common, "--min-speedup", str(goal), "--max-accuracy-drop", str(args.max_accuracy_drop), *budget, "--out", str(out)])
        search = json.loads((out / "goal" / "search.json").read_text())
        rows.append({"what": f"search, goal {goal:g}x", "exit": code, "seconds": seconds, "candidates": len(search["candidates"]), **shipped(out)})
    for hand in args.hand:
        label, _, recipe = hand.partition("=")
        out = args.out / f"{args.model}-hand-{label}"
        code, seconds = run([*common, *(["--recipe", recipe] if recipe else []), "--out", str(out)])
        rows.append({"what": f"hand-written: {label}", "exit": code, "seconds": seconds, "candidates": 1, **shipped(out)})
    from deploy.bench.machine import cpu_model

    print(f"\n{args.model}, target host, 1 thread, CPU {cpu_model()}\n")
    print("| run | exit | speed-up (median) | accuracy | drop, points | ONNX size | candidates | wall time |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['what']} | {r['exit']} | {r['speedup']:.2f}x | {100 * r['accuracy']:.2f}% | {100 * r['accuracy_drop']:.2f} | "
              f"{r['size_kib']:.1f} KiB | {r['candidates']} | {r['seconds'] / 60:.1f} min |")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_model(), "model": args.model, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
