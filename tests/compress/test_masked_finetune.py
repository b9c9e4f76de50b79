"""The masked fine-tune phase of SGL, SSGD, ADMM and network slimming (``compress.optim.masked_finetune``).

Once a method switches, its steps must equal masked SGD written out by hand (fresh momentum, gradients
and weights multiplied by the frozen masks), and states saved under the earlier key names must resume.
"""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from compress.optim import create_method
from compress.optim.loop import start_training, train_epoch
from tests.compress.test_methods import synthetic_batches, tiny_model

pytestmark = pytest.mark.usefixtures("single_thread")

TOTAL, PER_EPOCH, SWITCH = 8, 4, 4  # 2 epochs of 4 steps; every method below switches after step 4
CONFIGS = {
    "sgl": dict(optimizer="sgd", lr=0.05, weight_decay=1e-3, lam=0.1, num_train=64, finetune_ratio=0.5),
    "ssgd": dict(lr=0.05, weight_decay=1e-3, sparsity_ratio=0.6, finetune_ratio=0.5),
    "admm": dict(optimizer="sgd", lr=0.05, weight_decay=1e-3, sparsity_ratio=0.6, admm_epochs=1),
    "slimming": dict(lr=0.05, weight_decay=1e-3, s=1e-2, sparsity_ratio=0.5, finetune_ratio=0.5),
    "xrda": dict(lam=1e-3, lr=0.5),
}
BATCHES = synthetic_batches(count=TOTAL, seed=3)


def _step(model, method, optimizer, index):
    train_epoch(model, [BATCHES[index]], method, optimizer)
    if (index + 1) % PER_EPOCH == 0:
        method.on_epoch_end(model, epoch=index // PER_EPOCH)


def _weights(model):
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def _momentum(model, optimizer):
    return [optimizer.state[parameter]["momentum_buffer"].clone() for parameter in model.parameters()]


@pytest.mark.parametrize("name", ["sgl", "ssgd", "admm", "slimming"])
def test_after_the_switch_a_method_trains_as_hand_written_masked_sgd(name):
    model = tiny_model()
    method = create_method(name, **CONFIGS[name])
    optimizer = start_training(method, model, total_steps=TOTAL)
    for index in range(SWITCH):
        assert not method.fine_tuning
        _step(model, method, optimizer, index)
    assert method.fine_tuning and method.steps == SWITCH
    start, masks = _weights(model), {fqn: mask.clone() for fqn, mask in method.phase.masks.items()}
    trained = []
    for index in range(SWITCH, TOTAL):
        _step(model, method, optimizer, index)
        trained.append((_weights(model), _momentum(model, optimizer)))
    assert method.steps == TOTAL

    reference = tiny_model(seed=1)
    reference.load_state_dict(start)
    hp = method.hp
    sgd = torch.optim.SGD(reference.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)  # momentum reset
    parameters = dict(reference.named_parameters())
    reference.train()
    for index, (expected, momentum) in zip(range(SWITCH, TOTAL), trained):
        inputs, targets = BATCHES[index]
        sgd.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(reference(inputs), targets).backward()  # no penalty while fine-tuning
        with torch.no_grad():
            if name != "slimming":  # slimming leaves the gradients and re-zeroes its channels instead
                for fqn, mask in masks.items():
                    parameters[fqn].grad.mul_(mask)
            sgd.step()
            if name == "slimming":
                dead = masks["1"]  # batch norm "1", produced by conv "0"
                for layer in (reference[0], reference[1]):
                    layer.weight[dead] = 0.0
                    layer.bias[dead] = 0.0
            else:
                for fqn, mask in masks.items():
                    parameters[fqn].mul_(mask)
        after = index + 1 - SWITCH
        for key, value in reference.state_dict().items():
            assert torch.equal(value, expected[key]), f"{name}: {key} differs {after} steps after the switch"
        for position, buffer in enumerate(_momentum(reference, sgd)):
            assert torch.equal(buffer, momentum[position]), f"{name}: momentum {position} differs {after} steps after the switch"


# The state keys before the counter and the phase flag had one name in every method (None: not written).
EARLIER_KEYS = {
    "admm": {"steps": "step_count", "fine_tuning": "retraining"},
    "xrda": {"steps": "iteration"},
    "slimming": {"fine_tuning": None},
}


@pytest.mark.parametrize("name", sorted(EARLIER_KEYS))
def test_a_state_saved_under_the_earlier_keys_resumes_bit_for_bit(name):
    saved_at = SWITCH + 2
    model = tiny_model()
    method = create_method(name, **CONFIGS[name])
    optimizer = start_training(method, model, total_steps=TOTAL)
    for index in range(saved_at):
        _step(model, method, optimizer, index)
    state = method.state_dict()
    assert "steps" in state and all(key not in state for key in EARLIER_KEYS[name].values())
    earlier = {EARLIER_KEYS[name].get(key, key): value for key, value in state.items()}
    earlier.pop(None, None)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "method": earlier}, buffer)
    for index in range(saved_at, TOTAL):
        _step(model, method, optimizer, index)

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed = tiny_model(seed=1)
    resumed.load_state_dict(saved["model"])
    resumed_method = create_method(name, **CONFIGS[name])
    resumed_optimizer = start_training(resumed_method, resumed, total_steps=TOTAL)
    resumed_optimizer.load_state_dict(saved["optimizer"])
    resumed_method.load_state_dict(saved["method"])
    assert resumed_method.steps == saved_at
    assert getattr(resumed_method, "fine_tuning", True)
    for index in range(saved_at, TOTAL):
        _step(resumed, resumed_method, resumed_optimizer, index)
    for key, value in model.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), f"{name}: {key} differs after resuming an earlier state"
