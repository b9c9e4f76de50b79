"""Structured channel removal: coupling (residual, concat, depthwise, flatten), exactness, plan replay."""

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compress.models import create_model, model_input_shape
from compress.prune import (
    ChannelPlan,
    ChannelPlanError,
    ChannelRemovalMismatch,
    apply_channel_plan,
    check_channel_equivalence,
    count_compute,
    mask_channels_,
    max_output_difference,
    plan_channel_pruning,
    prune_channels,
)

torch.set_num_threads(1)


class MixedNet(nn.Module):
    """Concat feeding a residual add, depthwise conv, channel-gating mul, view-flatten; a grouped-conv side branch."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 6, 3, padding=1)
        self.b = nn.Conv2d(3, 10, 1)
        self.c = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.gate = nn.Conv2d(16, 16, 1)
        self.fc = nn.Linear(16 * 4 * 4, 5)
        self.e = nn.Conv2d(3, 8, 3, padding=1)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.side = nn.Linear(8, 5)

    def forward(self, x):
        y = torch.cat([self.a(x), self.b(x)], dim=1) + F.relu(self.bn(self.c(x)))
        y = self.depthwise(y) * F.relu(self.gate(y))
        y = F.adaptive_avg_pool2d(y, 4)
        z = self.grouped(F.relu(self.e(x))).mean(dim=(2, 3))
        return self.fc(y.view(y.size(0), -1)) + self.side(z)


class LoopNet(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        y = self.conv(x)
        if y.sum() > 0:
            y = y * 2
        return self.fc(y.mean(dim=(2, 3)))


MODELS = ["lenet5", "lenet5-bn", "resnet20", "mobilenetv2-small", "inception-small", "mixed"]


def _build(name):
    torch.manual_seed(0)
    if name == "mixed":
        return MixedNet().eval(), (3, 16, 16)
    return create_model(name).eval(), model_input_shape(name)


def _randomize_bn_(model):
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.bias.data.uniform_(-0.5, 0.5)
    return model


def _params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_channel_pruned_model_has_fewer_params_and_equals_masked(name):
    model, shape = _build(name)
    _randomize_bn_(model)
    x = torch.randn(8, *shape)
    result = prune_channels(model, example_inputs=(x[:1],), channel_ratio=0.5)
    assert _params(result.model) < _params(model)
    assert check_channel_equivalence(result.masked_model, result.model, inputs=(x,), atol=1e-5) <= 1e-5
    assert max_output_difference(model, result.model, inputs=(x,)) > 1e-5  # l1 pruning removed live channels


@pytest.mark.parametrize("name", MODELS)
def test_channel_plan_round_trips_json_and_replays_on_fresh_model(name):
    model, shape = _build(name)
    x = torch.randn(4, *shape)
    result = prune_channels(model, example_inputs=(x[:1],), channel_ratio=0.3)
    plan = ChannelPlan.from_dict(json.loads(json.dumps(result.plan.to_dict())))
    assert plan == result.plan
    fresh, _ = _build(name)
    torch.manual_seed(123)
    for p in fresh.parameters():
        p.data.normal_()
    rebuilt = apply_channel_plan(fresh, plan)
    rebuilt.load_state_dict(result.model.state_dict())
    assert max_output_difference(result.model, rebuilt, inputs=(x,)) == 0.0


@pytest.mark.parametrize("name", MODELS)
def test_channel_dead_only_plan_removes_masked_channels_exactly(name):
    model, shape = _build(name)
    _randomize_bn_(model)
    x = torch.randn(8, *shape)
    first = plan_channel_pruning(model, example_inputs=(x[:1],), channel_ratio=0.5)
    masked = mask_channels_(copy.deepcopy(model), first)
    second = plan_channel_pruning(masked, example_inputs=(x[:1],), channel_ratio=None)
    assert second.exact and second.removed_classes == first.removed_classes
    assert second.modules == first.modules
    pruned = apply_channel_plan(masked, second)
    assert max_output_difference(masked, pruned, inputs=(x,)) <= 1e-5


def test_channel_zero_filter_is_kept_when_batchnorm_shift_is_nonzero():
    model, shape = _build("resnet20")
    with torch.no_grad():
        model.stem[0].weight[3].zero_()
        model.stem[1].bias[3] = 0.7  # BN maps the zero channel to a constant 0.7: not dead
        model.blocks[0].conv1.weight[5].zero_()
        model.blocks[0].bn1.weight[5] = 0.0
        model.blocks[0].bn1.bias[5] = 0.0
    plan = plan_channel_pruning(model, example_inputs=(torch.randn(1, *shape),), channel_ratio=None)
    assert plan.modules["blocks.0.conv1"].out_keep == [i for i in range(16) if i != 5]
    assert "stem.0" not in plan.modules


def test_channel_residual_summands_are_pruned_together():
    model, shape = _build("resnet20")
    plan = plan_channel_pruning(model, example_inputs=(torch.randn(1, *shape),), channel_ratio=0.5)
    stage1 = ["stem.0", "stem.1"] + [f"blocks.{i}.conv2" for i in range(3)] + [f"blocks.{i}.bn2" for i in range(3)]
    keeps = {tuple(plan.modules[fqn].out_keep) for fqn in stage1}
    assert len(keeps) == 1 and len(keeps.pop()) == 8
    shortcut = plan.modules["blocks.3.shortcut.0"]
    assert shortcut.in_keep == plan.modules["stem.0"].out_keep
    assert shortcut.out_keep == plan.modules["blocks.3.conv2"].out_keep


def test_channel_concat_maps_offsets_into_consumer_inputs():
    model, shape = _build("inception-small")
    plan = plan_channel_pruning(model, example_inputs=(torch.randn(1, *shape),), channel_ratio=0.5)
    branches = ["block3.branch1.0", "block3.branch3.1.0", "block3.branch5.2.0", "block3.branch_pool.1.0"]
    offset, expected = 0, []
    for fqn in branches:
        entry = plan.modules[fqn]
        expected += [offset + i for i in entry.out_keep]
        offset += entry.out_size
    assert plan.modules["fc"].in_keep == expected


def test_channel_flatten_expands_channels_into_linear_features():
    model, shape = _build("lenet5")
    plan = plan_channel_pruning(model, example_inputs=(torch.randn(1, *shape),), channel_ratio=0.5)
    conv_keep = plan.modules["3"].out_keep
    assert plan.modules["7"].in_keep == [c * 16 + s for c in conv_keep for s in range(16)]
    assert "9" in plan.modules and plan.modules["9"].out_keep == list(range(10))


def test_channel_depthwise_couples_input_and_output():
    model, shape = _build("mobilenetv2-small")
    plan = plan_channel_pruning(model, example_inputs=(torch.randn(1, *shape),), channel_ratio=0.5)
    expand, depthwise, project = (plan.modules[f"features.4.body.{i}"] for i in (0, 3, 6))
    assert depthwise.kind == "depthwise"
    assert depthwise.in_keep == depthwise.out_keep == expand.out_keep == project.in_keep


def test_channel_grouped_conv_is_kept_and_its_producer_masked_with_note():
    model, shape = _build("mixed")
    plan = plan_channel_pruning(model, example_inputs=(torch.randn(1, *shape),), channel_ratio=0.5)
    assert "grouped" not in plan.modules and "e" not in plan.modules and "side" not in plan.modules
    assert any("grouped conv 'grouped'" in note for note in plan.notes)
    assert len(plan.masked["e.weight"].channels) == 4
    kept = plan.modules["c"].out_keep
    assert len(kept) == 8 and plan.modules["gate"].out_keep == kept
    assert plan.modules["a"].out_keep + [6 + i for i in plan.modules["b"].out_keep] == kept
    assert plan.modules["fc"].in_keep == [c * 16 + s for c in kept for s in range(16)]


def test_channel_untraceable_model_falls_back_to_masking_with_note():
    torch.manual_seed(0)
    model = LoopNet().eval()
    x = torch.randn(2, 3, 8, 8)
    result = prune_channels(model, example_inputs=(x,), channel_ratio=0.5)
    assert result.plan.modules == {}
    assert result.plan.masked["conv.weight"].channels and "could not trace" in result.plan.notes[0]
    assert int(result.model.conv.weight.reshape(8, -1).abs().sum(dim=1).eq(0).sum()) == 4


def test_channel_replay_raises_when_architecture_differs():
    model, shape = _build("lenet5")
    plan = plan_channel_pruning(model, example_inputs=(torch.randn(1, *shape),), channel_ratio=0.5)
    with pytest.raises(ValueError, match="replay the plan on the original architecture"):
        apply_channel_plan(create_model("lenet5", num_classes=10, in_channels=2), plan)


def test_channel_bn_gamma_importance_removes_smallest_gammas():
    model, shape = _build("lenet5-bn")
    with torch.no_grad():
        model[1].weight.copy_(torch.arange(1, 21, dtype=torch.float32))
    plan = plan_channel_pruning(model, example_inputs=(torch.randn(1, *shape),), channel_ratio=0.25, importance="bn-gamma")
    assert plan.modules["0"].out_keep == list(range(5, 20))


def test_channel_compute_counts_conv_and_linear_macs():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    count = count_compute(model, (torch.randn(2, 3, 8, 8),))
    assert count.macs == 8 * 8 * 4 * 3 * 9 + 256 * 10
    assert count.params == 4 * 27 + 4 + 2560 + 10


def test_channel_pruning_reduces_macs_on_resnet20():
    model, shape = _build("resnet20")
    x = torch.randn(1, *shape)
    result = prune_channels(model, example_inputs=(x,), channel_ratio=0.5)
    assert count_compute(result.model, (x,)).macs < 0.5 * count_compute(model, (x,)).macs


def test_channel_multiple_rounds_kept_channels_up():
    model, shape = _build("resnet20")
    plan = plan_channel_pruning(model, example_inputs=(torch.randn(1, *shape),), channel_ratio=0.3, channel_multiple=8)
    widths = {len(entry.out_keep) for entry in plan.modules.values() if entry.kind == "conv"}
    assert widths and all(width % 8 == 0 for width in widths)
    assert "stem.0" not in plan.modules  # 16 channels * 0.7 = 11 kept -> rounded up to 16
    assert len(plan.modules["blocks.6.conv1"].out_keep) == 48  # 64 * 0.7 = 45 -> 48


def test_channel_multiple_raises_when_not_positive():
    model, shape = _build("lenet5")
    with pytest.raises(ValueError, match="channel_multiple must be >= 1, got 0"):
        plan_channel_pruning(model, example_inputs=(torch.randn(1, *shape),), channel_ratio=0.3, channel_multiple=0)


def test_channel_plan_raises_when_masks_still_attached():
    from compress.prune import attach_masks, magnitude_masks

    model, shape = _build("lenet5")
    attach_masks(model, magnitude_masks(model, sparsity_ratio=0.5))
    with pytest.raises(ValueError, match="bake_masks"):
        plan_channel_pruning(model, example_inputs=(torch.randn(1, *shape),), channel_ratio=0.5)


def test_channel_baked_channel_sparse_model_shrinks_without_output_change():
    model, shape = _build("lenet5")
    with torch.no_grad():
        model[0].weight[[1, 4, 7]] = 0.0
        model[0].bias[[1, 4, 7]] = 0.0
    x = torch.randn(4, *shape)
    result = prune_channels(model, example_inputs=(x[:1],), channel_ratio=None)
    assert result.plan.exact and result.model[0].out_channels == 17
    assert max_output_difference(model, result.model, inputs=(x,)) <= 1e-5


def test_channel_plan_from_malformed_json_is_a_named_error():
    with pytest.raises(ChannelPlanError, match="unknown channel plan format"):
        ChannelPlan.from_dict({"layers": 5})
    model, shape = _build("lenet5")
    good = plan_channel_pruning(model, example_inputs=(torch.randn(1, *shape),), channel_ratio=0.5).to_dict()
    with pytest.raises(ChannelPlanError, match="lacks key 'modules'"):
        ChannelPlan.from_dict({k: v for k, v in good.items() if k != "modules"})
    bad = {**good, "modules": {"3": {**good["modules"]["3"], "out_keep": ["a"]}}}
    with pytest.raises(ChannelPlanError, match="malformed value"):
        ChannelPlan.from_dict(bad)
    outside = {**good, "modules": {"3": {**good["modules"]["3"], "out_keep": [999]}}}
    with pytest.raises(ChannelPlanError, match="outside its sizes"):
        apply_channel_plan(create_model("lenet5"), ChannelPlan.from_dict(outside))


def test_channel_equivalence_check_raises_a_named_error():
    model, shape = _build("lenet5")
    other, _ = _build("lenet5")
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    with pytest.raises(ChannelRemovalMismatch, match="differs from the masked model"):
        check_channel_equivalence(model, other, inputs=(torch.randn(2, *shape),))


def test_bake_masks_removes_only_weight_masks():
    from torch.nn.utils import parametrize

    from compress.prune import attach_masks, bake_masks

    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    attach_masks(model, {"0.weight": torch.ones(3, 4, dtype=torch.bool)})
    parametrize.register_parametrization(model[1], "weight", nn.Identity())
    bake_masks(model)
    assert not parametrize.is_parametrized(model[0]) and parametrize.is_parametrized(model[1], "weight")
