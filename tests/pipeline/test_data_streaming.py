"""Lazy data: memory holds memory maps and file names, never the decoded data set."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from pipeline.data import load_dataset
from pipeline.data.samples import ImageSamples
from pipeline.errors import UserError
from tests.pipeline.data_fixtures import image_folder


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed], ids=["stored", "compressed"])
def test_npz_dataset_holds_memory_maps_when_stored_or_compressed(tmp_path, save):
    x = np.random.default_rng(0).integers(0, 255, (50, 1, 8, 8), dtype=np.uint8)
    save(tmp_path / "d.npz", x=x, y=np.arange(50) % 5)
    data = load_dataset(str(tmp_path / "d.npz"), model_input_shape=(1, 8, 8))
    assert isinstance(data.train.samples.array, np.memmap) and isinstance(data.test.samples.array, np.memmap)
    rows = data.train.samples.index
    assert np.allclose(data.train_x[:3].numpy(), x[rows[:3]] / 255.0, atol=1e-6)


def test_idx_dataset_is_memory_mapped_when_gzip_compressed():
    data = load_dataset("mnist", model_input_shape=(1, 28, 28), train_limit=100)
    assert isinstance(data.train.samples.array, np.memmap)
    assert len(data.train_y) == 100 and data.train_x[:2].shape == (2, 1, 28, 28)


def test_image_folder_dataset_holds_file_names_not_pixels(tmp_path):
    image_folder(tmp_path / "images", per_class=20)
    data = load_dataset(str(tmp_path / "images"), model_input_shape=(3, 16, 16))
    assert isinstance(data.train.samples, ImageSamples) and data.train.samples.paths.dtype.kind == "S"
    assert len(pickle.dumps(data.train)) < 200 * len(data.train)  # names and labels only: 16x16x3 floats would be 3 KB each


def test_train_limit_applies_before_any_image_is_decoded(tmp_path, monkeypatch):
    image_folder(tmp_path / "images", per_class=20)
    decoded = []
    original = ImageSamples.read
    monkeypatch.setattr(ImageSamples, "read", lambda self, index: decoded.append(index) or original(self, index))
    data = load_dataset(str(tmp_path / "images"), model_input_shape=(3, 16, 16), train_limit=5, test_limit=3)
    decoded.clear()
    batches = list(data.train_batches(batch_size=2, seed=0, epoch=0)) + list(data.test_batches())
    assert len(decoded) == 8 and sum(len(y) for _, y in batches) == 8


def test_imagenet_style_root_uses_val_as_the_test_split(tmp_path):
    image_folder(tmp_path / "root" / "train", per_class=4)
    image_folder(tmp_path / "root" / "val", per_class=2)
    data = load_dataset(str(tmp_path / "root"), model_input_shape=(3, 16, 16))
    assert (len(data.train_y), len(data.test_y)) == (8, 4)
    assert all(b"/val/" in path for path in data.test.samples.paths)


def test_images_of_any_size_and_mode_come_out_at_the_model_s_shape(tmp_path):
    image_folder(tmp_path / "gray", mode="L", per_class=6)
    data = load_dataset(str(tmp_path / "gray"), model_input_shape=(3, 16, 16), test_limit=2)
    record = data.preprocessing_record()
    assert data.test_x[:2].shape == (2, 3, 16, 16) and next(iter(data.test_batches()))[0].shape[1:] == (3, 16, 16)
    assert record["color"] == "RGB" and record["channels"] == 3 and record["crop"] == [16, 16] and record["resize_shorter"] == 18
    assert any("convert it to RGB" in step for step in record["steps"])


def test_unreadable_image_in_a_worker_is_a_one_line_error(tmp_path):
    image_folder(tmp_path / "images", per_class=3)
    (tmp_path / "images" / "dog" / "9-broken.png").write_bytes(b"\x89PNG broken")
    data = load_dataset(str(tmp_path / "images"), model_input_shape=(3, 16, 16), workers=1)
    with pytest.raises(UserError) as error:
        for split in (data.train_batches(batch_size=4, seed=0, epoch=0), data.test_batches()):
            list(split)
    assert "unreadable image" in str(error.value) and "9-broken.png" in str(error.value) and "\n" not in str(error.value)


def test_default_workers_never_exceed_the_cpus_the_process_may_use():
    import os

    from pipeline.data.dataset import default_workers

    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})  # as TVM's thread pool leaves the main thread
        assert default_workers(images=True) == 1
    finally:
        os.sched_setaffinity(0, allowed)
    assert default_workers(images=True) == min(2, len(allowed))
    assert default_workers(images=False) == 0
