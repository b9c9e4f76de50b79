"""Constructor signatures that advertise inherited hyperparameters.

A method's hyperparameters are the keyword-only parameters of ``inspect.signature(cls.__init__)``
(the pipeline validates user options against them and ``compress methods -v`` lists them). A subclass
that only adds a few hyperparameters to its base writes ``__init__(self, *, new..., **options)``,
forwards ``options`` to ``super().__init__`` and is decorated with ``@inherits_hyperparameters``: its
signature then lists the base's hyperparameters as well, so nothing repeats the base's keyword list.
"""

from __future__ import annotations

import inspect
from typing import TypeVar

T = TypeVar("T", bound=type)

_KEYWORD = inspect.Parameter.KEYWORD_ONLY
_VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD


def merged_keywords(
    base: list[inspect.Parameter], own: list[inspect.Parameter]
) -> list[inspect.Parameter]:
    """``base`` with the ``own`` parameters spliced in as one block, in their declared order.

    The block stands where the first base parameter that ``own`` redeclares stood (at the end when
    ``own`` redeclares none); the base parameters ``own`` does not redeclare keep their order.
    """
    own_names = {param.name for param in own}
    redeclared = [index for index, param in enumerate(base) if param.name in own_names]
    at = redeclared[0] if redeclared else len(base)
    kept = [param for param in base if param.name not in own_names]
    before = [param for param in base[:at] if param.name not in own_names]
    return before + list(own) + kept[len(before):]


def inherits_hyperparameters(cls: T) -> T:
    """Class decorator: ``cls.__init__``'s signature gains the keyword-only parameters of the base's.

    The merged order is ``merged_keywords(base, own)``; a redeclared parameter keeps ``cls``'s default.

    ``cls`` must define ``__init__(self, *, ..., **options)`` and pass ``options`` on to the base
    constructor, which keeps checking them (an unknown name is still a ``TypeError``).

    Raises:
        TypeError: if ``cls`` defines no ``__init__`` or its ``__init__`` has no ``**options``.
    """
    init = cls.__dict__.get("__init__")
    if init is None:
        raise TypeError(f"{cls.__name__} defines no __init__ to extend")
    own = inspect.signature(init)
    params = list(own.parameters.values())
    if not params or params[-1].kind != _VAR_KEYWORD:
        raise TypeError(f"{cls.__name__}.__init__ must end with **options forwarded to the base class")
    base = inspect.signature(super(cls, cls).__init__)
    base_keywords = [p for p in base.parameters.values() if p.kind == _KEYWORD]
    own_keywords = [p for p in params if p.kind == _KEYWORD]
    leading = [p for p in params if p.kind not in (_KEYWORD, _VAR_KEYWORD)]
    init.__signature__ = own.replace(parameters=leading + merged_keywords(base_keywords, own_keywords))
    return cls
