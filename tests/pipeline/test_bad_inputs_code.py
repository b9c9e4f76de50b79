"""No code runs from a model file that is data: a ``.pt2`` archive is read
without unpickling, sympy evaluation, non-ATen targets or guard code, and a checkpoint cannot point
the loader at a program file."""

from __future__ import annotations

import pytest
import torch

from pipeline.cli import main
from pipeline.errors import PickleRefused, UserError
from pipeline.model.program_archive import is_program_archive, load_program
from tests.pipeline import hostile_files
from tests.pipeline.tiny import tiny_cnn

TRAIN = ["--data", "digits", "--epochs", "1", "--train-limit", "64", "--test-limit", "32"]
HOSTILE = {
    "evil.pt2": (hostile_files.evil_pt2, "pickled weights entry"),
    "evil.pt": (hostile_files.evil_checkpoint_naming_itself, "pickled weights entry"),
    "sympy.pt2": (hostile_files.evil_sympy_pt2, "not arithmetic"),
    "target.pt2": (hostile_files.evil_target_pt2, "not an ATen operator"),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    marker = root / "payload-ran"
    for name, (build, _) in HOSTILE.items():
        build(root / name, marker)
    return root, marker


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_model_file_is_refused_with_one_line_and_runs_nothing(hostile, tmp_path, capsys, name):
    root, marker = hostile
    with pytest.raises(SystemExit) as done:
        main(["--quiet", "train-sparse", str(root / name), *TRAIN, "--input-shape", "1,8,8", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert done.value.code not in (0, None)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert HOSTILE[name][1] in err, err
    assert not marker.exists(), "the payload ran"


def test_load_program_refuses_pickled_weights_when_not_trusted(hostile):
    root, marker = hostile
    with pytest.raises(PickleRefused, match="--trust-pickle"):
        load_program(root / "evil.pt2", trust_pickle=False)
    assert not marker.exists()


def test_checkpoint_naming_a_program_file_is_refused_when_not_an_archive(tmp_path, capsys):
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": tiny_cnn().state_dict(), "arch": f"export:{tmp_path / 'other.pt2'}", "input_shape": [1, 8, 8]}, path)
    with pytest.raises(SystemExit):
        main(["--quiet", "train-sparse", str(path), *TRAIN, "--out", str(tmp_path / "run")])
    assert "may only name a registered architecture" in capsys.readouterr().err


def test_load_program_builds_the_same_function_when_the_archive_is_plain(tmp_path):
    torch.manual_seed(0)
    model = tiny_cnn().eval()
    path = tmp_path / "plain.bin"  # the kind comes from the records, not the suffix
    torch.export.save(torch.export.export(model, (torch.zeros(1, 1, 8, 8),)), str(path))
    assert is_program_archive(path)
    x = torch.randn(1, 1, 8, 8)
    assert torch.equal(load_program(path, trust_pickle=False).module()(x), model(x))


def test_pt2_suffix_without_archive_records_is_one_line(tmp_path):
    from pipeline.model.importers import import_model

    path = tmp_path / "fake.pt2"
    torch.save(tiny_cnn().state_dict(), path)
    with pytest.raises(UserError, match="not a torch.export archive"):
        import_model(path, arch="lenet5")
