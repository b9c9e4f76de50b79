"""Adversarially train LeNet-5 on MNIST (Madry PGD, eps = 0.3): the robust input of benchmarks/robustness.md.

Starts from the bundled naturally trained example (``pipeline/examples/lenet5_mnist.pt``) and trains on all
60,000 MNIST training images with PGD-k adversarial examples only (Madry et al., arXiv 1706.06083),
eps ramped 0.1 -> 0.3 over the first epochs, Adam with a cosine learning rate. After each epoch it
prints natural accuracy (10k test images) and PGD-20 robust accuracy (first 1,000 test images), and
writes the model as a compress bundle that ``compress run`` takes as input.

Usage (one thread, ~2.5 minutes per epoch on the 2-core developer machine):
    python benchmarks/robust_pretrain.py --epochs 8 --out /tmp/rob/lenet5_pgd.pt
    python benchmarks/robust_pretrain.py --init /tmp/rob/lenet5_pgd.pt --epochs 4 --ramp-epochs 0 --lr 3e-4 --out /tmp/rob/lenet5_pgd12.pt
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from compress.optim.loop import evaluate
from compress.robust import adversarial_loss, create_attack, robust_accuracy
from pipeline.data.sources import load_source
from pipeline.model.bundle import build_model, load_bundle, save_bundle

EXAMPLE = Path(__file__).resolve().parent.parent / "pipeline" / "examples" / "lenet5_mnist.pt"


def mnist() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    raw = load_source("mnist")
    as_float = lambda images: torch.from_numpy(images.astype(np.float32) / 255.0)  # noqa: E731
    return as_float(raw.train_x), torch.from_numpy(raw.train_y.astype(np.int64)), as_float(raw.test_x), torch.from_numpy(raw.test_y.astype(np.int64))


def batches(x, y, *, batch_size: int, generator: torch.Generator | None = None):
    order = torch.randperm(len(y), generator=generator) if generator is not None else torch.arange(len(y))
    for start in range(0, len(y), batch_size):
        index = order[start : start + batch_size]
        yield x[index], y[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=7, help="PGD steps per training batch (step 2.5 eps / steps)")
    parser.add_argument("--ramp-epochs", type=int, default=2, help="eps grows linearly from eps/3 to eps over these epochs")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (cosine decay)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", type=Path, default=EXAMPLE, help="bundle to start from (default: the bundled natural example)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    train_x, train_y, test_x, test_y = mnist()
    bundle = load_bundle(args.init)
    model = build_model(bundle)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    shuffle = torch.Generator().manual_seed(args.seed)
    evaluation = create_attack("pgd", eps=args.eps, step_size=2.5 * args.eps / 20, steps=20, seed=args.seed)
    for epoch in range(args.epochs):
        start = time.time()
        eps = args.eps * min(1.0, (1 + 2 * epoch / max(args.ramp_epochs, 1)) / 3) if args.ramp_epochs else args.eps
        lr = 0.5 * args.lr * (1 + math.cos(math.pi * epoch / args.epochs))
        for group in optimizer.param_groups:
            group["lr"] = lr
        attack = create_attack("pgd", eps=eps, step_size=2.5 * eps / args.steps, steps=args.steps, seed=args.seed + epoch)
        loss_fn = adversarial_loss(attack)
        model.train()
        total = 0.0
        for x, y in batches(train_x, train_y, batch_size=args.batch_size, generator=shuffle):
            optimizer.zero_grad()
            loss = loss_fn(model, x, y)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(y)
        natural = evaluate(model, batches(test_x, test_y, batch_size=1000))
        robust = robust_accuracy(model, batches(test_x[:1000], test_y[:1000], batch_size=250), evaluation)
        print(f"epoch {epoch + 1}/{args.epochs} eps {eps:.3f} lr {lr:.2e} loss {total / len(train_y):.4f} "
              f"natural {natural:.4f} PGD-20 {robust:.4f} ({time.time() - start:.0f} s)", flush=True)
        save_bundle(args.out, bundle.with_model(model, metrics={"natural": natural, "pgd20": robust}))


if __name__ == "__main__":
    main()
