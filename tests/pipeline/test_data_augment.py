"""Training augmentation: on for RGB image folders, recorded per stage; the device gets the evaluation transform."""

from __future__ import annotations

import json

import pytest
import torch

from pipeline.data import load_dataset
from pipeline.manifest import read_manifest
from pipeline.recipe import parse_recipe
from pipeline.runner import Runner
from pipeline.stage import RunOptions
from tests.pipeline.data_fixtures import image_folder, save_rgb_bundle

RECIPE = """
stages:
  - use: train-sparse
    with: {epochs: 1, lr: 0.05, batch-size: 4}
  - use: export
"""


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return image_folder(tmp_path_factory.mktemp("data") / "images", per_class=8)


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory, images):
    root = tmp_path_factory.mktemp("rgb")
    options = RunOptions(data=str(images), seed=0, target="host", progress=False, trusted_archs=(), workers=0)
    Runner(parse_recipe(RECIPE), run_dir=root / "run", options=options, log=lambda _: None).run({"model": save_rgb_bundle(root / "rgb.pt")})
    return root / "run"


def test_augmentation_is_on_for_rgb_image_folders_and_off_for_mnist_like_data(images):
    rgb = load_dataset(str(images), model_input_shape=(3, 16, 16))
    digits = load_dataset("digits", model_input_shape=(1, 8, 8))
    assert rgb.augmentation("auto").size == (16, 16) and rgb.augmentation("off") is None
    assert digits.augmentation("auto") is None and digits.augmentation("on") is not None


def test_augmented_batches_are_identical_with_zero_and_two_workers(images):
    batches = {}
    for workers in (0, 2):
        data = load_dataset(str(images), model_input_shape=(3, 16, 16), workers=workers)
        batches[workers] = list(data.train_batches(batch_size=4, seed=5, epoch=1, augment=data.augmentation("on")))
    plain = load_dataset(str(images), model_input_shape=(3, 16, 16))
    unaugmented = list(plain.train_batches(batch_size=4, seed=5, epoch=1))
    assert len(batches[0]) == len(batches[2]) == len(unaugmented) > 1
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches[0], batches[2]))
    assert all(torch.equal(a[1], c[1]) for a, c in zip(batches[0], unaugmented)) and not torch.equal(batches[0][0][0], unaugmented[0][0])


def test_resumed_epoch_replays_the_remaining_augmented_batches(images):
    data = load_dataset(str(images), model_input_shape=(3, 16, 16), workers=2)
    augment = data.augmentation("on")
    whole = list(data.train_batches(batch_size=4, seed=1, epoch=0, augment=augment))
    resumed = list(data.train_batches(batch_size=4, seed=1, epoch=0, augment=augment, start_step=2))
    assert len(resumed) == len(whole) - 2 and all(torch.equal(a[0], b[0]) for a, b in zip(resumed, whole[2:]))


def test_training_augmentation_is_recorded_in_the_stage_and_the_evaluation_transform_ships(rgb_run):
    import onnx

    from deploy.onnx import read_preprocess

    manifest = read_manifest(rgb_run)
    train, export = manifest["stages"]
    assert train["metrics"]["augmentation"]["random_resized_crop"]["size"] == [16, 16]
    assert train["metrics"]["augmentation"]["horizontal_flip"] == 0.5 and train["metrics"]["train_device"] == "cpu"
    bundle = torch.load(rgb_run / train["outputs"]["model"]["path"], map_location="cpu", weights_only=True)
    shipped = read_preprocess(onnx.load(str(rgb_run / export["outputs"]["onnx"]["path"])))
    for record in (manifest["preprocess"], bundle["preprocess"], shipped):
        assert record["resize_shorter"] == 18 and record["crop"] == [16, 16] and record["color"] == "RGB"
        assert "random" not in json.dumps(record) and "flip" not in json.dumps(record)
