"""Helpers shared by the model-to-model stages: load a bundle, evaluate, save the next bundle."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from torch import nn

from compress.optim.renamed import rename_hyperparameters
from compress.stats import count_nonzero_weights, has_non_finite, layer_stats, parameter_count, weight_sparsity
from pipeline.config import config_from_dict
from pipeline.errors import StageError, UserError
from pipeline.model.bundle import ModelBundle, build_model, load_bundle, save_bundle
from pipeline.stage import StageContext
from pipeline.training.loop import evaluate_model, train_device

MODEL_FILE = "model.pt"


def training_notes(ctx: StageContext, data: Any, augment: str) -> dict[str, Any]:
    """The training transform and device a stage used (its metrics; the device's transform is the preprocessing record)."""
    augmentation = data.augmentation(augment)
    return {"augmentation": augmentation.to_dict() if augmentation is not None else None,
            "train_device": str(train_device(ctx)), "amp": ctx.options.amp}


def load_model(ctx: StageContext, path: Path) -> tuple[ModelBundle, nn.Module]:
    bundle = load_bundle(path)
    return bundle, build_model(bundle, trust_pickle=ctx.options.trust_pickle, trusted_archs=ctx.options.trusted_archs)


def save_model(ctx: StageContext, bundle: ModelBundle, model: nn.Module, **changes: Any) -> Path:
    """Save the stage's model with the preprocessing it was trained and evaluated with; weights that
    training drove to NaN / Inf are refused, never saved."""
    bad = has_non_finite(model)
    if bad:
        raise StageError(f"{ctx.stage_dir.name}: training left NaN or Inf in weight {bad}; lower the learning rate or check the data")
    changes.setdefault("preprocess", ctx.load_data(bundle.input_shape).preprocessing_record())
    return save_bundle(Path(ctx.stage_dir) / MODEL_FILE, bundle.with_model(model, **changes))


def model_metrics(ctx: StageContext, model: nn.Module, data: Any) -> dict[str, Any]:
    """Accuracy on the held-out split (on the training device) and the weight statistics."""
    return {
        "test_accuracy": evaluate_model(ctx, model, data),
        "weight_sparsity": weight_sparsity(model),
        "nonzero_weights": count_nonzero_weights(model),
        "parameters": parameter_count(model),
        "layers": [s.to_dict() for s in layer_stats(model)],
    }


def make_method(cls: type, values: dict[str, Any], *, what: str, lr_scale: float = 1.0) -> Any:
    """``cls`` (a training or quantization method) with its typed ``Hyperparameters`` built from
    ``values`` by the code that checks stage configs; a bad name or value is one ``UserError`` line.
    ``lr_scale`` multiplies the learning rate (the given one, else the method's default). An earlier
    name of a hyperparameter is read as today's, with one warning line (``compress.optim.renamed``)."""
    try:
        values = rename_hyperparameters(cls.Hyperparameters, values, where=what)
    except ValueError as error:
        raise UserError(str(error)) from None
    if lr_scale != 1.0:
        defaults = {f.name: f.default for f in dataclasses.fields(cls.Hyperparameters)}
        if "lr" in defaults:
            values = {**values, "lr": float(values.get("lr", defaults["lr"])) * lr_scale}
    hp = config_from_dict(cls.Hyperparameters, values, where=what)
    try:  # a check that needs two settings at once (SCAD's shape) is made by the method itself
        return cls(hp)
    except (TypeError, ValueError) as error:
        raise UserError(f"{what}: {error}") from None
