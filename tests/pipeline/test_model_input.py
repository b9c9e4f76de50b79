import os
import pickle

import pytest
import torch

from compress.models import create_model
from pipeline.errors import UserError
from pipeline.model.bundle import build_model, save_bundle
from pipeline.model.importers import import_model
from pipeline.model.run_input import RunInput


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/compress-pickle-ran",))


@pytest.fixture
def lenet_state(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "lenet.pt"
    torch.save(create_model("lenet5").state_dict(), path)
    return path


def test_import_model_state_dict_with_arch_rebuilds_same_weights(lenet_state):
    bundle = import_model(lenet_state, arch="lenet5")
    model = build_model(bundle)
    assert bundle.input_shape == (1, 28, 28)
    assert torch.equal(model.state_dict()["0.weight"], torch.load(lenet_state)["0.weight"])


def test_import_model_state_dict_without_arch_asks_for_it(lenet_state):
    with pytest.raises(UserError, match="pass --arch"):
        import_model(lenet_state)


def test_import_model_bundle_round_trips(tmp_path, lenet_state):
    bundle = import_model(lenet_state, arch="lenet5")
    save_bundle(tmp_path / "b.pt", bundle)
    again = import_model(tmp_path / "b.pt")
    assert again.arch == "lenet5" and set(again.state_dict) == set(bundle.state_dict)


def test_import_model_mismatched_keys_name_them(lenet_state):
    with pytest.raises(UserError, match="does not match architecture 'lenet300'"):
        import_model(lenet_state, arch="lenet300")


def test_import_model_wrong_input_shape_is_one_line(lenet_state):
    with pytest.raises(UserError, match=r"rejects input shape \[1, 32, 32\]"):
        import_model(lenet_state, arch="lenet5", input_shape=(1, 32, 32))


def test_import_model_nan_weight_is_refused(tmp_path):
    state = create_model("lenet5").state_dict()
    state["7.weight"][0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    with pytest.raises(UserError, match="7.weight holds NaN"):
        import_model(tmp_path / "nan.pt", arch="lenet5")


def test_import_model_executing_pickle_is_refused_without_trust(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": _Exploit()}, handle)
    if os.path.exists("/tmp/compress-pickle-ran"):
        os.remove("/tmp/compress-pickle-ran")
    with pytest.raises(UserError, match="--trust-pickle"):
        import_model(path, arch="lenet5")
    assert not os.path.exists("/tmp/compress-pickle-ran")


def test_import_model_pickled_module_loads_only_with_trust(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(create_model("lenet5"), path)
    with pytest.raises(UserError, match="--trust-pickle"):
        import_model(path)
    bundle = import_model(path, trust_pickle=True, input_shape=(1, 28, 28))
    assert bundle.arch.startswith("pickle:")


def test_import_model_torchscript_is_accepted(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.script(create_model("lenet5")).save(str(path))
    bundle = import_model(path, input_shape=(1, 28, 28))
    assert bundle.arch.startswith("torchscript:")
    assert build_model(bundle, trusted_archs=(bundle.arch,))(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


@pytest.mark.parametrize(
    "content,message",
    [(b"", "is empty"), (b"\x00\x01random bytes" * 10, "not a readable PyTorch checkpoint")],
)
def test_import_model_bad_files_give_one_line(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        import_model(path, arch="lenet5")


def test_import_model_truncated_checkpoint_is_refused(tmp_path, lenet_state):
    data = lenet_state.read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="not a readable PyTorch checkpoint"):
        import_model(path, arch="lenet5")


def test_import_model_missing_file_is_clear(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        import_model(tmp_path / "nope.pt")


def test_import_model_torch_export_program_is_accepted(tmp_path):
    path = tmp_path / "program.pt2"
    model = create_model("lenet5").eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (torch.zeros(2, 1, 28, 28),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    bundle = import_model(path, input_shape=(1, 28, 28))
    assert bundle.arch.startswith("export:")
    assert torch.allclose(build_model(bundle, trusted_archs=(bundle.arch,))(torch.ones(1, 1, 28, 28)), model(torch.ones(1, 1, 28, 28)), atol=1e-6)


def test_run_input_from_flags_holds_the_parsed_shape_and_arch(tmp_path):
    run_input = RunInput.from_flags(tmp_path / "model.onnx", arch="", input_shape="1x28x28")

    assert run_input.input_shape == (1, 28, 28)
    assert run_input.arch is None
    assert run_input.is_onnx


@pytest.mark.parametrize("shape", ["1,a,28", "0,28,28", "65536,65536,1"])
def test_run_input_from_flags_refuses_a_bad_input_shape_in_one_line(tmp_path, shape):
    with pytest.raises(UserError, match="--input-shape"):
        RunInput.from_flags(tmp_path / "model.pt", arch="lenet5", input_shape=shape)
