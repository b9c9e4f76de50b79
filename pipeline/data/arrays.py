"""Memory-mapped arrays: ``.npz`` members and decompressed streams, read page by page by the OS.

``numpy.load(path, mmap_mode="r")`` ignores ``mmap_mode`` for ``.npz`` archives and reads every
member into memory, so the members are mapped here by hand: an uncompressed (``np.savez``) member is
a ``.npy`` file stored verbatim inside the zip, mapped in place at its offset; a compressed one
(``np.savez_compressed``) and a ``.gz`` stream are first inflated, in chunks, into an anonymous
temporary file (unlinked at once, so nothing is left behind), which is then mapped.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from pipeline.errors import UserError

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zip local file header (APPNOTE 4.3.7), 30 bytes
_CHUNK = 1 << 22


def npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, memory-mapped read-only (object arrays are refused)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if info.filename.endswith(".npy")]
            return {info.filename[:-4]: _member(path, archive, info) for info in members}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, struct.error) as error:
        raise UserError(f"cannot read {path}: {error}") from None


def _member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    if info.compress_type == zipfile.ZIP_STORED:
        with open(path, "rb") as handle:
            handle.seek(info.header_offset)
            fields = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
            if fields[0] != b"PK\x03\x04":
                raise ValueError(f"bad zip local header for {info.filename}")
            handle.seek(info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1])
            return _map_npy(handle, path)
    with archive.open(info) as stream:
        return _map_npy(spill(stream), None)


def _map_npy(handle: IO[bytes], path: Path | None) -> np.ndarray:
    """Map the ``.npy`` array that starts at ``handle``'s position (``path``: the file to map, else the handle's)."""
    version = np.lib.format.read_magic(handle)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = reader(handle)
    if dtype.hasobject:
        raise ValueError("object arrays are not loaded (they would need pickle)")
    offset = handle.tell()
    if not shape or 0 in shape:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path if path is not None else handle, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order="F" if fortran else "C")


def spill(stream: IO[bytes]) -> IO[bytes]:
    """Copy ``stream`` in chunks into an anonymous temporary file (positioned at 0) for mapping."""
    handle = tempfile.TemporaryFile()
    shutil.copyfileobj(stream, handle, _CHUNK)
    handle.flush()
    handle.seek(0)
    return handle


def scan_finite(array: np.ndarray, *, rows: int = 1024) -> bool:
    """True when a float array holds no NaN / Inf (read in chunks of ``rows`` samples: memory stays flat)."""
    if not np.issubdtype(array.dtype, np.floating):
        return True
    return all(bool(np.isfinite(array[start : start + rows]).all()) for start in range(0, len(array), rows))


def value_range(array: np.ndarray, *, rows: int = 1024) -> tuple[float, float]:
    """``(min, max)`` of an array read in chunks (``(0, 0)`` when empty)."""
    if not array.size:
        return 0.0, 0.0
    lows, highs = zip(*((float(part.min()), float(part.max())) for part in (array[s : s + rows] for s in range(0, len(array), rows))))
    return min(lows), max(highs)
