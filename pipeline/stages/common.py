"""Helpers shared by the model-to-model stages: load a bundle, evaluate, save the next bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from compress.optim.loop import evaluate
from compress.stats import (
    count_nonzero_weights,
    layer_stats,
    parameter_count,
    weight_sparsity,
)
from pipeline.config import config_from_dict
from pipeline.errors import UserError
from pipeline.model_io import ModelBundle, build_model, load_bundle, save_bundle
from pipeline.stage import StageContext

MODEL_FILE = "model.pt"


def load_model(ctx: StageContext, path: Path) -> tuple[ModelBundle, nn.Module]:
    bundle = load_bundle(path)
    return bundle, build_model(bundle, trust_pickle=ctx.options.trust_pickle, trusted_archs=ctx.options.trusted_archs)


def save_model(ctx: StageContext, bundle: ModelBundle, model: nn.Module, **changes: Any) -> Path:
    """Save the stage's model with the preprocessing it was trained and evaluated with; weights that
    training drove to NaN / Inf are refused, never saved."""
    from compress.stats import has_non_finite
    from pipeline.errors import StageError

    bad = has_non_finite(model)
    if bad:
        raise StageError(f"{ctx.stage_dir.name}: training left NaN or Inf in weight {bad}; lower the learning rate or check the data")
    changes.setdefault("preprocess", ctx.load_data(bundle.input_shape).preprocessing_record())
    return save_bundle(Path(ctx.stage_dir) / MODEL_FILE, bundle.with_model(model, **changes))


def model_metrics(model: nn.Module, data: Any) -> dict[str, Any]:
    """Accuracy on the held-out split and the weight statistics of §7 of the algorithms spec."""
    return {
        "test_accuracy": evaluate(model, data.test_batches()),
        "weight_sparsity": weight_sparsity(model),
        "nonzero_weights": count_nonzero_weights(model),
        "parameters": parameter_count(model),
        "layers": [s.to_dict() for s in layer_stats(model)],
    }


def make_method(cls: type, values: dict[str, Any], *, what: str) -> Any:
    """``cls`` (a training or quantization method) with its typed ``Hyperparameters`` built from
    ``values`` by the code that checks stage configs; a bad name or value is one ``UserError`` line."""
    hp = config_from_dict(cls.Hyperparameters, values, where=what)
    try:  # a check that needs two settings at once (SCAD's shape) is made by the method itself
        return cls(hp)
    except (TypeError, ValueError) as error:
        raise UserError(f"{what}: {error}") from None
