"""Train the bundled example: LeNet-5 (Caffe variant) on the real MNIST, saved as a model bundle.

Command (measured on 2-core x86-64, no GPU):
    python benchmarks/train_example.py --epochs 3 --out pipeline/examples/lenet5_mnist.pt
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from compress.models import create_model
from compress.optim.loop import evaluate
from pipeline.data import load_dataset
from pipeline.model.bundle import ModelBundle, save_bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("pipeline/examples/lenet5_mnist.pt"))
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    data = load_dataset("mnist", model_input_shape=(1, 28, 28))
    model = create_model("lenet5")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        for x, y in data.train_batches(batch_size=args.batch_size, seed=args.seed, epoch=epoch):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        schedule.step()
        accuracy = evaluate(model, data.test_batches())
        print(f"epoch {epoch + 1}: test accuracy {accuracy:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
    bundle = ModelBundle(
        arch="lenet5",
        arch_kwargs={},
        input_shape=(1, 28, 28),
        state_dict=model.state_dict(),
        preprocess=data.preprocess.to_dict(),
        metrics={"test_accuracy": accuracy, "epochs": args.epochs, "data": "mnist", "seed": args.seed},
    )
    save_bundle(args.out, bundle)
    print(f"saved {args.out} ({args.out.stat().st_size} bytes), test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
