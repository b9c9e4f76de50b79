"""Symmetric int8 fake quantization of activations with a straight-through gradient.

Forward (the affine map of Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", CVPR 2018, eq. 1, with zero point ``Z = 0``)::

    q = clamp(round(x / s), -128, 127)        x_hat = s * q

``round`` is round-half-to-even and the clamp is int8 saturation, exactly what ONNX ``QuantizeLinear``
does, so a fake-quantized torch model and its QDQ ONNX compute the same values. The scale of a tensor
whose calibrated range is ``[-r, r]`` is ``s = r / 127`` (symmetric; Krishnamoorthi, "Quantizing deep
convolutional networks for efficient inference: A whitepaper", arXiv 1806.08342, 2018, sec. 2.2).

Backward: the straight-through estimator with clipping (Jacob et al. sec. 3; Krishnamoorthi sec. 3.1):
``d x_hat / d x = 1`` where ``-128 s <= x <= 127 s``, else ``0``. ``torch.fake_quantize_per_tensor_affine``
implements both directions.
"""

from __future__ import annotations

import torch

INT8_MIN, INT8_MAX = -128, 127
SYMMETRIC_LEVELS = 127


def symmetric_scale(max_abs: float) -> float:
    """``max_abs / 127`` (``1.0`` for an all-zero range, whose codes are all zero anyway).

    Raises:
        ValueError: for a negative or non-finite range.
    """
    value = float(max_abs)
    if not (value >= 0.0 and value < float("inf")):
        raise ValueError(f"activation range must be finite and >= 0, got {max_abs!r}")
    return value / SYMMETRIC_LEVELS if value > 0.0 else 1.0


def fake_quantize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``s * clamp(round(x / s), -128, 127)`` with the clipped straight-through gradient (float32 math)."""
    if not scale > 0.0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    return torch.fake_quantize_per_tensor_affine(x.float(), float(scale), 0, INT8_MIN, INT8_MAX).to(x.dtype)


def quantize_bias(bias: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The int32 codes ``round(b / (s_x * s_w))`` of a bias (Jacob et al. sec. 2.4: bias scale ``s_x s_w``).

    Args:
        bias: float bias ``[C]``.
        scale: per-channel ``s_x * s_w`` ``[C]`` (float32, > 0).

    Raises:
        ValueError: when a code does not fit in int32.
    """
    codes = torch.round(bias.detach().float() / scale)
    if bool((codes.abs() > 2**31 - 1).any()):
        raise ValueError("bias does not fit int32 at scale s_input * s_weight; the calibrated input range is too small")
    return codes.to(torch.int32)
