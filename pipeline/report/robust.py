"""Robust accuracy of every report variant, the shipped artifact included.

Every torch variant (dense, sparse-trained, pruned, quantized) is attacked white-box. The compiled
variant has no gradients of its own: its adversarial examples are crafted on the torch model of the
same weights (the last model stage, which export wrote to ONNX) and classified by the artifacts that
ship, the ONNX under onnxruntime and the TVM build (host library, batch 1). Every variant is attacked
on the same first ``robust_samples`` test images with the same seeds, in pixel units
(``pipeline.training.adversarial.make_attack``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from compress.robust import robust_accuracy
from deploy.runtimes import load_session
from pipeline.report.data import VariantModel
from pipeline.stage import StageContext
from pipeline.training.adversarial import default_step_size, make_attack

BATCH = 250


def add_robust_accuracy(ctx: StageContext, config, variants: list[dict[str, Any]], models: dict[str, VariantModel]) -> list[str]:
    """Set ``robust_accuracy`` ({attack: accuracy}) on every variant of ``variants``; returns notes."""
    if not config.robust:
        return []

    source = _attack_source(models)
    if source is None:
        return ["Robust accuracy not measured: the run has no torch model to compute attack gradients (ONNX input)."]
    data = ctx.load_data(source.input_shape)
    limit = max(min(config.robust_samples, len(data.test_y)), 1)
    batches = [(data.test_x[i : i + BATCH], data.test_y[i : i + BATCH]) for i in range(0, limit, BATCH)]
    for variant in variants:
        model = models.get(variant["name"])
        if model is not None and model.model is not None:
            variant["robust_accuracy"] = {name: robust_accuracy(model.model, batches, _attack(name, data, config, ctx)) for name in config.robust}
    compiled = next((v for v in variants if v["name"] == "compiled"), None)
    if compiled is not None and models["compiled"].onnx is not None:
        results = {name: _shipped_accuracy(models["compiled"], source.model, batches, _attack(name, data, config, ctx)) for name in config.robust}
        compiled["robust_accuracy"] = {name: result["onnxruntime"] for name, result in results.items()}
        if models["compiled"].tvm_library is not None:
            compiled["robust_accuracy_tvm"] = {name: result["tvm"] for name, result in results.items()}
    return [
        f"Robust accuracy: {', '.join(a.upper() for a in config.robust)} at eps {config.robust_eps:g} (pixel units, "
        f"valid range {list(data.pixel_range)}), {config.robust_steps} steps of {default_step_size(config.robust_eps, config.robust_steps):g} for the iterative attacks, "
        f"on the first {limit} test images. The compiled variant is attacked through the torch model of its weights "
        f"({source.name}) and classified by onnxruntime on the exported ONNX (robust_accuracy) and by the TVM build "
        "(robust_accuracy_tvm)."
    ]


def _attack_source(models: dict[str, VariantModel]) -> VariantModel | None:
    """The last torch variant: the weights export wrote to ONNX."""
    torch_models = [m for m in models.values() if m.model is not None]
    return torch_models[-1] if torch_models else None


def _attack(name: str, data, config, ctx: StageContext):
    return make_attack(name, data, eps=config.robust_eps, steps=config.robust_steps, step_size=None, seed=ctx.options.seed)


def _shipped_accuracy(compiled: VariantModel, model: torch.nn.Module, batches, attack) -> dict[str, float]:
    """Accuracy of the ONNX (onnxruntime) and the TVM build on adversarial examples crafted on ``model``."""
    onnx_session = load_session("onnxruntime", compiled.onnx)
    tvm_session = load_session("tvm", compiled.tvm_library) if compiled.tvm_library is not None else None
    correct = {"onnxruntime": 0, "tvm": 0}
    count = 0
    for inputs, targets in batches:
        adversarial = attack(model, inputs, targets).numpy().astype(np.float32)
        labels = targets.numpy()
        correct["onnxruntime"] += int((onnx_session.run_one(adversarial).argmax(1) == labels).sum())
        if tvm_session is not None:
            predictions = [int(tvm_session.run_one(adversarial[i : i + 1]).argmax()) for i in range(len(labels))]
            correct["tvm"] += int((np.array(predictions) == labels).sum())
        count += len(labels)
    result = {"onnxruntime": correct["onnxruntime"] / count}
    result["tvm"] = correct["tvm"] / count if tvm_session is not None else None
    return result
