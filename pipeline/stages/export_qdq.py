"""The export stage's QDQ path: a bundle whose int8 weights carry activation scales (the int8 method's
calibrated, fine-tuned model) is written as a QDQ int8 ONNX (``deploy.onnx.qdq``) and checked against
the torch model with the same activation fake quantization.

Parity: onnxruntime runs the file with its integer kernels (``QLinearConv`` / ``QGemm``), which
requantize each int8 tensor once; the torch model rounds the same float values, so an element whose
value lies within float rounding of a half step may land one step apart. The check therefore allows
one quantization step of the output (the coarsest int8 step in the graph when the output is float).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compress.quant import ActivationScales, attach_activation_quant
from compress.types import QuantRecord

STEP_SLACK = 1.0 + 1e-5  # float rounding of the step itself


@dataclass(frozen=True)
class QdqExport:
    """What the QDQ path wrote and measured (the fields the export stage reads, plus its own)."""

    path: Path
    sizes: Any
    layers: list[dict]
    max_abs_error: float
    parity_tolerance: float
    int8_ops: dict[str, int]


def has_activation_scales(quant: list[dict[str, Any]]) -> bool:
    """Whether any weight record carries the int8 method's activation scales."""
    return any(ActivationScales.from_dict(record) is not None for record in quant)


def export_kind(quant: list[dict[str, Any]]) -> str:
    """``"qdq"`` for a bundle with calibrated int8 activations, else ``"compact"``."""
    return "qdq" if has_activation_scales(quant) else "compact"


def export_qdq_model(model: torch.nn.Module, example: torch.Tensor, path: Path, *, quant: list[dict[str, Any]],
                     opset: int, preprocess: dict, **_compact_options: Any) -> QdqExport:
    """Write the QDQ ONNX of ``model`` to ``path`` and measure it against the fake-quantized model
    (the compact exporter's options, ``encoding`` and ``layouts``, do not apply: int8 codes are stored dense).

    Raises:
        OnnxFormatError: from the exporter (a record or weight it cannot write).
    """
    import onnx

    from deploy.onnx.parity import run_onnx
    from deploy.onnx.qdq import export_qdq, onnxruntime_int8_ops, output_step

    scales = {str(record["fqn"]): ActivationScales.from_dict(record) for record in quant}
    activations = {fqn: (s.input_scale, s.output_scale) for fqn, s in scales.items() if s is not None}
    int8 = [record for record in quant if str(record["fqn"]) in activations]
    result = export_qdq(model, example, path, records=[QuantRecord.from_dict(r) for r in int8], activations=activations,
                        opset=opset, preprocess=preprocess)
    proto = onnx.load(str(path))
    expected = _fake_quant_outputs(model, quant, example)
    actual = run_onnx(proto, example.detach().cpu().numpy())
    error = float(np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64)), initial=0.0))
    step = output_step(proto)
    if step is None:
        step = max(scale for _, scale in activations.values() if scale is not None)
    return QdqExport(path, result.sizes, result.layers, error, step * STEP_SLACK, onnxruntime_int8_ops(proto))


def _fake_quant_outputs(model: torch.nn.Module, quant: list[dict[str, Any]], example: torch.Tensor) -> np.ndarray:
    hooks = attach_activation_quant(model, quant)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(example).detach().cpu().numpy()
    finally:
        hooks.remove()
        model.train(was_training)
