"""int8 method: symmetric fake quantization, range calibration, QAT, exact int8 weights / int32 biases."""

import itertools

import pytest
import torch
from torch import nn

from compress.optim.loop import start_training, train_epoch
from compress.quant import (
    ActivationScales,
    attach_activation_quant,
    codes_from_weight,
    create_quant_method,
    fake_quantize,
    observe_ranges,
    symmetric_scale,
)

torch.set_num_threads(1)


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 3))


def _batches(count: int = 6, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 1, 8, 8, generator=generator), torch.randint(0, 3, (8,), generator=generator)) for _ in range(count)]


def _calibrated(model, **hyperparameters):
    method = create_quant_method("int8", skip_first_last=False, calibration_batches=4, **hyperparameters)
    method.calibrate(model, iter(_batches()))
    return method


def test_fake_quantize_rounds_half_to_even_and_saturates_like_quantize_linear():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, 200.0, -200.0, 126.6])
    assert fake_quantize(x, 1.0).tolist() == [0.0, 2.0, 2.0, -0.0, 127.0, -128.0, 127.0]


def test_fake_quantize_gradient_is_straight_through_inside_the_range_only():
    x = torch.tensor([0.3, 5.0, -5.0, 1.2], requires_grad=True)
    fake_quantize(x, 0.01).sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 0.0, 1.0]


def test_symmetric_scale_is_range_over_127_and_refuses_bad_ranges():
    assert symmetric_scale(12.7) == pytest.approx(0.1)
    assert symmetric_scale(0.0) == 1.0
    with pytest.raises(ValueError, match="finite"):
        symmetric_scale(float("nan"))


def test_observe_ranges_records_largest_input_and_output_magnitude():
    model = _model()
    batches = _batches(3)
    ranges = observe_ranges(model, ["0", "5"], iter(batches), num_batches=2)
    with torch.no_grad():
        inputs = torch.cat([b[0] for b in batches[:2]])
        hidden = model[:5](inputs)
        logits = model[5](hidden)
    assert ranges["0"].input_max == pytest.approx(float(inputs.abs().max()))
    assert ranges["5"].input_max == pytest.approx(float(hidden.abs().max()))
    assert ranges["5"].output_max == pytest.approx(float(logits.abs().max()))


def test_observe_ranges_raises_when_no_batch_is_read():
    with pytest.raises(ValueError, match="no batch"):
        observe_ranges(_model(), ["0"], iter([]), num_batches=2)


def test_int8_calibrate_sets_scales_from_ranges_and_quantizes_activations():
    model = _model()
    method = _calibrated(model)
    scales = method.activation_scales()
    assert set(scales) == {"0", "2", "5"}
    assert all(s.input_scale > 0 and s.output_scale > 0 for s in scales.values())
    with torch.no_grad():
        logits = model(_batches(1, seed=5)[0][0])
    codes = logits / scales["5"].output_scale
    assert torch.allclose(codes, codes.round(), atol=1e-3)  # the logits sit on the int8 grid
    assert float(codes.abs().max()) <= 128


def test_int8_finalize_writes_int8_weights_int32_biases_and_keeps_pruned_zeros():
    model = _model()
    with torch.no_grad():
        model[2].weight[:, :2] = 0.0
        model[2].weight[5] = 0.0  # an all-zero output channel
    zeros = model[2].weight == 0
    method = _calibrated(model)
    optimizer = start_training(method, model, total_steps=4)
    train_epoch(model, itertools.islice(_batches(seed=1), 4), method, optimizer)
    method.finalize(model)
    params = dict(model.named_parameters())
    scales = method.activation_scales()
    for record in method.records():
        assert record.scheme == "int8" and min(record.scales) > 0
        assert int(codes_from_weight(params[record.fqn].detach(), record).abs().max()) <= 127
        name = record.fqn.removesuffix(".weight")
        step = scales[name].input_scale * torch.tensor(record.scales)
        bias = params[f"{name}.bias"].detach()
        assert torch.equal(torch.round(bias / step) * step, bias)
    assert torch.all(model[2].weight[zeros] == 0)


def test_int8_record_dicts_carry_scales_that_rebuild_the_same_model():
    model = _model()
    method = _calibrated(model)
    method.finalize(model)
    records = method.record_dicts()
    assert all({"input_scale", "output_scale", "scales", "fqn"} <= set(r) for r in records)
    x = _batches(1, seed=7)[0][0]
    with torch.no_grad():
        expected = model(x)
        method.activations.remove()
        plain = model(x)
        attach_activation_quant(model, records)
        rebuilt = model(x)
    assert torch.equal(rebuilt, expected) and not torch.equal(plain, expected)


def test_int8_load_state_dict_reattaches_the_activation_scales():
    model = _model()
    saved = _calibrated(model).state_dict()
    fresh = create_quant_method("int8", skip_first_last=False)
    start_training(fresh, _model(), total_steps=1)
    fresh.load_state_dict(saved)
    assert fresh.activation_scales() == {name: ActivationScales.from_dict(d) for name, d in saved["activation_scales"].items()}
    assert fresh.activations.attached


def test_int8_without_calibration_quantizes_weights_only():
    model = _model()
    method = create_quant_method("int8")
    method.finalize(model)
    assert method.activation_scales() == {} and "input_scale" not in method.record_dicts()[0]


def test_int8_hyperparameters_refuse_zero_calibration_batches():
    with pytest.raises(ValueError, match="calibration_batches"):
        create_quant_method("int8", calibration_batches=0)
