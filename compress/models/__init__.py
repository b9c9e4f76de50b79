"""Small reference models with a registry: ``create_model("lenet5")``, ``list_models()``."""

from compress.models.registry import MODELS, create_model, list_models, model_input_shape
from compress.models import lenet as _lenet  # noqa: F401  (registers models)
from compress.models import enresnet as _enresnet  # noqa: F401  (registers enresnet20, enresnet-mnist)
from compress.models import inception as _inception, mobilenet as _mobilenet, resnet as _resnet  # noqa: F401

__all__ = ["MODELS", "create_model", "list_models", "model_input_shape"]
