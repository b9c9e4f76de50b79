"""Name -> projection lookup used by the training methods (``"binary"``, ``"ternary"``, ``"twn"``, ``"int8"``).

Each projection has the signature ``project(weight, *, per_channel, mask) -> QuantizedTensor``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Callable

import torch

from compress.quant.binary import project_binary
from compress.quant.int8 import project_int8
from compress.quant.quantized import QuantizedTensor
from compress.quant.ternary import project_ternary_exact, project_twn

Projection = Callable[..., QuantizedTensor]

PROJECTIONS: MappingProxyType[str, Projection] = MappingProxyType(
    {"binary": project_binary, "ternary": project_ternary_exact, "twn": project_twn, "int8": project_int8}
)


def get_projection(name: str) -> Projection:
    """The projection registered as ``name``; raises with the allowed names otherwise."""
    try:
        return PROJECTIONS[name]
    except KeyError:
        raise KeyError(f"unknown projection {name!r}; allowed: {', '.join(sorted(PROJECTIONS))}") from None


def project(name: str, weight: torch.Tensor, *, per_channel: bool, mask: torch.Tensor | None = None) -> QuantizedTensor:
    """Apply the projection ``name`` to ``weight``."""
    return get_projection(name)(weight, per_channel=per_channel, mask=mask)
