"""``TrainingMethod``: the one base of every training method (sparse training and quantization), and
``Hyperparameters``, the typed settings every method shares.

Lifecycle, the same for every method (the shape of ``torch.ao.pruning``'s prepare -> step -> squash)::

    method = SomeMethod(SomeMethod.Hyperparameters(lr=0.01, ...))   # frozen, checked dataclass
    method.prepare(model, total_steps=T)       # attach parametrizations / per-fqn state, once
    optimizer = method.build_optimizer(model)  # make_optimizer(method.param_groups(model), hp)
    per mini-batch:
        loss = criterion(model(x), y) + method.penalty(model)
        loss.backward()
        method.before_step(model)              # e.g. RVSM coupling w <- w - lr*beta*(w - u)
        optimizer.step()
        method.after_step(model)               # e.g. prox / threshold / auxiliary-variable update
    per epoch: method.on_epoch_end(model, epoch=e)
    method.finalize(model)                     # exact zeros / exact quantized values, detached
    method.state_dict() / load_state_dict()    # resume mid-stage (after prepare and build_optimizer)

A method is one class with ``name``, a nested-by-reference ``Hyperparameters`` dataclass and the verbs
it needs; ``docs/adding-a-method.md`` shows a whole one. A method that counts optimizer steps calls the
counter ``steps`` (state key ``"steps"``); one that ends with a masked fine-tune holds a
``compress.optim.masked_finetune.MaskedFinetune``, which counts them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from compress.optim.optimizer import OPTIMIZERS, make_optimizer
from compress.optim.renamed import rename_hyperparameters

LAYER_KINDS = ("all", "conv", "linear")


def check_choices(hp: Any) -> None:
    """Raise ``ValueError`` when a field declared with ``metadata["choices"]`` holds another value."""
    for item in dataclasses.fields(hp):
        allowed = item.metadata.get("choices")
        if allowed is not None and getattr(hp, item.name) not in allowed:
            raise ValueError(f"{item.name} {getattr(hp, item.name)!r} is not allowed; allowed: {', '.join(map(str, allowed))}")


def check_ratio(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


@dataclass(frozen=True)
class Hyperparameters:
    """The optimizer settings of every method.

    Attributes:
        lr: learning rate (step size) of the method's update.
        momentum: SGD momentum (Adam ignores it).
        weight_decay: L2 weight decay of the optimizer.
        optimizer: ``"sgd"`` or ``"adam"``.
        nesterov: Nesterov momentum (SGD).
    """

    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    optimizer: str = field(default="sgd", metadata={"choices": OPTIMIZERS})
    nesterov: bool = False

    def __post_init__(self) -> None:
        check_choices(self)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive finite number, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")


class TrainingMethod:
    """Plain fine-tuning (no penalty, nothing to finalize); every method subclasses it.

    Subclasses set ``name`` and ``Hyperparameters`` and override the verbs they need.
    """

    name: ClassVar[str] = "sgd"
    Hyperparameters: ClassVar[type] = Hyperparameters

    def __init__(self, hp: Any = None) -> None:
        self.hp = self.Hyperparameters() if hp is None else hp
        if not isinstance(self.hp, self.Hyperparameters):
            raise TypeError(f"{type(self).__name__} takes {self.Hyperparameters.__name__}, got {type(self.hp).__name__}")
        self.optimizer: torch.optim.Optimizer | None = None
        self.total_steps = 1

    @classmethod
    def create(cls, **values: Any) -> TrainingMethod:
        """``cls(cls.Hyperparameters(**values))``: unknown names raise ``TypeError``, bad values ``ValueError``;
        an earlier name of a hyperparameter is renamed with a ``FutureWarning`` (``compress.optim.renamed``)."""
        return cls(cls.Hyperparameters(**rename_hyperparameters(cls.Hyperparameters, values, where=f"method {cls.name}")))

    def prepare(self, model: nn.Module, *, total_steps: int) -> None:
        """Attach to ``model`` before training (``total_steps``: optimizer steps the run will take)."""
        self.total_steps = max(int(total_steps), 1)

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """What the optimizer updates (one group; TTQ adds its scales with their own step)."""
        return [{"params": list(model.parameters())}]

    def build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        """The optimizer of ``hp`` over ``param_groups(model)``; kept for momentum resets and the lr."""
        self.optimizer = make_optimizer(self.param_groups(model), self.hp)
        return self.optimizer

    def current_lr(self) -> float:
        """Learning rate of the first param group (a scheduler may change it), else ``hp.lr``."""
        return float(self.optimizer.param_groups[0]["lr"]) if self.optimizer is not None else self.hp.lr

    def reset_momentum(self) -> None:
        """Forget the optimizer's per-parameter state (momentum buffers), as re-creating it would."""
        if self.optimizer is not None:
            self.optimizer.state.clear()

    def penalty(self, model: nn.Module) -> torch.Tensor | float:
        return 0.0

    def before_step(self, model: nn.Module) -> None:
        return None

    def after_step(self, model: nn.Module) -> None:
        return None

    def on_epoch_end(self, model: nn.Module, *, epoch: int) -> None:
        return None

    @torch.no_grad()
    def finalize(self, model: nn.Module) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


def clone_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached copies, so a saved state does not alias live training tensors."""
    return {fqn: tensor.detach().clone() for fqn, tensor in tensors.items()}


def load_tensors(state: dict[str, Any], key: str) -> dict[str, torch.Tensor]:
    """Copies of ``state[key]`` (an fqn -> tensor dict; missing key -> empty)."""
    return clone_tensors(dict(state.get(key, {})))


STEP_KEYS = ("steps", "step_count", "iteration")


def load_steps(state: dict[str, Any]) -> int:
    """A method's optimizer-step counter from its state: ``state["steps"]``, else an earlier spelling
    (ADMM's ``"step_count"``, xRDA's ``"iteration"``), else 0."""
    return int(next((state[key] for key in STEP_KEYS if key in state), 0))
