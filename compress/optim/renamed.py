"""The one table of renamed hyperparameters: each concept has one name across methods, recipes and CLI.

Today's names follow the house rules: ``*_ratio`` for a fraction, ``group_axis`` for the axis a weight
is grouped along (``"output"`` / ``"input"`` channels, 16x1 ``"block"`` rows; group lasso also
``"both"``); ``layer_sparsity`` is a ``{fqn: ratio}`` mapping (ADMM, the prune stage, ``compress.prune``).
An earlier spelling still works for one more release: :func:`rename_hyperparameters` maps it to
today's name and warns once, in one line (``FutureWarning``, the category Python shows to end users).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

# earlier name -> today's name; a key is renamed only for a method that has today's name and not the earlier one
RENAMED: dict[str, str] = {
    "sparsity": "sparsity_ratio",  # ADMM, SSGD
    "prune_ratio": "sparsity_ratio",  # network slimming
    "channel_axis": "group_axis",  # ADMM
    "axes": "group_axis",  # group lasso
}


def rename_hyperparameters(hp_type: type, values: Mapping[str, Any], *, where: str = "") -> dict[str, Any]:
    """``values`` with every earlier spelling of a field of the dataclass ``hp_type`` replaced by
    today's name (see :data:`RENAMED`), and one ``FutureWarning`` per replaced key.

    Keys may be written with ``_`` or ``-`` (recipes and ``--params`` accept both); the warning names
    the key as written and today's name in the same style. Other keys pass through unchanged, so an
    unknown one is still refused by whoever builds ``hp_type``.

    Raises:
        ValueError: when a key is given under both its earlier and today's name.
    """
    names = {item.name for item in dataclasses.fields(hp_type)}
    prefix = f"{where}: " if where else ""
    renamed: dict[str, Any] = {}
    seen: dict[str, Any] = {}  # today's name -> the key it was given as
    for key, value in values.items():
        spelled = str(key).replace("-", "_")
        new = RENAMED.get(spelled)
        if new is None or spelled in names or new not in names:
            new, name = spelled, key
        else:
            name = new.replace("_", "-") if "-" in str(key) else new
            warnings.warn(f"{prefix}{key!r} is deprecated, use {name!r}", FutureWarning, stacklevel=2)
        if new in seen:
            raise ValueError(f"{prefix}{key!r} and {seen[new]!r} name the same setting; give it once, as {new!r}")
        seen[new] = key
        renamed[name] = value
    return renamed
