"""The product speaks of itself: code, docs, README and benchmarks cite papers and public sources, never
the project's own work log (sessions, issue numbers) or documents outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# written in pieces so this file does not match itself
FORBIDDEN = re.compile("|".join([
    r"\bsession" + r"s? \d",
    r"\bissue" + r"s? #?\d",
    "shared" + "/docs",
    "algorithms" + r"(\.md| spec)",
    r"\bspec" + " §",
]), re.IGNORECASE)


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.split()
    return [REPO / name for name in listed if name.endswith((".py", ".md", ".yaml", ".toml", ".sh"))]


def test_product_text_names_no_session_issue_or_outside_document():
    hits = []
    for path in _tracked_text_files():
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if FORBIDDEN.search(line):
                hits.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:100]}")
    assert not hits, "\n".join(hits)
