"""SSL group lasso by proximal SGD (Wen, Wu, Wang, Chen, Li, "Learning structured sparsity in deep neural
networks", NIPS 2016).

Objective ``f(W) + lambda sum_l sum_g ||W_{l,g}||_2`` over output channels (filters / rows), input
channels (columns), or both. After each optimizer step with learning rate ``lr``::

    W_g <- max(0, 1 - lr * lambda * c_g / ||W_g||_2) * W_g      (block soft threshold)

with ``c_g = sqrt(|g|)`` if ``scale_by_size`` else 1. With ``group_axis="both"`` the output-channel
then the input-channel prox are applied in sequence (a splitting approximation of the joint prox).

Default strength from the step budget (ours): a group's norm shrinks by up to ``lambda * lr * T`` over
``T`` steps, so unless ``lam`` is given ``lambda = lam_steps / (lr * T)`` with ``lam_steps = 0.45``
(LeNet-5 / MNIST, 1,800 steps from a 99.22% start: 30% of the output channels removable at -0.37
points; 0.3 zeroed no group, 0.6 lost 0.63 points); the fixed 1e-4 of before zeroed nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from compress.optim.method import LAYER_KINDS, Hyperparameters, TrainingMethod
from compress.regularizers import GroupLasso
from compress.selection import ParamSelector

SSL_AXES = {"output": ("output",), "input": ("input",), "both": ("output", "input"), "block": ("block",)}


@dataclass(frozen=True)
class GroupLassoHyperparameters(Hyperparameters):
    """Attributes: ``lam`` (group-lasso weight; ``None``: ``lam_steps / (lr * T)``), ``lam_steps`` (the
    total shrink ``lam * lr * T``), ``group_axis`` (``"output"``, ``"input"``, ``"both"``, or ``"block"``:
    16x1 row blocks), ``scale_by_size`` (weight each group by ``sqrt(|g|)``), ``layers``."""

    lam: float | None = None
    lam_steps: float = 0.45
    group_axis: str = field(default="output", metadata={"choices": tuple(SSL_AXES)})
    scale_by_size: bool = False
    layers: str = field(default="all", metadata={"choices": LAYER_KINDS})


class SSLGroupLasso(TrainingMethod):
    """Proximal group lasso on channels."""

    name = "group-lasso"
    Hyperparameters = GroupLassoHyperparameters

    def prepare(self, model: nn.Module, *, total_steps: int) -> None:
        super().prepare(model, total_steps=total_steps)
        lam = self.hp.lam_steps / (self.hp.lr * self.total_steps) if self.hp.lam is None else self.hp.lam
        layers = ParamSelector(kinds=self.hp.layers)
        self.regularizers = [
            GroupLasso(strength=lam, layers=layers, axis=axis, scale_by_size=self.hp.scale_by_size)
            for axis in SSL_AXES[self.hp.group_axis]
        ]

    def after_step(self, model: nn.Module) -> None:
        for regularizer in self.regularizers:
            regularizer.prox_(model, step=self.current_lr())
