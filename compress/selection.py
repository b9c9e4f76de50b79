"""``ParamSelector``: the one way every method, regularizer, pruner and statistic picks its layers.

A selection is the conv / linear modules of a model (``kinds``: ``"all"``, ``"conv"`` or ``"linear"``),
in definition order, narrowed by ``fnmatch`` patterns on the module name (``"features.*"``, ``"fc"``;
a pattern may also name the weight, ``"fc.weight"``). ``include`` replaces the candidates by the
matching layers, ``skip_first_last`` (without ``include``) leaves the first and last layer out, and
``exclude`` is applied last. A pattern that matches no layer is an error naming it, never a silent
no-op. Weights are keyed by fully-qualified name (``fqn``, ``"features.0.weight"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from torch import nn
from torch.nn.utils import parametrize

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
LAYER_TYPES = (*CONV_TYPES, nn.Linear)
LAYER_KINDS = ("all", "conv", "linear")


@dataclass(frozen=True)
class ParamSelector:
    """Which conv / linear layers to act on.

    Args:
        kinds: ``"all"``, ``"conv"`` or ``"linear"``.
        include: patterns; when given, exactly the matching layers are candidates.
        exclude: patterns removed from the candidates.
        skip_first_last: without ``include``, leave the first and the last layer out (quantization's
            usual rule: the input and classifier layers stay in float).
    """

    kinds: str = "all"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    skip_first_last: bool = False

    def __post_init__(self) -> None:
        if self.kinds not in LAYER_KINDS:
            raise ValueError(f"unknown layers {self.kinds!r}; allowed: {', '.join(LAYER_KINDS)}")
        for patterns in (self.include, self.exclude):
            if isinstance(patterns, str):
                raise TypeError(f"layer patterns must be a tuple of patterns, got the string {patterns!r}")

    def modules(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        """``(module name, module)`` of the selected layers, in definition order.

        Raises:
            ValueError: when a pattern matches no layer, or ``skip_first_last`` leaves nothing.
        """
        candidates = [(name, module) for name, module in model.named_modules() if self._kind_matches(module)]
        names = [name for name, _ in candidates]
        if self.include:
            chosen = {name for pattern in self.include for name in _matching(names, pattern)}
        elif self.skip_first_last:
            if len(names) <= 2:
                raise ValueError(
                    f"model has only {len(names)} conv / linear layer(s) ({', '.join(names)}); skipping the first "
                    "and the last leaves nothing: name the layers to include or do not skip them"
                )
            chosen = set(names[1:-1])
        else:
            chosen = set(names)
        for pattern in self.exclude:
            chosen -= set(_matching(names, pattern))
        return [(name, module) for name, module in candidates if name in chosen]

    def names(self, model: nn.Module) -> list[str]:
        return [name for name, _ in self.modules(model)]

    def weights(self, model: nn.Module) -> list[tuple[str, nn.Parameter]]:
        """``(fqn, weight)`` of the selected layers whose weight is a plain parameter (a parametrized
        weight, one being masked or quantized, is computed, not a parameter of its module)."""
        return [
            (_weight_fqn(name), module.weight)
            for name, module in self.modules(model)
            if not parametrize.is_parametrized(module, "weight")
        ]

    def _kind_matches(self, module: nn.Module) -> bool:
        if not isinstance(module, LAYER_TYPES):
            return False
        return self.kinds == "all" or (self.kinds == "conv") == isinstance(module, CONV_TYPES)


ALL_LAYERS = ParamSelector()


def _weight_fqn(module_name: str) -> str:
    return f"{module_name}.weight" if module_name else "weight"


def _matching(names: list[str], pattern: str) -> list[str]:
    matched = [name for name in names if fnmatchcase(name, pattern) or fnmatchcase(_weight_fqn(name), pattern)]
    if not matched:
        raise ValueError(f"layer pattern {pattern!r} matches no conv / linear layer; layers: {', '.join(names)}")
    return matched
