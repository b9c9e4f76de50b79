"""Weight quantization: binary / ternary / TTQ / int8 projections, BinaryRelax and straight-through training.

Pure functions (``project_*``) return a ``QuantizedTensor`` (codes + scales, exact ``dequantize``);
training methods live in the ``QUANT_METHODS`` registry (``create_quant_method("ternary")``) and follow
``compress.optim.method.TrainingMethod``; ``finalize`` writes the projected weights and ``records()``
returns the ``QuantRecord`` list the export stage encodes.
"""

from compress.quant.binary import project_binary
from compress.quant.int8 import project_int8
from compress.quant.method import QUANT_METHODS, QuantMethod, create_quant_method, list_quant_methods
from compress.quant.projections import PROJECTIONS, get_projection, project
from compress.quant.quantized import QuantizedTensor, codes_from_weight, dequantize, record_scales
from compress.quant.report import LayerQuantReport, mean_bits_per_weight, quant_report, zero_ratio
from compress.quant.selection import select_quant_layers
from compress.quant.ternary import project_ternary_exact, project_twn
from compress.quant.ttq import project_ttq, ttq_initial_scales, ttq_ternarize
from compress.quant import catalog as _catalog  # noqa: F401  (registers the methods)

__all__ = [
    "PROJECTIONS",
    "QUANT_METHODS",
    "LayerQuantReport",
    "QuantMethod",
    "QuantizedTensor",
    "codes_from_weight",
    "create_quant_method",
    "dequantize",
    "get_projection",
    "list_quant_methods",
    "mean_bits_per_weight",
    "project",
    "project_binary",
    "project_int8",
    "project_ternary_exact",
    "project_ttq",
    "project_twn",
    "quant_report",
    "record_scales",
    "select_quant_layers",
    "ttq_initial_scales",
    "ttq_ternarize",
    "zero_ratio",
]
