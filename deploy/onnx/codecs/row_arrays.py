"""``RowCompressedArrays``: the ``values`` / ``col_indices`` / ``row_ptrs`` triple shared by CSR and BSR."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RowCompressedArrays:
    """Row-compressed arrays of one weight (``CsrArrays`` and ``BsrArrays`` say what a row and an entry are).

    Attributes:
        values: stored entries.
        col_indices: column of each stored entry.
        row_ptrs: ``row_ptrs[i]:row_ptrs[i+1]`` are the entries of row ``i``.
        shape: the weight's shape.
    """

    values: np.ndarray
    col_indices: np.ndarray
    row_ptrs: np.ndarray
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        """Bytes of the stored arrays."""
        return self.values.nbytes + self.col_indices.nbytes + self.row_ptrs.nbytes
