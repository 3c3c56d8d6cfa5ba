"""Fixtures of the hardening tests: a small trace, result-directory comparison, and running Python
code in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

#: The result files that must be bit-identical for the same cells (``timing/`` holds wall-clock
#: seconds and is excluded on purpose; see dlsched_gym.evaluate's module docstring).
DETERMINISTIC = ("cells", "jobs", "timeline")

#: Six jobs. On a 2x2 cluster SJF's order depends on the noisy predictor, so the seed matters.
SIX_JOBS = ("job_id,submit_time,duration,num_gpus\n"
            "a,0,100,2\nb,10,50,4\nc,20,30,1\nd,25,40,2\ne,30,10,1\nf,200,60,4\n")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def trace(tmp_path) -> str:
    """The path of a CSV file holding :data:`SIX_JOBS`."""
    path = tmp_path / "trace.csv"
    path.write_text(SIX_JOBS)
    return str(path)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {f"{sub}/{p.name}": p.read_bytes()
            for sub in DETERMINISTIC if (folder / sub).is_dir() for p in sorted((folder / sub).iterdir())
            if not p.name.startswith(".")}


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, bytes]]:
    """``snapshot(dir)``: ``{"cells/<key>.json": bytes, ...}`` of the deterministic result files
    (under their final names: hidden temporary files left by a killed writer are not results)."""
    return _snapshot


@pytest.fixture
def python() -> Callable[..., subprocess.CompletedProcess]:
    """``python(code, env=None, timeout=120)``: run ``code`` in a fresh interpreter (this venv's)
    from the repository root and return the completed process (output captured as text)."""

    def run(code: str, env: dict[str, str] | None = None, timeout: float = 120):
        return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})})

    return run
