"""Proximal operators as pure tensor functions.

Convention: ``prox_P(y, mu) = argmin_x mu * P(x) + 1/2 ||x - y||^2``; in the splitting methods
``mu = lambda / beta``.
"""

from compress.prox.cardinality import (
    CARDINALITY_MODES,
    cardinality_mask,
    kept_count,
    project_cardinality,
)
from compress.prox.group import (
    GROUP_AXES,
    group_axis,
    group_hard_threshold,
    group_norms,
    group_size,
    group_soft_threshold,
)
from compress.prox.hard import hard_threshold, l0_threshold, prox_l0
from compress.prox.l1_l2 import l1_minus_l2_penalty, prox_l1_minus_l2
from compress.prox.scad import prox_scad, scad_penalty
from compress.prox.soft import soft_threshold
from compress.prox.tl1 import prox_tl1, tl1_penalty, tl1_threshold

__all__ = [
    "CARDINALITY_MODES",
    "GROUP_AXES",
    "cardinality_mask",
    "group_axis",
    "group_hard_threshold",
    "group_norms",
    "group_size",
    "group_soft_threshold",
    "hard_threshold",
    "kept_count",
    "l0_threshold",
    "l1_minus_l2_penalty",
    "project_cardinality",
    "prox_l0",
    "prox_l1_minus_l2",
    "prox_scad",
    "prox_tl1",
    "scad_penalty",
    "soft_threshold",
    "tl1_penalty",
    "tl1_threshold",
]
