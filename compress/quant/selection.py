"""Which conv / linear layers a quantization method touches.

Default: every conv / linear layer except the first and the last in definition order (the usual
practice of TWN, TTQ and BinaryRelax, which keep the input and classifier layers in float: they hold
few weights and are the most sensitive). ``include`` / ``exclude`` are ``fnmatch`` patterns matched
against the module name (e.g. ``"features.*"``, ``"7"``); an ``include`` list replaces the default
rule, and ``exclude`` is applied last.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Sequence

from torch import nn

from compress.stats import prunable_layers


def _matching(names: list[str], pattern: str) -> list[str]:
    matched = [name for name in names if fnmatchcase(name, pattern)]
    if not matched:
        raise ValueError(f"layer pattern {pattern!r} matches no conv / linear layer; layers: {', '.join(names)}")
    return matched


def select_quant_layers(
    model: nn.Module,
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    skip_first_last: bool = True,
) -> list[str]:
    """Names of the conv / linear modules to quantize, in definition order.

    Args:
        model: the network.
        include: ``fnmatch`` patterns on module names; when given, exactly the matching layers are
            candidates (``skip_first_last`` is then ignored).
        exclude: patterns removed from the candidates.
        skip_first_last: without ``include``, leave the first and the last layer in float.

    Returns:
        Module names (``model.get_submodule(name)`` gives the layer).

    Raises:
        ValueError: if a pattern matches no layer, or if the selection is empty.
    """
    names = [name for name, _ in prunable_layers(model)]
    if not names:
        raise ValueError("model has no conv / linear layer to quantize")
    if include is not None:
        chosen = {name for pattern in include for name in _matching(names, pattern)}
    elif skip_first_last and len(names) > 2:
        chosen = set(names[1:-1])
    elif skip_first_last:
        raise ValueError(
            f"model has only {len(names)} conv / linear layer(s) ({', '.join(names)}); skipping the first and "
            "the last leaves nothing: pass include=... or skip_first_last=False"
        )
    else:
        chosen = set(names)
    for pattern in exclude or ():
        chosen -= set(_matching(names, pattern))
    if not chosen:
        raise ValueError(f"layer selection is empty (include={include}, exclude={exclude}); layers: {', '.join(names)}")
    return [name for name in names if name in chosen]
