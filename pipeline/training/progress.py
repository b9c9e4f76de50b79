"""Progress bars (tqdm on stderr, with rate and ETA), silenced by ``--quiet``.

A bar redraws with carriage returns, which floods a log file (617 updates in 60 KB for one run): it
is shown only when stderr is a terminal; in a log the stages print one line per epoch instead.
"""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(*, total: int, desc: str, enabled: bool, unit: str = "batch") -> tqdm:
    return tqdm(total=total, desc=desc, unit=unit, disable=not (enabled and on_terminal()), file=sys.stderr,
                dynamic_ncols=True, leave=False)


def on_terminal() -> bool:
    """True when stderr is an interactive terminal (not a pipe, a file or a CI log)."""
    return sys.stderr.isatty()
