"""Which parameters a pruner touches: conv / linear weights, minus fnmatch exclusions."""

from __future__ import annotations

from fnmatch import fnmatchcase

from torch import nn

_PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def prunable_weights(model: nn.Module, *, exclude: tuple[str, ...] = ()) -> dict[str, nn.Parameter]:
    """``{fqn: weight}`` of conv / linear layers whose module or weight fqn matches no ``exclude`` pattern.

    Patterns are ``fnmatch`` globs tested against both the module fqn (``"fc"``) and the weight fqn
    (``"fc.weight"``), so ``exclude=("fc",)`` and ``exclude=("*.weight",)`` both work.
    """
    if isinstance(exclude, str):
        raise TypeError(f"exclude must be a tuple of patterns, got the string {exclude!r}")
    selected = {}
    for module_fqn, module in model.named_modules():
        if not isinstance(module, _PRUNABLE):
            continue
        fqn = f"{module_fqn}.weight" if module_fqn else "weight"
        if any(fnmatchcase(module_fqn, p) or fnmatchcase(fqn, p) for p in exclude):
            continue
        selected[fqn] = module.weight
    return selected
