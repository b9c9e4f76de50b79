"""Contract tests over every registered sparse-training method on a small conv + BN + linear model."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from compress.optim import create_method, list_methods
from compress.optim.loop import start_training, train_epoch
from compress.stats import weight_sparsity

STRONG = {
    "admm": dict(sparsity_ratio=0.6, admm_epochs=1, lr=1e-2),
    "group-lasso": dict(lr=0.1, lam=3.0),
    "l1-prox": dict(lr=0.1, lam=1.0),
    "rgsm": dict(lr=0.05, lam1=0.3, beta=1.0, relative_threshold=None),
    "rvsm": dict(lr=0.05, lam=1e-2, beta=1.0),
    "sgl": dict(lam=0.1, beta=2.5, num_train=64),
    "slimming": dict(lr=0.05, s=1e-2, sparsity_ratio=0.5),
    "ssgd": dict(lr=0.05, keep_energy=0.9, ssgd_epochs=2),
    "xrda": dict(lam=1e-3, lr=0.5),
}


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 12), nn.ReLU(), nn.Linear(12, 3)
    )


def synthetic_batches(count: int = 4, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 1, 6, 6, generator=generator), torch.randint(0, 3, (16,), generator=generator)) for _ in range(count)]


def run_epochs(model, method, optimizer, *, epochs: int, start_epoch: int = 0) -> None:
    for epoch in range(start_epoch, start_epoch + epochs):
        train_epoch(model, synthetic_batches(seed=epoch), method, optimizer)
        method.on_epoch_end(model, epoch=epoch)


def is_plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str, torch.Tensor))


def test_registry_lists_every_method_of_the_issue():
    assert set(STRONG) == set(list_methods())


@pytest.mark.parametrize("name", sorted(STRONG))
def test_method_trains_and_finalize_gives_exact_zeros(name):
    model = tiny_model()
    method = create_method(name, **STRONG[name])
    optimizer = start_training(method, model, total_steps=12)
    run_epochs(model, method, optimizer, epochs=3)
    method.finalize(model)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert weight_sparsity(model) > 0.0


@pytest.mark.parametrize("name", sorted(STRONG))
def test_method_state_dict_resumes_bit_for_bit(name):
    model = tiny_model()
    method = create_method(name, **STRONG[name])
    optimizer = start_training(method, model, total_steps=16)
    run_epochs(model, method, optimizer, epochs=2)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": optimizer.state_dict(), "method": method.state_dict()}, buffer)
    run_epochs(model, method, optimizer, epochs=2, start_epoch=2)

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed = tiny_model(seed=123)
    resumed.load_state_dict(saved["model"])
    resumed_method = create_method(name, **STRONG[name])
    resumed_optimizer = start_training(resumed_method, resumed, total_steps=16)
    resumed_optimizer.load_state_dict(saved["opt"])
    resumed_method.load_state_dict(saved["method"])
    run_epochs(resumed, resumed_method, resumed_optimizer, epochs=2, start_epoch=2)

    assert is_plain(saved["method"])
    for (fqn, expected), actual in zip(model.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(expected, actual), f"{name}: {fqn} differs after resume"


def test_admm_finalize_meets_per_layer_sparsity_when_layer_sparsity_given():
    model = tiny_model()
    method = create_method("admm", sparsity_ratio=0.5, layer_sparsity={"4.weight": 0.9}, admm_epochs=1)
    optimizer = start_training(method, model, total_steps=8)
    run_epochs(model, method, optimizer, epochs=2)
    method.finalize(model)
    fc = model[4].weight
    assert int(fc.ne(0).sum()) == round(fc.numel() * 0.1)
    assert int(model[0].weight.ne(0).sum()) == round(model[0].weight.numel() * 0.5)


def test_admm_masked_retraining_keeps_pruned_weights_at_zero():
    model = tiny_model()
    method = create_method("admm", sparsity_ratio=0.7, admm_epochs=1, optimizer="sgd", lr=0.05)
    optimizer = start_training(method, model, total_steps=8)
    run_epochs(model, method, optimizer, epochs=1)
    zeros = {fqn: w.eq(0).clone() for fqn, w in model.named_parameters() if w.dim() >= 2}
    run_epochs(model, method, optimizer, epochs=1, start_epoch=1)
    for fqn, weight in model.named_parameters():
        if weight.dim() >= 2:
            assert bool(weight[zeros[fqn]].eq(0).all()), fqn


def test_admm_raises_when_layer_sparsity_names_unknown_weight():
    method = create_method("admm", layer_sparsity={"nope.weight": 0.5})
    with pytest.raises(ValueError, match="nope.weight"):
        start_training(method, tiny_model(), total_steps=1)


def test_rvsm_weights_equal_hard_threshold_after_epoch_end():
    model = tiny_model()
    method = create_method("rvsm", lam=1e-2, beta=1.0, lr=0.05)
    optimizer = start_training(method, model, total_steps=4)
    run_epochs(model, method, optimizer, epochs=1)
    gamma = (2 * 1e-2 / 1.0) ** 0.5
    for _, weight in model.named_parameters():
        if weight.dim() >= 2:
            assert bool(((weight == 0) | (weight.abs() > gamma)).all())


def test_rgsm_produces_zero_input_channels():
    model = tiny_model()
    method = create_method("rgsm", lam1=0.3, beta=1.0, lr=0.05, group_axis="input", relative_threshold=None)
    optimizer = start_training(method, model, total_steps=8)
    run_epochs(model, method, optimizer, epochs=2)
    method.finalize(model)
    column_norms = model[4].weight.norm(dim=0)
    assert int((column_norms == 0).sum()) > 0


def test_slimming_finalize_makes_pruned_channels_output_exactly_zero():
    model = tiny_model()
    method = create_method("slimming", s=1e-2, sparsity_ratio=0.5, lr=0.05)
    optimizer = start_training(method, model, total_steps=4)
    run_epochs(model, method, optimizer, epochs=1)
    method.finalize(model)
    model.eval()
    dead = model[1].weight == 0
    assert int(dead.sum()) == 3
    activations = model[1](model[0](torch.randn(5, 1, 6, 6)))
    assert bool(activations[:, dead].eq(0).all())
    assert bool(model[0].weight[dead].eq(0).all())


def test_slimming_raises_when_model_has_no_batch_norm():
    method = create_method("slimming")
    with pytest.raises(ValueError, match="batch-norm"):
        method.finalize(nn.Sequential(nn.Linear(3, 2)))


def test_xrda_sparsifies_from_random_init_in_channel_mode():
    model = tiny_model()
    method = create_method("xrda", lam=1e-2, lr=0.5, mode="channel")
    optimizer = start_training(method, model, total_steps=8)
    run_epochs(model, method, optimizer, epochs=2)
    assert weight_sparsity(model) > 0.0


def test_xrda_with_zero_lambda_matches_ema_momentum_sgd_when_constant_schedule():
    model, reference = tiny_model(), tiny_model()
    method = create_method("xrda", lam=0.0, lr=0.5, tau=9.5, weight_decay=0.0, schedule="constant")
    optimizer = start_training(method, model, total_steps=4)
    x, y = synthetic_batches(1)[0]
    decay = torch.exp(torch.tensor(-0.5 / 9.5)).item()
    velocity = [torch.zeros_like(p) for p in reference.parameters()]
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        reference.zero_grad()
        nn.functional.cross_entropy(reference(x), y).backward()
        with torch.no_grad():
            for v, p in zip(velocity, reference.parameters()):
                v.mul_(decay).add_((1 - decay) * p.grad)
                p.sub_(0.5 * v)
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("rvsm", {"penalty": "l2"}, "allowed: l0, l1, tl1"),
        ("sgl", {"penalty": "lp"}, "allowed: l1, l0, tl1, l1-l2, scad"),
        ("xrda", {"mode": "rows"}, "allowed: normal, kernel, channel, block"),
        ("admm", {"mode": "block"}, "allowed: element, channel"),
        ("group-lasso", {"group_axis": "depth"}, "allowed: output, input, both"),
        ("rgsm", {"group_axis": "depth"}, "allowed: output, input"),
        ("ssgd", {"p": 2.0}, "p must be in"),
    ],
)
def test_method_raises_on_invalid_hyperparameter(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_method(name, **kwargs)


def test_method_state_dict_is_a_copy_not_an_alias():
    model = tiny_model()
    method = create_method("rvsm", lam=1e-2, beta=1.0)
    optimizer = start_training(method, model, total_steps=4)
    run_epochs(model, method, optimizer, epochs=1)
    state = method.state_dict()
    snapshot = copy.deepcopy(state)
    run_epochs(model, method, optimizer, epochs=1, start_epoch=1)
    assert all(torch.equal(state["u"][k], snapshot["u"][k]) for k in state["u"])


def test_xrda_block_mode_averages_over_blocks_of_output_rows():
    from compress.optim.xrda import group_average

    weight = torch.arange(1.0, 1.0 + 5 * 3).reshape(5, 3)  # rows 0-3 form one block of 4, row 4 a block of 1
    average, scale = group_average(weight, mode="block", block_rows=4)
    assert scale == 2.0
    assert torch.equal(average[:4], weight[:4].mean(dim=0, keepdim=True).expand(4, 3))
    assert torch.equal(average[4], weight[4])
    conv = torch.randn(32, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    conv_average, _ = group_average(conv, mode="block", block_rows=16)
    expected = conv.abs().reshape(2, 16, 2, 3, 3).mean(dim=1, keepdim=True).expand(2, 16, 2, 3, 3).reshape(32, 2, 3, 3)
    assert torch.allclose(conv_average, expected)


@pytest.mark.parametrize(
    "name,attribute,rule",
    [
        ("xrda", "lam", lambda hp, steps: hp.lam_steps / steps),
        ("l1-prox", None, lambda hp, steps: hp.lam_steps / (hp.lr * steps)),
        ("slimming", "s", lambda hp, steps: hp.s_steps / (hp.lr * steps)),
    ],
)
def test_default_strength_scales_with_the_step_budget(name, attribute, rule):
    for steps in (400, 40_000):
        method = create_method(name)
        method.prepare(tiny_model(), total_steps=steps)
        value = method.l1.strength if attribute is None else getattr(method, attribute)
        assert value == pytest.approx(rule(method.hp, steps))


def test_xrda_lr_is_its_step_size():
    method = create_method("xrda", lr=0.25)
    optimizer = start_training(method, tiny_model(), total_steps=10)
    assert method._schedules()[0] == pytest.approx(0.25) and optimizer is method.optimizer


def test_rgsm_relative_threshold_cuts_every_layer_at_its_own_scale():
    model = tiny_model()
    with torch.no_grad():
        model[4].weight.mul_(20.0)  # a layer whose group norms are 20x the others'
    method = create_method("rgsm", relative_threshold=0.95, lr=1e-4, lam2=0.0)
    optimizer = start_training(method, model, total_steps=4)
    run_epochs(model, method, optimizer, epochs=1)
    method.finalize(model)
    for index in (0, 4, 6):
        rows = model[index].weight.detach().reshape(model[index].weight.shape[0], -1).norm(dim=1)
        assert 0 < int((rows == 0).sum()) < len(rows), f"layer {index}: {rows}"


def test_sgl_beta_grows_over_the_run_and_the_last_quarter_is_a_masked_fine_tune():
    model = tiny_model()
    method = create_method("sgl", num_train=64, lam=0.5, finetune_ratio=0.5)
    optimizer = start_training(method, model, total_steps=8)
    assert method.beta == pytest.approx(2.5)
    run_epochs(model, method, optimizer, epochs=1)  # 4 of 8 steps: half-way, the support freezes
    assert method.fine_tuning and method.penalty(model) == 0.0
    assert method.beta == pytest.approx(2.5 * 1.25**2)
    zeros = {fqn: w.detach() == 0 for fqn, w in method.layers.weights(model)}
    run_epochs(model, method, optimizer, epochs=1, start_epoch=1)
    for fqn, weight in method.layers.weights(model):
        assert bool((weight.detach()[zeros[fqn]] == 0).all()), f"{fqn}: a frozen zero came back"


def test_slimming_keeps_a_floor_per_layer_and_fine_tunes_with_the_channels_held_at_zero():
    model = tiny_model()
    method = create_method("slimming", sparsity_ratio=0.99, min_keep_ratio=0.5, finetune_ratio=0.5, lr=0.05)
    optimizer = start_training(method, model, total_steps=8)
    run_epochs(model, method, optimizer, epochs=1)  # half of the steps: channels pruned, fine-tune starts
    dead = method.dead["1"]
    assert int(dead.sum()) == 3, "the floor keeps 3 of the 6 channels although the quantile asks for 99%"
    run_epochs(model, method, optimizer, epochs=1, start_epoch=1)
    method.finalize(model)
    assert bool((model[0].weight[dead] == 0).all()) and bool((model[1].weight[dead] == 0).all())
    assert bool((model[0].weight[~dead] != 0).any())


@pytest.mark.parametrize(
    ("name", "kwargs", "exclusive"),
    [
        ("rgsm", dict(lr=0.05, group_axis="block", relative_threshold=1.0), True),
        ("group-lasso", dict(lr=0.1, lam=0.5, group_axis="block"), True),
        ("sgl", dict(lam=0.1, beta=2.5, num_train=64, group_axis="block"), False),
    ],
)
def test_block_mode_zeroes_whole_16x1_blocks_of_consecutive_output_rows(name, kwargs, exclusive):
    from compress.prox.group import BLOCK, group_norms

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32 * 4 * 4, 40), nn.ReLU(), nn.Linear(40, 3))
    method = create_method(name, **kwargs)
    optimizer = start_training(method, model, total_steps=8)
    run_epochs(model, method, optimizer, epochs=2)
    method.finalize(model)
    zero_blocks = 0
    for fqn, weight in model.named_parameters():
        if weight.dim() < 2:
            continue
        in_zero_block = group_norms(weight.detach(), axis=BLOCK) == 0
        zero_blocks += int(in_zero_block.sum())
        if exclusive:
            assert torch.equal(weight.detach() == 0, in_zero_block), f"{name}: {fqn} has zeros outside whole blocks"
    assert zero_blocks > 0, f"{name} zeroed no 16x1 block"
