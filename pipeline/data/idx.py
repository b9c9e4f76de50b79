"""Reader for the IDX format of the MNIST files (LeCun), gzip-compressed or not.

Layout: magic (2 zero bytes, a dtype code, the number of dims), then one big-endian int32 per dim,
then the data in row-major order. ``open_idx`` maps the payload lazily (a ``.gz`` file is inflated
into an anonymous temporary file first); ``read_idx`` reads it all into memory.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

from pipeline.data.arrays import spill
from pipeline.errors import UserError

_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into a native-endian numpy array."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise UserError(f"cannot read IDX file {path}: {error}") from None
    return parse_idx(raw, source=str(path))


def open_idx(path: Path) -> np.ndarray:
    """The array of one IDX file, memory-mapped read-only (big-endian values; samples convert on read)."""
    path = Path(path)
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as stream:
            handle = spill(stream) if path.suffix == ".gz" else None
            source = handle or stream
            shape, dtype, header = _header(source.read(4), source, source=str(path))
            size = source.seek(0, 2)
            if size - header != math.prod(shape) * dtype.itemsize:
                raise UserError(f"{path}: IDX payload has {size - header} bytes, header says {math.prod(shape) * dtype.itemsize}")
            return np.memmap(handle if handle is not None else path, dtype=dtype, mode="r", offset=header, shape=shape)
    except (OSError, EOFError) as error:
        raise UserError(f"cannot read IDX file {path}: {error}") from None


def _header(magic: bytes, stream, *, source: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and header length of an IDX stream whose first 4 bytes are ``magic``."""
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES or magic[3] == 0:
        raise UserError(f"{source} is not an IDX file (bad magic number)")
    dims = stream.read(4 * magic[3])
    if len(dims) < 4 * magic[3]:
        raise UserError(f"{source}: truncated IDX header")
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(magic[3]))
    return shape, np.dtype(_DTYPES[magic[2]]), 4 + 4 * magic[3]


def parse_idx(raw: bytes, *, source: str = "<bytes>") -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise UserError(f"{source} is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise UserError(f"{source}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = math.prod(shape) * dtype.itemsize  # Python ints: a hostile header cannot overflow
    if len(raw) - header != expected:
        raise UserError(f"{source}: IDX payload has {len(raw) - header} bytes, header says {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))
