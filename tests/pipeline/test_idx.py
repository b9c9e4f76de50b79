import gzip

import numpy as np
import pytest

from pipeline.data.idx import parse_idx, read_idx
from pipeline.errors import UserError


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_read_idx_round_trips_gzip_and_raw(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a-idx3-ubyte").write_bytes(_idx_bytes(array))
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(array)))
    assert np.array_equal(read_idx(tmp_path / "a-idx3-ubyte"), array)
    assert np.array_equal(read_idx(tmp_path / "a-idx3-ubyte.gz"), array)


def test_parse_idx_rejects_bad_magic():
    with pytest.raises(UserError, match="bad magic"):
        parse_idx(b"\x01\x02\x03\x04rest")


def test_parse_idx_rejects_truncated_payload():
    data = _idx_bytes(np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(UserError, match="payload"):
        parse_idx(data[:-1])


def test_read_idx_rejects_corrupt_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(UserError, match="cannot read IDX"):
        read_idx(path)
