"""Regularizer objects (penalty + prox on selected weights), registered by an explicit list, and schedules."""

from compress.registry import Registry
from compress.regularizers.base import Regularizer
from compress.regularizers.elementwise import L0, L1, SCAD, TL1, L1MinusL2
from compress.regularizers.group_lasso import GroupL0, GroupLasso, smooth_group_norm_sum
from compress.regularizers.schedules import (
    Constant,
    CosineDecay,
    CosineRamp,
    StepGrowth,
)
from compress.selection import ALL_LAYERS, ParamSelector

REGULARIZERS: Registry[Regularizer] = Registry("regularizer", [L1, L0, TL1, L1MinusL2, SCAD, GroupLasso, GroupL0])
ELEMENTWISE = ("l1", "l0", "tl1", "l1-l2", "scad")


def create_regularizer(name: str, **kwargs) -> Regularizer:
    """A registered regularizer: ``create_regularizer("tl1", strength=1e-4, a=1.0)``."""
    return REGULARIZERS.create(name, **kwargs)


def elementwise_penalty(
    name: str, *, strength: float, a: float = 1.0, alpha: float = 1.0, layers: ParamSelector = ALL_LAYERS
) -> Regularizer:
    """One of ``ELEMENTWISE`` with its shape parameter: ``a`` for TL1 / SCAD, ``alpha`` for L1 - alpha L2."""
    if name not in ELEMENTWISE:
        raise ValueError(f"unknown penalty {name!r}; allowed: {', '.join(ELEMENTWISE)}")
    shape = {"tl1": {"a": a}, "scad": {"a": a}, "l1-l2": {"alpha": alpha}}.get(name, {})
    return create_regularizer(name, strength=strength, layers=layers, **shape)


__all__ = [
    "ELEMENTWISE",
    "L0",
    "L1",
    "REGULARIZERS",
    "SCAD",
    "TL1",
    "Constant",
    "CosineDecay",
    "CosineRamp",
    "GroupL0",
    "GroupLasso",
    "L1MinusL2",
    "Regularizer",
    "StepGrowth",
    "create_regularizer",
    "elementwise_penalty",
    "smooth_group_norm_sum",
]
