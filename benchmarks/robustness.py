"""CPU proxy of "Sparsity Meets Robustness" (algorithms.md §3.4, §8.2 item 4) on real MNIST.

LeNet-5 is PGD-trained (Madry, eps = 0.3) twice with the same data, schedule and attack:
dense (plain SGD) and RGSM channel pruning (group lasso on conv input channels + relaxed group
hard-threshold splitting, Dinh et al. arXiv 2003.00631 §3.2). Each model is then evaluated on
natural accuracy, FGSM, IFGSM and PGD-40 (step 0.01) robust accuracy, weight and channel sparsity.

RGSM is the registered ``compress.optim`` method ``rgsm`` (conv weights only, input-channel groups,
as in the reference code), driven by ``compress.optim.loop.train_epoch`` with
``compress.robust.adversarial_loss`` as the loss: the robust loss and the sparse method compose.

Usage (2 shared cores: one thread, bounded):
    python benchmarks/robustness.py --train-size 6000 --epochs 5 --test-size 500 --rgsm 1e-2:3e-2
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from compress.models import create_model
from compress.optim import create_method
from compress.optim.loop import evaluate, start_training, train_epoch
from compress.optim.method import TrainingMethod
from compress.robust import adversarial_loss, create_attack, robust_accuracy
from pipeline.data.sources import load_source


# ----------------------------------------------------------------------------- data
def load_mnist(split: str, *, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """First ``size`` samples of ``split`` ("train" or "t10k"): images in [0, 1], (N, 1, 28, 28)."""
    raw = load_source("mnist")
    images, labels = (raw.train_x, raw.train_y) if split == "train" else (raw.test_x, raw.test_y)
    x = torch.from_numpy(images[:size].astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels[:size])


def batches(x, y, *, batch_size: int, generator: torch.Generator | None = None):
    order = torch.randperm(len(y), generator=generator) if generator is not None else torch.arange(len(y))
    for start in range(0, len(y), batch_size):
        index = order[start : start + batch_size]
        yield x[index], y[index]


# ----------------------------------------------------------------------------- groups
def conv_weights(model: nn.Module):
    return [(fqn, m.weight) for fqn, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def group_norms(weight: torch.Tensor) -> torch.Tensor:
    """L2 norm of each input-channel group ``W[:, i, :, :]`` (the paper-2 code's grouping)."""
    return weight.pow(2).sum(dim=(0, 2, 3)).sqrt()


# ----------------------------------------------------------------------------- metrics
def sparsity_report(model: nn.Module) -> dict[str, float]:
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    convs = [w for _, w in conv_weights(model)]
    in_groups = torch.cat([group_norms(w.detach()) for w in convs])
    out_groups = torch.cat([w.detach().pow(2).sum(dim=(1, 2, 3)).sqrt() for w in convs])
    return {
        "weight_sparsity": zeros / total,
        "channel_sparsity_in": float((in_groups == 0).float().mean()),
        "zero_in_channels": int((in_groups == 0).sum()),
        "in_channels": int(in_groups.numel()),
        "channel_sparsity_out": float((out_groups == 0).float().mean()),
        "near_zero_in_channels_1e-3": int((in_groups < 1e-3).sum()),
    }


def evaluate_all(model, test_full, test_sub, *, batch_size, seed):
    x_full, y_full = test_full
    x_sub, y_sub = test_sub
    attacks = {
        "fgsm": create_attack("fgsm", eps=0.3, seed=seed),
        "ifgsm20": create_attack("ifgsm", eps=0.3, step_size=0.03, steps=20, seed=seed),
        "pgd40": create_attack("pgd", eps=0.3, step_size=0.01, steps=40, seed=seed),
    }
    row = {"natural_full": evaluate(model, batches(x_full, y_full, batch_size=1000))}
    row["natural_sub"] = evaluate(model, batches(x_sub, y_sub, batch_size=1000))
    for name, attack in attacks.items():
        row[name] = robust_accuracy(model, batches(x_sub, y_sub, batch_size=batch_size), attack)
    row.update(sparsity_report(model))
    return row


# ----------------------------------------------------------------------------- training
def train(method: TrainingMethod, data, args, *, label: str) -> nn.Module:
    torch.manual_seed(args.seed)
    model = create_model("lenet5")
    x, y = data
    steps_per_epoch = math.ceil(len(y) / args.batch_size)
    optimizer = start_training(method, model, total_steps=args.epochs * steps_per_epoch)
    shuffle = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        lr = 0.5 * args.lr * (1 + math.cos(math.pi * epoch / args.epochs))
        for group in optimizer.param_groups:
            group["lr"] = lr
        eps = args.eps * min(1.0, epoch / args.ramp_epochs) if args.ramp_epochs > 0 else args.eps
        attack = create_attack(
            "pgd", eps=eps, step_size=max(2.5 * eps / args.train_steps, 1e-6), steps=args.train_steps,
            seed=args.seed + epoch,
        )
        start = time.time()
        loss = train_epoch(
            model, batches(x, y, batch_size=args.batch_size, generator=shuffle), method, optimizer,
            loss_fn=adversarial_loss(attack),
        )
        method.on_epoch_end(model, epoch=epoch)
        info = sparsity_report(model)
        norms = torch.cat([group_norms(w.detach()) for _, w in conv_weights(model)])
        print(
            f"[{label}] epoch {epoch + 1}/{args.epochs} eps={eps:.3f} lr={lr:.4f} adv-loss={loss:.4f} "
            f"zero-in-ch={info['zero_in_channels']}/{info['in_channels']} "
            f"in-group-norms min/median={float(norms.min()):.3f}/{float(norms.median()):.3f} ({time.time() - start:.0f}s)",
            flush=True,
        )
    method.finalize(model)
    return model


def _pair(text: str) -> tuple[float, float]:
    try:
        lam1, lam2 = (float(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LAM1:LAM2 (two floats), got {text!r}") from None
    return lam1, lam2


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", type=int, default=10000, help="first N MNIST training images")
    parser.add_argument("--test-size", type=int, default=1000, help="first N t10k images for robust accuracy")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--train-steps", type=int, default=7, help="PGD steps during training")
    parser.add_argument("--ramp-epochs", type=int, default=2, help="eps = eps * min(1, epoch / ramp): epoch 0 is natural training")
    parser.add_argument(
        "--rgsm", type=_pair, nargs="+", default=[(1e-2, 3e-2)], metavar="LAM1:LAM2",
        help="one RGSM run per pair: l0 weight lam1 (threshold sqrt(2*lam1/beta1)) and group-lasso weight lam2",
    )
    parser.add_argument("--beta1", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    train_data = load_mnist("train", size=args.train_size)
    test_full = load_mnist("t10k", size=10000)
    test_sub = (test_full[0][: args.test_size], test_full[1][: args.test_size])
    common = dict(lr=args.lr, momentum=0.9, weight_decay=5e-4)
    runs = [("dense", TrainingMethod.create(**common))]
    runs += [
        (
            f"rgsm lam1={lam1:g} lam2={lam2:g}",
            create_method(
                "rgsm", **common, lam1=lam1, lam2=lam2, beta=args.beta1, group_axis="input",
                layers="conv", nesterov=False,
            ),
        )
        for lam1, lam2 in args.rgsm
    ]
    rows = []
    for label, method in runs:
        start = time.time()
        model = train(method, train_data, args, label=label)
        row = {"run": label, "train_s": round(time.time() - start)}
        row.update(evaluate_all(model, test_full, test_sub, batch_size=250, seed=args.seed))
        print(json.dumps(row), flush=True)
        rows.append(row)
    print_table(rows, args)
    if args.json is not None:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows}, indent=2))


def print_table(rows, args) -> None:
    print(f"\nLeNet-5 / MNIST, PGD-{args.train_steps} training eps={args.eps}, {args.train_size} train images, "
          f"{args.epochs} epochs; natural on 10k test, robust on first {args.test_size} test images\n")
    print("| run | natural (10k) | natural (sub) | FGSM | IFGSM-20 | PGD-40 | weight sparsity | "
          "zero conv in-channels | channel sparsity (in) | channel sparsity (out) | train s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {100 * r['natural_full']:.2f} | {100 * r['natural_sub']:.2f} | {100 * r['fgsm']:.2f} | "
              f"{100 * r['ifgsm20']:.2f} | {100 * r['pgd40']:.2f} | {100 * r['weight_sparsity']:.2f}% | "
              f"{r['zero_in_channels']}/{r['in_channels']} | {100 * r['channel_sparsity_in']:.1f}% | "
              f"{100 * r['channel_sparsity_out']:.1f}% | {r['train_s']} |")


if __name__ == "__main__":
    main()
