import numpy as np
import pytest
from PIL import Image

from pipeline.data import Preprocess, load_dataset
from pipeline.data.sources import load_source
from pipeline.errors import UserError


def test_load_source_mnist_reads_the_full_real_data():
    raw = load_source("mnist")
    assert raw.train.samples.array.shape == (60000, 1, 28, 28) and raw.test.samples.array.shape == (10000, 1, 28, 28)
    assert set(np.unique(raw.test.labels)) == set(range(10))


def test_load_dataset_digits_resizes_to_model_and_scales_to_unit_range():
    data = load_dataset("digits", model_input_shape=(1, 28, 28))
    assert data.input_shape == (1, 28, 28)
    assert data.preprocess.resize == (28, 28)
    assert 0.0 <= float(data.train_x[:200].min()) and float(data.train_x[:200].max()) <= 1.0
    assert data.num_classes == 10


def test_load_dataset_applies_mean_and_std():
    plain = load_dataset("digits", preprocess=Preprocess(scale=1 / 16), test_limit=50)
    normed = load_dataset("digits", preprocess=Preprocess(scale=1 / 16, mean=(0.5,), std=(0.25,)), test_limit=50)
    assert np.allclose(normed.test_x[:50].numpy(), (plain.test_x[:50].numpy() - 0.5) / 0.25, atol=1e-6)


def test_train_batches_depend_only_on_seed_and_epoch():
    data = load_dataset("digits", train_limit=200)
    first = [y.tolist() for _, y in data.train_batches(batch_size=32, seed=3, epoch=1)]
    again = [y.tolist() for _, y in data.train_batches(batch_size=32, seed=3, epoch=1)]
    other = [y.tolist() for _, y in data.train_batches(batch_size=32, seed=3, epoch=2)]
    assert first == again and first != other


def test_load_source_npz_with_x_and_y_splits(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.random.default_rng(0).integers(0, 255, (40, 3, 32, 32), dtype=np.uint8), y=np.arange(40) % 4)
    raw = load_source(str(path))
    assert raw.train.samples.read(0).shape == (3, 32, 32) and len(raw.train) + len(raw.test) == 40


def test_load_source_npz_without_arrays_names_expected_keys(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, images=np.zeros((3, 4, 4)))
    with pytest.raises(UserError, match="must hold arrays x and y"):
        load_source(str(path))


def test_load_source_npz_mislabelled_counts_fail(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((4, 1, 4, 4)), y_train=np.zeros(3, dtype=int), x_test=np.zeros((2, 1, 4, 4)), y_test=np.zeros(2, dtype=int))
    with pytest.raises(UserError, match="4 inputs but 3 labels"):
        load_source(str(path))


def _image_folder(root, *, per_class=5):
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for index in range(per_class):
            pixels = np.full((12, 12, 3), 20 * index + (100 if label == "dog" else 0), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{index}.png")


def test_load_source_image_folder_reads_classes(tmp_path):
    _image_folder(tmp_path)
    raw = load_source(str(tmp_path))
    assert raw.train.samples.read(0).shape == (3, 12, 12)
    assert sorted(set(raw.train.labels.tolist()) | set(raw.test.labels.tolist())) == [0, 1]


def test_load_source_image_folder_with_unreadable_image_names_file(tmp_path):
    _image_folder(tmp_path)
    (tmp_path / "dog" / "broken.png").write_bytes(b"not an image")
    raw = load_source(str(tmp_path))
    split = next(part for part in (raw.train, raw.test) if any(p.endswith(b"broken.png") for p in part.samples.paths))
    index = [p.endswith(b"broken.png") for p in split.samples.paths].index(True)
    with pytest.raises(UserError, match="unreadable image .*broken.png"):
        split.samples.read(index)


def test_load_source_unknown_spec_lists_allowed():
    with pytest.raises(UserError, match="allowed: mnist, digits"):
        load_source("cifar-100")


def test_load_dataset_channel_mismatch_is_clear():
    with pytest.raises(UserError, match="1 channel.*expects 3"):
        load_dataset("digits", model_input_shape=(3, 8, 8))


def test_mean_and_std_without_scale_use_the_source_s_unit_scale(tmp_path):
    """An integer image set with --mean/--std and no --scale is scaled to [0, 1] first (an
    IDX folder fed inputs up to 721 into training); float data keeps scale 1."""
    import numpy as np

    from pipeline.cli.options import build_run_options

    pixels = np.random.default_rng(0).integers(0, 256, size=(40, 1, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "ints.npz", x=pixels, y=np.arange(40) % 10)
    np.savez(tmp_path / "floats.npz", x=pixels.astype(np.float32) / 255, y=np.arange(40) % 10)
    kwargs = dict(data=str(tmp_path / "ints.npz"), scale=None, mean="0.5", std="0.25", resize=None, seed=0,
                  train_limit=0, test_limit=0, trust_pickle=False, threads=0, arch=None)
    options = build_run_options(kwargs, target="host")
    assert "scale" not in options.preprocess
    for name in ("ints.npz", "floats.npz"):
        data = load_dataset(str(tmp_path / name), preprocess=Preprocess(scale=None, mean=(0.5,), std=(0.25,)))
        assert data.preprocess.scale == (1 / 255 if name == "ints.npz" else 1.0)
        assert float(data.train_x[:32].max()) <= 2.0 + 1e-6 and float(data.train_x[:32].min()) >= -2.0 - 1e-6
