"""Progress bars (tqdm on stderr, with rate and ETA), silenced by ``--quiet``."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(*, total: int, desc: str, enabled: bool, unit: str = "batch") -> tqdm:
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr, dynamic_ncols=True, leave=False)
