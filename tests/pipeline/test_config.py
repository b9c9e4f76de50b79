import pytest

from pipeline.config import config_from_dict, config_to_dict
from pipeline.errors import UserError
from pipeline.stages.prune import PruneConfig
from pipeline.stages.train_sparse import TrainSparseConfig


def test_config_from_dict_applies_values_and_keeps_defaults():
    config = config_from_dict(PruneConfig, {"sparsity-ratio": "0.5", "block": [16, 1]}, where="t")
    assert config.sparsity_ratio == 0.5
    assert config.block == (16, 1)
    assert config.epochs == PruneConfig().epochs


def test_config_from_dict_rejects_unknown_key_naming_allowed():
    with pytest.raises(UserError, match=r"unknown key 'sparsity'.*allowed: .*sparsity-ratio"):
        config_from_dict(PruneConfig, {"sparsity": 0.5}, where="t")


@pytest.mark.parametrize("key,value", [("epochs", "many"), ("epochs", 1.5), ("lr", "fast"), ("remove-channels", "maybe"), ("lr", float("nan"))])
def test_config_from_dict_rejects_wrong_types(key, value):
    with pytest.raises(UserError, match=key):
        config_from_dict(PruneConfig, {key: value}, where="t")


def test_config_from_dict_rejects_value_outside_choices():
    with pytest.raises(UserError, match=r"allowed: .*l1-prox"):
        config_from_dict(TrainSparseConfig, {"method": "magic"}, where="t")


def test_config_to_dict_round_trips():
    config = config_from_dict(PruneConfig, {"pattern": "block", "block": "4x1"}, where="t")
    assert config_from_dict(PruneConfig, config_to_dict(config), where="t") == config


def test_method_hyperparameters_are_checked_by_the_config_code_and_none_reads_as_none():
    from compress.optim.rgsm import RGSMHyperparameters

    hp = config_from_dict(RGSMHyperparameters, {"relative-threshold": "none", "lam1": "0.02"}, where="method rgsm")
    assert hp.relative_threshold is None and hp.lam1 == 0.02
    with pytest.raises(UserError, match=r"method rgsm: beta must be > 0, got -1.0"):
        config_from_dict(RGSMHyperparameters, {"beta": "-1"}, where="method rgsm")
    with pytest.raises(UserError, match=r"method rgsm.group_axis: 'depth' is not allowed; allowed: output, input"):
        config_from_dict(RGSMHyperparameters, {"group_axis": "depth"}, where="method rgsm")
