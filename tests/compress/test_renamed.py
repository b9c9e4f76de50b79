"""One name per concept: earlier hyperparameter names still build the same method, with one warning."""

import dataclasses
import warnings

import pytest

from compress.optim import METHODS, create_method
from compress.optim.admm import ADMMHyperparameters
from compress.optim.renamed import RENAMED, rename_hyperparameters
from compress.quant import QUANT_METHODS

EARLIER_SPELLINGS = [
    ("slimming", "prune_ratio", "sparsity_ratio", 0.3),
    ("admm", "sparsity", "sparsity_ratio", 0.3),
    ("ssgd", "sparsity", "sparsity_ratio", 0.3),
    ("admm", "channel_axis", "group_axis", "output"),
    ("group-lasso", "axes", "group_axis", "both"),
]


def _fields(cls) -> set[str]:
    return {item.name for item in dataclasses.fields(cls.Hyperparameters)}


@pytest.mark.parametrize(("method", "old", "new", "value"), EARLIER_SPELLINGS)
def test_earlier_name_builds_the_same_method_and_warns_once(method, old, new, value):
    with pytest.warns(FutureWarning) as caught:
        renamed = create_method(method, **{old: value})
    assert [str(w.message) for w in caught] == [f"method {method}: {old!r} is deprecated, use {new!r}"]
    assert renamed.hp == create_method(method, **{new: value}).hp
    assert getattr(renamed.hp, new) == value


@pytest.mark.parametrize(("method", "new", "value"), [(m, n, v) for m, _, n, v in EARLIER_SPELLINGS])
def test_todays_name_does_not_warn(method, new, value):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert getattr(create_method(method, **{new: value}).hp, new) == value


def test_dashed_earlier_name_is_renamed_in_the_same_style():
    with pytest.warns(FutureWarning, match="'channel-axis' is deprecated, use 'group-axis'"):
        assert rename_hyperparameters(ADMMHyperparameters, {"channel-axis": "output", "lr": 0.1}) == {"group-axis": "output", "lr": 0.1}


def test_rename_raises_when_both_names_are_given():
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="name the same setting"):
        create_method("admm", sparsity=0.5, sparsity_ratio=0.6)


def test_earlier_name_stays_unknown_for_a_method_without_the_setting():
    with pytest.raises(TypeError, match="prune_ratio"):
        create_method("sgl", prune_ratio=0.5)


def test_every_method_uses_todays_names_only():
    methods = [registry.get(name) for registry in (METHODS, QUANT_METHODS) for name in registry.names()]
    for cls in methods:
        assert not _fields(cls) & set(RENAMED), f"{cls.name} still names a setting by an earlier name"
    for new in set(RENAMED.values()):
        assert any(new in _fields(cls) for cls in methods), f"no method has {new!r}"
