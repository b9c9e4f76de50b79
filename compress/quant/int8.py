"""Symmetric int8 quantization: ``s = max|w| / 127``, ``q = clamp(round(w / s), -127, 127)``.

Symmetric (zero-point-free) linear quantization as in Jacob et al., "Quantization and Training of
Neural Networks for Efficient Integer-Arithmetic-Only Inference", CVPR 2018, with the range
``[-127, 127]`` so that ``-q`` is always representable. A zero weight maps to code 0, so pruned
zeros survive.
"""

from __future__ import annotations

import torch

from compress.quant.quantized import CODE_DTYPE, QuantizedTensor, broadcast_scales
from compress.quant.support import masked_magnitude

INT8_LEVELS = 127


def project_int8(
    weight: torch.Tensor, *, per_channel: bool = True, mask: torch.Tensor | None = None
) -> QuantizedTensor:
    """Symmetric int8 codes and scales (per output channel by default).

    Args:
        weight: float weight, output channels on axis 0.
        per_channel: one scale per output channel (default) or one per tensor.
        mask: optional boolean support mask; masked-out entries get code 0 and do not enter ``max|w|``.

    Returns:
        Codes in ``[-127, 127]`` and scales ``max|w| / 127`` (``0`` for an all-zero group).
    """
    magnitude, active = masked_magnitude(weight, mask=mask, per_channel=per_channel)
    scales = magnitude.amax(dim=1) / INT8_LEVELS
    safe = broadcast_scales(torch.where(scales > 0, scales, torch.ones_like(scales)), weight.shape)
    active = active.reshape(weight.shape)
    codes = torch.round(weight.detach() * active / safe).clamp(-INT8_LEVELS, INT8_LEVELS)
    return QuantizedTensor(codes=codes.to(CODE_DTYPE), scales=scales.to(weight.dtype), scheme="int8", bits=8)
