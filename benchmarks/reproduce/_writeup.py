"""Shared by the reproduction scripts: put a results table into a hand-written write-up."""

from __future__ import annotations

import re
from pathlib import Path

from dlsched_gym.evaluate import atomic_write_text


def write_results(path: Path, text: str, tag: str = "") -> None:
    """Replace the block between ``<!-- RESULTS[ tag] -->`` and ``<!-- END -->`` in ``path`` with
    ``text`` (a new block at the end when the file has none), atomically; the rest of the file is
    left as written by hand."""
    head = f"<!-- RESULTS {tag} -->" if tag else "<!-- RESULTS -->"
    block = f"{head}\n{text}<!-- END -->"
    old = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(head) + r".*?<!-- END -->", re.S)
    if pattern.search(old):
        new = pattern.sub(lambda _: block, old)
    else:
        new = (old.rstrip("\n") + "\n\n" if old.strip() else "") + block + "\n"
    atomic_write_text(path, new)
