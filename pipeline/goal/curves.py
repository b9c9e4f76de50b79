"""The search's per-layer curves: layer shapes, one-shot sensitivity (cached in the run) and kernel
latency tables (cached per CPU and kernel version), joined into :class:`compress.search.LayerCurve`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from compress.search import LayerCurve, block_magnitude_prune, layer_sensitivity
from compress.selection import ParamSelector
from compress.types import BlockShape
from deploy.bench.layer_latency import LayerShape, layer_table
from pipeline.atomic import sha256_json, write_json
from pipeline.goal.config import Goals

SENSITIVITY_FILE = "sensitivity.json"
TERNARY_METHODS = ("ternary", "ttq", "binary-relax")


def layer_shapes(model: nn.Module, example: torch.Tensor) -> dict[str, Any]:
    """``{weight fqn: LayerShape}`` of every dense conv (square kernel, groups 1) and linear layer,
    from one forward pass (the input size each layer sees)."""
    shapes: dict[str, Any] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.groups == 1 and module.kernel_size[0] == module.kernel_size[1] \
                and module.stride[0] == module.stride[1] and isinstance(module.padding, tuple) and module.padding[0] == module.padding[1] \
                and module.dilation == (1, 1):
            def conv_hook(mod, args, _out, name=name):
                _, c, h, w = args[0].shape
                shapes[f"{name}.weight"] = LayerShape("conv", c, mod.out_channels, mod.kernel_size[0], mod.stride[0], mod.padding[0], h, w)
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            def linear_hook(mod, _args, _out, name=name):
                shapes[f"{name}.weight"] = LayerShape("linear", mod.in_features, mod.out_features)
            hooks.append(module.register_forward_hook(linear_hook))
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(example[:1])
        model.train(was_training)
    finally:
        for hook in hooks:
            hook.remove()
    return shapes


def layer_precisions(model: nn.Module, steps, fqns: list[str]) -> dict[str, str]:
    """``ternary`` for the weights the recipe's quantize step turns ternary, else ``fp32``."""
    step = next((s for s in steps if s.use == "quantize"), None)
    if step is None or step.config.method not in TERNARY_METHODS:
        return {fqn: "fp32" for fqn in fqns}
    config = step.config
    selector = ParamSelector(include=tuple(config.include), exclude=tuple(config.exclude), skip_first_last=config.skip_first_last)
    chosen = {fqn for fqn, _ in selector.weights(model)}
    return {fqn: "ternary" if fqn in chosen else "fp32" for fqn in fqns}


def calibration_evaluator(data, *, samples: int, batch_size: int = 500) -> tuple[Callable[[nn.Module], float], int]:
    """``model -> accuracy`` on the last ``samples`` training samples (never the test split)."""
    total = len(data.train_y)
    start = max(0, total - samples)
    x = torch.stack([data.train_x[i] for i in range(start, total)]) if total - start <= 5000 else None
    y = data.train_y[start:total]

    @torch.no_grad()
    def evaluate(model: nn.Module) -> float:
        correct = 0
        for first in range(0, len(y), batch_size):
            batch = x[first:first + batch_size]
            correct += int((model(batch).argmax(dim=1) == y[first:first + batch_size]).sum())
        return correct / max(len(y), 1)

    if x is None:
        raise ValueError(f"calibration-samples must be <= 5000, got {samples}")
    return evaluate, len(y)


def short_term_fine_tune(data, *, steps: int, calibration_samples: int, batch_size: int = 64, lr: float = 0.01, seed: int = 0):
    """``(model, {fqn: mask}) -> None``: ``steps`` of masked SGD (momentum 0.9) on a fixed pool of
    training batches outside the calibration tail (NetAdapt's short-term fine-tune); None for 0 steps."""
    if steps <= 0:
        return None
    pool = max(len(data.train_y) - calibration_samples, 1)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randint(0, pool, (steps * batch_size,), generator=generator)
    x = torch.stack([data.train_x[int(i)] for i in order])
    y = data.train_y[order]

    def fine_tune(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
        parameters = dict(model.named_parameters())
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        model.train()
        for step in range(steps):
            batch = slice(step * batch_size, (step + 1) * batch_size)
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for fqn, mask in masks.items():
                    parameters[fqn].mul_(mask)

    return fine_tune


def sensitivity_curves(model: nn.Module, fqns: list[str], goals: Goals, evaluate, *, cache_dir: Path, model_digest: str, log, fine_tune=None) -> dict[str, Any]:
    """Per-layer calibration accuracy lost at each level, from ``cache_dir/sensitivity.json`` when the
    same model, levels, block and calibration size made it (``--resume``), else measured and cached."""
    key = sha256_json({"model": model_digest, "levels": list(goals.levels), "block": list(goals.block),
                       "samples": goals.calibration_samples, "layers": fqns,
                       "short_term_steps": goals.short_term_steps})
    path = cache_dir / SENSITIVITY_FILE
    if path.exists():
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("key") == key:
            log("goal: sensitivity reused from the run directory")
            return {**cached, "cached": True}
    reference = evaluate(model)
    curves = layer_sensitivity(model, fqns=fqns, levels=list(goals.levels), evaluate=evaluate,
                               mask_function=block_magnitude_prune(BlockShape(*goals.block)), reference=reference, fine_tune=fine_tune)
    record = {"key": key, "reference_accuracy": reference, "curves": curves}
    write_json(path, record)
    return {**record, "cached": False}


def latency_curves(shapes: dict[str, Any], precisions: dict[str, str], goals: Goals, *, threads: int, log) -> dict[str, dict]:
    """``{fqn: {"seconds": [...], "kernels": [...]}}`` from :func:`deploy.bench.layer_latency.layer_table`."""
    tables = {}
    for fqn, shape in shapes.items():
        tables[fqn] = layer_table(shape, list(goals.levels), precision=precisions[fqn], block=BlockShape(*goals.block), threads=threads)
        log(f"goal: {fqn} kernel times {'(cached)' if tables[fqn]['cached'] else '(measured)'}: "
            + " ".join(f"{1e6 * t:.1f}" for t in tables[fqn]["seconds"]) + " us")
    return tables


def join_curves(shapes, precisions, sensitivity: dict[str, list[float]], tables, goals: Goals) -> tuple[list[LayerCurve], list[dict]]:
    """The allocation's curves and their report records (levels, sensitivity, times, kernels, sizes)."""
    block = BlockShape(*goals.block)
    curves, records = [], []
    for fqn, shape in shapes.items():
        sizes = tuple(shape.weight_bytes(s, precision=precisions[fqn], block=block) for s in goals.levels)
        curve = LayerCurve(fqn, tuple(goals.levels), tuple(sensitivity[fqn]), tuple(tables[fqn]["seconds"]), sizes)
        curves.append(curve)
        records.append({"fqn": fqn, "shape": _shape_text(shape), "precision": precisions[fqn], "levels": list(goals.levels),
                        "sensitivity": list(sensitivity[fqn]), "latency_ms": [1000 * t for t in tables[fqn]["seconds"]],
                        "kernels": tables[fqn]["kernels"], "size_bytes": list(sizes)})
    return curves, records


def _shape_text(shape) -> str:
    if shape.kind == "linear":
        return f"linear {shape.in_channels}->{shape.out_channels}"
    return f"conv {shape.in_channels}->{shape.out_channels} k{shape.kernel} s{shape.stride} p{shape.padding} @ {shape.height}x{shape.width}"
