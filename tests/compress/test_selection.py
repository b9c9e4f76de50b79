"""``ParamSelector``: the one layer selector of methods, regularizers, pruners and statistics."""

import pytest
import torch
from torch import nn

from compress.selection import ParamSelector


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.BatchNorm2d(6), nn.Flatten(), nn.Linear(6 * 4 * 4, 12), nn.ReLU(), nn.Linear(12, 3)
    )


def test_selector_picks_conv_and_linear_weights_by_kind():
    model = _model()
    assert [fqn for fqn, _ in ParamSelector().weights(model)] == ["0.weight", "2.weight", "5.weight", "7.weight"]
    assert ParamSelector(kinds="conv").names(model) == ["0", "2"]
    assert ParamSelector(kinds="linear").names(model) == ["5", "7"]


def test_selector_skips_first_and_last_layer_when_asked():
    assert ParamSelector(skip_first_last=True).names(_model()) == ["2", "5"]


def test_selector_include_replaces_the_candidates_and_exclude_comes_last():
    assert ParamSelector(include=("*",), exclude=("7",), skip_first_last=True).names(_model()) == ["0", "2", "5"]


def test_selector_patterns_may_name_the_weight():
    assert ParamSelector(exclude=("0.weight",)).names(_model()) == ["2", "5", "7"]


@pytest.mark.parametrize("field", ["include", "exclude"])
def test_selector_pattern_that_matches_nothing_is_an_error_naming_it(field):
    with pytest.raises(ValueError, match="'features.\\*' matches no conv / linear layer; layers: 0, 2, 5, 7"):
        ParamSelector(**{field: ("features.*",)}).names(_model())


def test_selector_raises_on_unknown_kind_and_on_a_bare_string_pattern():
    with pytest.raises(ValueError, match="allowed: all, conv, linear"):
        ParamSelector(kinds="bn")
    with pytest.raises(TypeError, match="tuple of patterns"):
        ParamSelector(exclude="fc")


def test_selector_leaves_out_a_parametrized_weight():
    from torch.nn.utils import parametrize

    model = _model()
    parametrize.register_parametrization(model[0], "weight", nn.Identity())
    assert [fqn for fqn, _ in ParamSelector().weights(model)] == ["2.weight", "5.weight", "7.weight"]
