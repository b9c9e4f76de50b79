"""--train-device, --amp and mid-epoch checkpoints: training where asked, resumed at the step it reached."""

from __future__ import annotations

import pytest
import torch

from compress.optim.method import TrainingMethod
from pipeline.cli import main
from pipeline.data import load_dataset
from pipeline.manifest import read_manifest
from pipeline.recipe import parse_recipe
from pipeline.runner import Runner
from pipeline.stage import RunOptions, StageContext
from pipeline.stages.common import make_method
from pipeline.training.loop import run_training
from tests.pipeline.data_fixtures import image_folder, rgb_cnn

RECIPE = "stages:\n  - use: train-sparse\n    with: {epochs: 1, lr: 0.05, batch-size: 32}\n"


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_train_device_cpu_and_auto_train_where_expected(tmp_path, tiny_model_path, device):
    options = RunOptions(data="digits", seed=0, target="host", progress=False, train_limit=128, test_limit=64, train_device=device)
    Runner(parse_recipe(RECIPE), run_dir=tmp_path / "run", options=options, log=lambda _: None).run({"model": tiny_model_path})
    metrics = read_manifest(tmp_path / "run")["stages"][0]["metrics"]
    expected = "cuda:0" if device == "auto" and torch.cuda.is_available() else "cpu"
    assert metrics["train_device"] == expected and metrics["augmentation"] is None and metrics["history"][0]["loss"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_train_device_cuda_without_a_gpu_is_a_one_line_error(tmp_path, tiny_model_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--quiet", "train-sparse", str(tiny_model_path), "--data", "digits", "--train-device", "cuda", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code not in (0, None) and len(err.splitlines()) == 1 and "no CUDA GPU" in err, err
    assert not (tmp_path / "run").exists()


class _Killed(Exception):
    pass


class _KilledAfter:
    """The data set, except that its training stream raises after ``batches`` batches in all (a kill)."""

    def __init__(self, data, batches: int) -> None:
        self._data, self._left = data, batches

    def __getattr__(self, name):
        return getattr(self._data, name)

    def train_batches(self, **kwargs):
        for batch in self._data.train_batches(**kwargs):
            if self._left == 0:
                raise _Killed
            self._left -= 1
            yield batch


def _train(tmp_path, data, *, stage: str, amp: bool = False, log=None) -> torch.nn.Module:
    options = RunOptions(seed=3, progress=False, checkpoint_every=2, amp=amp)
    ctx = StageContext(run_dir=tmp_path, stage_dir=tmp_path / stage, stage_id=stage, options=options, history=[],
                       load_data=None, log=log or (lambda _: None))
    ctx.stage_dir.mkdir(exist_ok=True)
    torch.manual_seed(0)
    model = rgb_cnn()
    method = make_method(TrainingMethod, {"lr": 0.05, "momentum": 0.9}, what="test")
    run_training(ctx, model, method, data, epochs=2, batch_size=4, label="train", augment="on")
    return model


def test_killed_epoch_resumes_at_its_step_to_identical_weights_with_workers(tmp_path):
    data = load_dataset(str(image_folder(tmp_path / "images", per_class=8)), model_input_shape=(3, 16, 16), workers=2)
    reference = _train(tmp_path, data, stage="reference")
    with pytest.raises(_Killed):  # 4 steps per epoch: killed after step 3 of epoch 2, checkpointed at its step 2
        _train(tmp_path, _KilledAfter(data, 7), stage="killed")
    messages = []
    resumed = _train(tmp_path, data, stage="killed", log=messages.append)
    assert any("resuming at epoch 2, step 2" in message for message in messages), messages
    for name, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name


def test_amp_on_the_cpu_trains_in_bfloat16_autocast(tmp_path):
    data = load_dataset(str(image_folder(tmp_path / "images", per_class=4)), model_input_shape=(3, 16, 16))
    torch.manual_seed(0)
    before = rgb_cnn().state_dict()
    after = _train(tmp_path, data, stage="amp", amp=True).state_dict()
    assert all(torch.isfinite(value).all() for value in after.values())
    assert any(not torch.equal(before[name], after[name]) for name in before)
