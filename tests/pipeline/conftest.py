"""Fixtures for pipeline tests: a tiny trained-enough model on scikit-learn digits."""

from __future__ import annotations

import pytest
import torch

from compress.models import list_models
from compress.models.registry import register_model
from pipeline.cli import main
from pipeline.model.bundle import ModelBundle, save_bundle
from pipeline.stage import RunOptions
from tests.pipeline.tiny import tiny_cnn

TINY_FACTORY = "tests.pipeline.tiny:tiny_cnn"  # for subprocesses, passed with --arch (a file alone may not name code)
TINY_ARCH = "tests-tiny-cnn"  # registered for the in-process tests below
if TINY_ARCH not in list_models():
    register_model(TINY_ARCH, input_shape=(1, 8, 8))(tiny_cnn)


def run_cli(argv, capsys):
    """``compress --quiet ARGV`` in this process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--quiet", *argv])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def save_tiny_bundle(path, *, arch: str = TINY_ARCH):
    """A seeded, untrained tiny CNN saved as a model bundle at ``path``."""
    torch.manual_seed(0)
    return save_bundle(path, ModelBundle(arch=arch, input_shape=(1, 8, 8), state_dict=tiny_cnn().state_dict()))


@pytest.fixture
def tiny_model_path(tmp_path):
    return save_tiny_bundle(tmp_path / "tiny.pt")


@pytest.fixture
def digits_options():
    return RunOptions(data="digits", seed=0, target="host", progress=False, train_limit=256, test_limit=128, trusted_archs=())
