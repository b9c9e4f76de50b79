"""Ternary projections onto ``{-alpha, 0, +alpha}^n``: exact (sorting) and TWN (threshold rule).

Exact projection (BinaryRelax, Yin, Zhang, Lyu, Osher, Qi, Xin, SIIMS 2018):
sort ``|w|`` in descending order ``|w|_(1) >= |w|_(2) >= ...``, then

    j* = argmax_j (sum_{i<=j} |w|_(i))^2 / j,   alpha = (1/j*) sum_{i<=j*} |w|_(i),
    proj(w) = alpha * sign(w) on the top-j* entries, 0 elsewhere,

because ``||w - alpha*t||^2`` is minimised over ``alpha`` by ``<w,t>/||t||^2`` and over supports of
size ``j`` by the ``j`` largest magnitudes, leaving ``||w||^2 - S_j^2 / j``.

TWN approximation (Li, Zhang, Liu, "Ternary Weight Networks", 2016):

    Delta = 0.7 * mean|w|,   alpha = mean_{|w_i| > Delta} |w_i|,   proj(w) = alpha*sign(w)*1{|w| > Delta}.

(The support mean, not binaryrelax's ``quantize_tnn`` mean over all entries.)
"""

from __future__ import annotations

import torch

from compress.quant.quantized import CODE_DTYPE, QuantizedTensor, group_rows
from compress.quant.support import masked_magnitude

TWN_THRESHOLD_RATIO = 0.7


def _ternary(weight: torch.Tensor, support: torch.Tensor, alpha: torch.Tensor, *, per_channel: bool) -> QuantizedTensor:
    signs = torch.sign(group_rows(weight.detach(), per_channel=per_channel))
    codes = (signs * support).to(CODE_DTYPE).reshape(weight.shape)
    return QuantizedTensor(codes=codes, scales=alpha.to(weight.dtype), scheme="ternary", bits=2)


def project_ternary_exact(
    weight: torch.Tensor, *, per_channel: bool = False, mask: torch.Tensor | None = None
) -> QuantizedTensor:
    """Exact Euclidean projection onto ternary weights, vectorised over output channels.

    Statistics are accumulated in float64; the support has exactly ``j*`` entries (ties in ``|w|``
    are broken by sort order, which leaves the distance unchanged). Entries outside ``mask`` (and
    exact zeros) never enter the support: adding a zero to the support lowers ``S_j^2 / j``.

    Args:
        weight: float weight, output channels on axis 0.
        per_channel: one ``alpha`` per output channel instead of one per tensor.
        mask: optional boolean support mask (``True`` = may be non-zero).

    Returns:
        Codes in ``{-1, 0, 1}`` and ``alpha`` scales.
    """
    magnitude, _ = masked_magnitude(weight, mask=mask, per_channel=per_channel)
    magnitude = magnitude.double()
    ordered, order = magnitude.sort(dim=1, descending=True)
    partial = ordered.cumsum(dim=1)
    sizes = torch.arange(1, magnitude.shape[1] + 1, dtype=magnitude.dtype)
    best = (partial.square() / sizes).argmax(dim=1, keepdim=True)
    alpha = (partial.gather(1, best) / (best + 1)).squeeze(1)
    in_top = torch.arange(magnitude.shape[1]).unsqueeze(0) <= best
    support = torch.zeros_like(in_top).scatter(1, order, in_top) & (magnitude > 0)
    return _ternary(weight, support, alpha, per_channel=per_channel)


def project_twn(
    weight: torch.Tensor,
    *,
    per_channel: bool = False,
    mask: torch.Tensor | None = None,
    threshold_ratio: float = TWN_THRESHOLD_RATIO,
) -> QuantizedTensor:
    """TWN ternarization: ``Delta = threshold_ratio * mean|w|``, ``alpha`` = mean over the support.

    With a ``mask``, ``mean|w|`` and ``alpha`` are taken over the masked-in entries only.

    Args:
        weight: float weight, output channels on axis 0.
        per_channel: one ``(Delta, alpha)`` per output channel instead of one per tensor.
        mask: optional boolean support mask (``True`` = may be non-zero).
        threshold_ratio: the ``0.7`` of TWN; must be ``>= 0``.

    Returns:
        Codes in ``{-1, 0, 1}`` and ``alpha`` scales (``0`` for a group with an empty support).
    """
    if threshold_ratio < 0:
        raise ValueError(f"threshold_ratio must be >= 0, got {threshold_ratio}")
    magnitude, active = masked_magnitude(weight, mask=mask, per_channel=per_channel)
    delta = threshold_ratio * magnitude.sum(dim=1, keepdim=True) / active.sum(dim=1, keepdim=True).clamp_min(1)
    support = magnitude > delta
    alpha = (magnitude * support).sum(dim=1) / support.sum(dim=1).clamp_min(1)
    return _ternary(weight, support, alpha, per_channel=per_channel)
