"""Regularizer objects (penalty + prox on named weights) and pure step -> value schedules."""

from compress.regularizers.base import REGULARIZERS, Regularizer, create_regularizer, list_regularizers
from compress.regularizers.elementwise import PENALTIES, penalty_prox, penalty_value
from compress.regularizers.group_lasso import GroupL0, GroupLasso, smooth_group_norm_sum
from compress.regularizers.schedules import Constant, CosineDecay, CosineRamp, StepGrowth
from compress.regularizers.selection import GROUP_AXES, LAYER_KINDS, group_axis, selected_weights

__all__ = [
    "GROUP_AXES",
    "LAYER_KINDS",
    "PENALTIES",
    "REGULARIZERS",
    "Constant",
    "CosineDecay",
    "CosineRamp",
    "GroupL0",
    "GroupLasso",
    "Regularizer",
    "StepGrowth",
    "create_regularizer",
    "group_axis",
    "list_regularizers",
    "penalty_prox",
    "penalty_value",
    "selected_weights",
    "smooth_group_norm_sum",
]
