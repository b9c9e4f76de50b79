"""Quantization training methods: registry, layer selection, attach / train / finalize, sparsity, records."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from compress.optim.loop import start_training, train_epoch
from compress.quant import (
    QUANT_METHODS,
    codes_from_weight,
    create_quant_method,
    get_projection,
    list_quant_methods,
)
from compress.quant.binary_relax import relax_eta
from compress.quant.ste import ProjectedWeight

torch.set_num_threads(1)
ALL_METHODS = ["binary", "binary-relax", "int8", "ternary", "ttq"]


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 12), nn.ReLU(), nn.Linear(12, 3)
    )


def _batches(count: int = 4, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 1, 8, 8, generator=generator), torch.randint(0, 3, (8,), generator=generator)) for _ in range(count)]


def _train(model: nn.Module, method, *, epochs: int = 2) -> None:
    batches = _batches()
    optimizer = start_training(method, model, total_steps=epochs * len(batches))
    for epoch in range(epochs):
        train_epoch(model, batches, method, optimizer)
        method.on_epoch_end(model, epoch=epoch)


def test_list_quant_methods_names_the_five_methods():
    assert list_quant_methods() == ALL_METHODS


def test_quant_methods_registry_raises_on_duplicate_name():
    with pytest.raises(ValueError, match="duplicate"):
        QUANT_METHODS.register("ternary")(object)


def test_create_quant_method_raises_naming_allowed_when_unknown():
    with pytest.raises(KeyError, match="allowed: binary, binary-relax"):
        create_quant_method("quaternary")


def test_ternary_method_raises_on_unknown_mode():
    with pytest.raises(ValueError, match="allowed: twn, exact"):
        create_quant_method("ternary", mode="approx")


def test_quant_method_raises_when_its_selection_is_empty():
    with pytest.raises(ValueError, match="selection is empty"):
        start_training(create_quant_method("binary", exclude=["2", "5"]), _model(), total_steps=1)


@pytest.mark.parametrize("name", ALL_METHODS)
def test_quant_method_finalize_writes_exact_codes_and_detaches(name):
    model = _model()
    method = create_quant_method(name, lr=0.01)
    _train(model, method)
    method.finalize(model)
    records = method.records()
    assert [record.fqn for record in records] == ["2.weight", "5.weight"]
    assert not any(parametrize.is_parametrized(module) for module in model.modules())
    assert all("parametrizations" not in key for key in model.state_dict())
    params = dict(model.named_parameters())
    for record in records:
        codes = codes_from_weight(params[record.fqn].detach(), record)
        limit = 127 if record.scheme == "int8" else 1
        assert int(codes.abs().max()) <= limit


@pytest.mark.parametrize("name", ALL_METHODS)
def test_quant_method_keeps_pruned_zeros_when_training(name):
    model = _model()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight[module.weight.abs() < module.weight.abs().median()] = 0.0
    pruned = {fqn: (p == 0).clone() for fqn, p in model.named_parameters() if fqn.endswith("weight")}
    method = create_quant_method(name, lr=0.05)
    _train(model, method)
    method.finalize(model)
    params = dict(model.named_parameters())
    for fqn, zeros in pruned.items():
        assert torch.all(params[fqn][zeros] == 0), fqn


def test_quant_method_finalize_without_training_equals_projection():
    model = _model()
    latent = model[5].weight.detach().clone()
    method = create_quant_method("ternary", mode="exact", per_channel=True, preserve_sparsity=False)
    method.finalize(model)
    expected = get_projection("ternary")(latent, per_channel=True).dequantize()
    assert torch.equal(model[5].weight.detach(), expected)
    assert method.records()[1].scales == tuple(float(v) for v in get_projection("ternary")(latent, per_channel=True).scales)


def test_quant_method_attach_raises_when_attached_twice():
    model = _model()
    method = create_quant_method("binary")
    start_training(method, model, total_steps=1)
    with pytest.raises(ValueError, match="already parametrized"):
        start_training(create_quant_method("binary"), model, total_steps=1)


def test_quant_method_trains_latent_weights_through_loop():
    model = _model()
    method = create_quant_method("ternary", lr=0.1)
    optimizer = start_training(method, model, total_steps=4)
    before = model[5].parametrizations.weight.original.detach().clone()
    train_epoch(model, _batches(), method, optimizer)
    assert not torch.equal(model[5].parametrizations.weight.original.detach(), before)
    quantized = get_projection("twn")(model[5].parametrizations.weight.original, per_channel=False, mask=model[5].parametrizations.weight[0].mask)
    assert torch.equal(model[5].weight.detach(), quantized.dequantize())


def test_projected_weight_passes_gradient_straight_through_on_support():
    latent = torch.randn(3, 5, generator=torch.Generator().manual_seed(3)).requires_grad_(True)
    mask = torch.rand(3, 5, generator=torch.Generator().manual_seed(4)) > 0.3
    upstream = torch.randn(3, 5)
    (ProjectedWeight(projection="twn", mask=mask, per_channel=False)(latent) * upstream).sum().backward()
    assert torch.equal(latent.grad, upstream * mask)


def test_relax_eta_grows_geometrically():
    assert [relax_eta(e, eta0=2.0, rho=1.5) for e in range(3)] == [2.0, 3.0, 4.5]


def test_binary_relax_forward_is_relaxed_then_exact_after_ratio():
    model = _model()
    method = create_quant_method("binary-relax", eta0=1.0, rho=2.0, exact_after_ratio=0.5)
    batches = _batches()
    optimizer = start_training(method, model, total_steps=2 * len(batches))
    layer = model[5]
    latent = layer.parametrizations.weight.original.detach()
    projected = get_projection("binary")(latent, per_channel=False).dequantize()
    assert torch.allclose(layer.weight.detach(), (projected + latent) / 2)
    train_epoch(model, batches, method, optimizer)
    method.on_epoch_end(model, epoch=0)
    latent = layer.parametrizations.weight.original.detach()
    assert method.current_eta() is None
    assert torch.equal(layer.weight.detach(), get_projection("binary")(latent, per_channel=False).dequantize())


def test_binary_relax_eta_follows_schedule_before_phase_two():
    model = _model()
    method = create_quant_method("binary-relax", eta0=1.0, rho=1.5, exact_after_ratio=1.0)
    optimizer = start_training(method, model, total_steps=3 * 4)
    train_epoch(model, _batches(), method, optimizer)
    method.on_epoch_end(model, epoch=0)
    assert method.current_eta() == 1.5
    assert model[5].parametrizations.weight[0].relax_eta.item() == 1.5


def test_binary_relax_state_dict_round_trips():
    method = create_quant_method("binary-relax")
    method.load_state_dict({"layers": ["2"], "records": [], "total_steps": 10, "steps": 7, "epochs": 2, "exact": True})
    restored = create_quant_method("binary-relax")
    restored.load_state_dict(method.state_dict())
    assert (restored.steps, restored.epochs, restored.exact, restored.current_eta()) == (7, 2, True, None)


def test_ttq_method_trains_scales_with_their_own_learning_rate():
    model = _model()
    method = create_quant_method("ttq", lr=0.01, scale_lr=1e-3)
    optimizer = start_training(method, model, total_steps=4)
    assert sorted(group["lr"] for group in optimizer.param_groups) == [1e-3, 0.01]
    before = model[5].parametrizations.weight[0].pos_scale.detach().clone()
    train_epoch(model, _batches(), method, optimizer)
    assert not torch.equal(model[5].parametrizations.weight[0].pos_scale.detach(), before)
    method.finalize(model)
    record = method.records()[1]
    assert record.neg_scales is not None and record.scales[0] > 0 > record.neg_scales[0]


@pytest.mark.parametrize("name", ["ttq", "binary-relax"])
def test_quant_method_resumes_when_attached_before_loading_state(name):
    model = _model()
    method = create_quant_method(name, lr=0.01)
    _train(model, method, epochs=1)
    resumed_model = _model(seed=1)
    resumed = create_quant_method(name, lr=0.01)
    start_training(resumed, resumed_model, total_steps=8)
    resumed_model.load_state_dict(model.state_dict())
    resumed.load_state_dict(method.state_dict())
    inputs = _batches(count=1)[0][0]
    assert torch.equal(resumed_model(inputs), model(inputs))


def test_binary_relax_eta_reaches_eta_end_when_phase_two_starts_whatever_the_budget():
    for steps in (8, 80):
        model = _model()
        method = create_quant_method("binary-relax", eta0=1.0, eta_end=100.0, exact_after_ratio=0.5)
        start_training(method, model, total_steps=steps)
        for _ in range(steps // 4):
            method.after_step(model)
        assert method.current_eta() == pytest.approx(10.0)  # half of phase I: sqrt(1 * 100)
        assert model[5].parametrizations.weight[0].relax_eta.item() == pytest.approx(10.0)
        for _ in range(steps // 4):
            method.after_step(model)
        assert method.current_eta() == pytest.approx(100.0)
