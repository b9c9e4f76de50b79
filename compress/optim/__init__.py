"""Training methods of the papers (sparse optimizers and splitting schemes), one base, one explicit list.

``create_method("rvsm", lam=1e-5)`` builds a method from its typed hyperparameters; a plug-in method
(one file, see ``docs/adding-a-method.md``) joins with ``register_method(MyMethod)``.
"""

from typing import Any

from compress.optim.admm import ADMM
from compress.optim.group_lasso import SSLGroupLasso
from compress.optim.l1_prox import L1Prox
from compress.optim.masked_finetune import MaskedFinetune
from compress.optim.method import Hyperparameters, TrainingMethod
from compress.optim.rgsm import RGSM
from compress.optim.rvsm import RVSM
from compress.optim.sgl import SparseGroupLasso
from compress.optim.slimming import NetworkSlimming
from compress.optim.ssgd import SSGD
from compress.optim.xrda import XRDA
from compress.registry import Registry

METHODS: Registry[TrainingMethod] = Registry(
    "training method", [SSGD, RVSM, RGSM, SparseGroupLasso, XRDA, ADMM, L1Prox, SSLGroupLasso, NetworkSlimming]
)


def create_method(name: str, **hyperparameters: Any) -> TrainingMethod:
    """A registered method with ``Hyperparameters(**hyperparameters)``."""
    return METHODS.get(name).create(**hyperparameters)


def list_methods() -> list[str]:
    return METHODS.names()


def register_method(cls: type[TrainingMethod]) -> type[TrainingMethod]:
    """Add a ``TrainingMethod`` subclass under its ``name`` (usable as a class decorator).

    Raises:
        TypeError: when ``cls`` is not a ``TrainingMethod`` with a ``Hyperparameters`` dataclass.
        ValueError: when the name is taken.
    """
    import dataclasses

    if not (isinstance(cls, type) and issubclass(cls, TrainingMethod) and dataclasses.is_dataclass(cls.Hyperparameters)):
        raise TypeError(f"{cls!r} is not a TrainingMethod subclass with a Hyperparameters dataclass")
    return METHODS.add(cls)


__all__ = ["METHODS", "Hyperparameters", "MaskedFinetune", "TrainingMethod", "create_method", "list_methods", "register_method"]
