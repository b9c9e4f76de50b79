"""Weight quantization: binary / ternary / TTQ / int8 projections, BinaryRelax and straight-through training.

Pure functions (``project_*``) return a ``QuantizedTensor`` (codes + scales, exact ``dequantize``);
training methods (one base, ``QuantMethod``; one file per method) are listed in ``QUANT_METHODS``
(``create_quant_method("ternary", mode="exact")``); ``finalize`` writes the projected weights and
``records()`` returns the ``QuantRecord`` list the export stage encodes. The ``"int8"`` method also
calibrates per-tensor activation scales (``calibrate``) and fake-quantizes activations
(``ActivationFakeQuant``); its ``record_dicts()`` add them to each weight's record.
"""

from typing import Any

from compress.quant.binary import project_binary
from compress.quant.binary_relax import BinaryRelax
from compress.quant.activation_quant import ActivationFakeQuant, ActivationScales, attach_activation_quant
from compress.quant.calibration import ActivationRange, observe_ranges
from compress.quant.fake_quant import fake_quantize, symmetric_scale
from compress.quant.int8 import project_int8
from compress.quant.int8_qat import Int8Method
from compress.quant.method import QuantHyperparameters, QuantMethod
from compress.quant.projections import PROJECTIONS, get_projection, project
from compress.quant.quantized import (
    QuantizedTensor,
    codes_from_weight,
    dequantize,
    record_scales,
)
from compress.quant.report import (
    LayerQuantReport,
    mean_bits_per_weight,
    quant_report,
    zero_ratio,
)
from compress.quant.ste import BinaryMethod, TernaryMethod
from compress.quant.ternary import project_ternary_exact, project_twn
from compress.quant.ttq import TTQMethod, project_ttq, ttq_initial_scales, ttq_ternarize
from compress.registry import Registry

QUANT_METHODS: Registry[QuantMethod] = Registry("quantization method", [TernaryMethod, BinaryMethod, Int8Method, TTQMethod, BinaryRelax])


def create_quant_method(name: str, **hyperparameters: Any) -> QuantMethod:
    """A registered quantization method with ``Hyperparameters(**hyperparameters)``."""
    return QUANT_METHODS.get(name).create(**hyperparameters)


def list_quant_methods() -> list[str]:
    return QUANT_METHODS.names()


def register_quant_method(cls: type[QuantMethod]) -> type[QuantMethod]:
    """Add a ``QuantMethod`` subclass under its ``name`` (a plug-in; usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, QuantMethod)):
        raise TypeError(f"{cls!r} is not a QuantMethod subclass")
    return QUANT_METHODS.add(cls)


__all__ = [
    "ActivationFakeQuant",
    "ActivationRange",
    "ActivationScales",
    "Int8Method",
    "PROJECTIONS",
    "QUANT_METHODS",
    "LayerQuantReport",
    "QuantHyperparameters",
    "QuantMethod",
    "QuantizedTensor",
    "attach_activation_quant",
    "codes_from_weight",
    "create_quant_method",
    "dequantize",
    "fake_quantize",
    "get_projection",
    "list_quant_methods",
    "mean_bits_per_weight",
    "observe_ranges",
    "project",
    "project_binary",
    "project_int8",
    "project_ternary_exact",
    "project_ttq",
    "project_twn",
    "quant_report",
    "record_scales",
    "register_quant_method",
    "symmetric_scale",
    "ttq_initial_scales",
    "ttq_ternarize",
    "zero_ratio",
]
