"""Random access to raw samples: rows of a (memory-mapped) array, or image files decoded on read.

Both keep only compact numpy arrays (the mapped array, row indices, file names as one bytes array):
DataLoader workers are forked, and a Python list of path strings would be copied page by page into
every worker as reference counts touch it (pytorch/pytorch#13246); numpy buffers are not.
"""

from __future__ import annotations

import warnings
from typing import Protocol

import numpy as np

from pipeline.errors import UserError


class Samples(Protocol):
    def __len__(self) -> int: ...

    def read(self, index: int) -> np.ndarray:
        """Sample ``index`` as a C x H x W numpy array of raw values."""

    def subset(self, index: np.ndarray) -> "Samples": ...

    @property
    def channels(self) -> int: ...

    @property
    def spatial(self) -> tuple[int, int] | None:
        """H, W when every sample has it (arrays), else ``None`` (image files)."""


class ArraySamples:
    """Rows of an N x C x H x W array (typically a ``numpy.memmap``), optionally through a row index."""

    def __init__(self, array: np.ndarray, index: np.ndarray | None = None) -> None:
        self.array = array
        self.index = index

    def __len__(self) -> int:
        return len(self.index) if self.index is not None else len(self.array)

    def read(self, index: int) -> np.ndarray:
        row = int(self.index[index]) if self.index is not None else int(index)
        return np.asarray(self.array[row], dtype=self.array.dtype.newbyteorder("="))

    def subset(self, index: np.ndarray) -> "ArraySamples":
        rows = self.index[index] if self.index is not None else np.asarray(index, dtype=np.int64)
        return ArraySamples(self.array, rows)

    @property
    def channels(self) -> int:
        return int(self.array.shape[1])

    @property
    def spatial(self) -> tuple[int, int]:
        return int(self.array.shape[2]), int(self.array.shape[3])


class ImageSamples:
    """Image files decoded with Pillow on read and converted to ``color`` (``"L"``: 1 channel, ``"RGB"``: 3).

    A decompression bomb (more pixels than Pillow's limit) is refused before its pixels are decoded.
    """

    def __init__(self, paths: np.ndarray, *, color: str = "RGB") -> None:
        self.paths = paths
        self.color = color

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, index: int) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        path = self.paths[index].decode()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as image:
                    pixels = np.asarray(image.convert(self.color))
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise UserError(f"unreadable image {path}: {error}") from None
        return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)

    def subset(self, index: np.ndarray) -> "ImageSamples":
        return ImageSamples(self.paths[index], color=self.color)

    @property
    def channels(self) -> int:
        return 1 if self.color == "L" else 3

    @property
    def spatial(self) -> None:
        return None
