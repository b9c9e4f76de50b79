"""Tables of torch ops by how they treat the channel dimension (dim 1), for ``channel_graph``.

Only ops that map an all-zero channel to an all-zero channel are listed as pass-through: removing
a dead channel is then exact. Anything not listed is treated as opaque (its channels are pinned).
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import nn

from compress.prune.dead_channels import NORM_TYPES
from compress.selection import CONV_TYPES

CONVS, BATCHNORMS = CONV_TYPES, NORM_TYPES

# Elementwise with f(0) = 0, or pooling over spatial dims; channel count unchanged.
PASS_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardtanh, nn.Hardswish, nn.SiLU, nn.GELU, nn.Tanh, nn.ELU,
    nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)  # fmt: skip
PASS_FUNCTIONS = (
    F.relu, torch.relu, F.relu6, F.leaky_relu, F.hardtanh, F.hardswish, F.silu, F.gelu, torch.tanh, F.elu,
    F.dropout, F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d,
    F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.adaptive_max_pool2d,
)  # fmt: skip
PASS_METHODS = ("relu", "relu_", "tanh", "contiguous", "clone", "detach")

# Binary ops where 0 (op) 0 = 0: tensor operands have their channels coupled.
COUPLING_FUNCTIONS = (operator.add, operator.iadd, torch.add, operator.sub, torch.sub, operator.mul, torch.mul)
COUPLING_METHODS = ("add", "add_", "sub", "mul", "mul_")
# Ops where 0 (op) scalar = 0, so a scalar operand keeps zero channels at zero.
SCALAR_ZERO_SAFE = (operator.mul, torch.mul, operator.truediv, torch.div, "mul", "mul_", "div")

CAT_FUNCTIONS = (torch.cat, torch.concat)
FLATTEN_FUNCTIONS = (torch.flatten,)
RESHAPE_METHODS = ("view", "reshape", "flatten")
MEAN_TARGETS = (torch.mean, "mean", torch.sum, "sum")


def is_depthwise(conv: nn.Module) -> bool:
    """A conv with one input channel per group and one output channel per input channel."""
    return conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


def zero_maps_to_zero(module: nn.Module, index: int) -> bool:
    """Whether channel ``index`` of a batch norm / depthwise conv sends an all-zero input to zero.

    Batch norm (eval): ``y = gamma (0 - mean) / sqrt(var + eps) + beta`` must be exactly 0; a
    depthwise conv must have zero bias.
    """
    with torch.no_grad():
        if isinstance(module, BATCHNORMS):
            gamma = 1.0 if module.weight is None else module.weight[index]
            beta = 0.0 if module.bias is None else module.bias[index]
            if module.running_mean is None:
                return bool(torch.as_tensor(beta) == 0)
            shift = gamma * (0 - module.running_mean[index]) / torch.sqrt(module.running_var[index] + module.eps)
            return bool(shift + beta == 0)
        return module.bias is None or bool(module.bias[index] == 0)
