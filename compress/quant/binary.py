"""Binary projection ``proj(w) = alpha * sign(w)`` with ``alpha = mean|w|``.

This is the exact Euclidean projection onto ``{+-alpha}^n`` with ``alpha >= 0`` free (Rastegari et
al., XNOR-Net, ECCV 2016; BinaryRelax ``util/quant.py::quantize_bw``, Yin et al., SIIMS 2018):
for a fixed sign pattern ``s`` the best ``alpha`` is ``<w, s>/n``, maximised by ``s = sign(w)``.
"""

from __future__ import annotations

import torch

from compress.quant.quantized import CODE_DTYPE, QuantizedTensor, group_rows
from compress.quant.support import masked_magnitude


def project_binary(
    weight: torch.Tensor, *, per_channel: bool = False, mask: torch.Tensor | None = None
) -> QuantizedTensor:
    """Project onto binary weights ``alpha * sign(w)`` (``sign(0) = +1``).

    With a ``mask`` (``True`` = entry may be non-zero) the masked-out entries stay exactly zero and
    are excluded from ``alpha = mean_{mask} |w|``; the codes then take values in ``{-1, 0, 1}`` and the
    result is stored as ``"ternary"`` (2 bits), the narrowest scheme that holds the zeros.

    Args:
        weight: float weight, output channels on axis 0.
        per_channel: one ``alpha`` per output channel instead of one per tensor.
        mask: optional boolean support mask, same shape as ``weight``.

    Returns:
        Codes in ``{-1, 1}`` (``{-1, 0, 1}`` with a sparse mask) and ``alpha`` scales.
    """
    magnitude, active = masked_magnitude(weight, mask=mask, per_channel=per_channel)
    alpha = magnitude.sum(dim=1) / active.sum(dim=1).clamp_min(1)
    signs = torch.where(group_rows(weight, per_channel=per_channel) >= 0, 1, -1)
    codes = (signs * active).to(CODE_DTYPE).reshape(weight.shape)
    sparse = mask is not None and not bool(mask.all())
    return QuantizedTensor(
        codes=codes,
        scales=alpha.to(weight.dtype),
        scheme="ternary" if sparse else "binary",
        bits=2 if sparse else 1,
    )
