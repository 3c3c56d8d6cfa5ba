"""The registry of raw-format readers, and :func:`read` which picks one for a file.

Each format lives in its own module and contributes one :class:`~dlsched_gym.traces._base.Reader`;
:data:`READERS` maps format names to them.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from dlsched_gym.errors import ConfigError, TraceFormatError
from dlsched_gym.traces import (
    acme,
    alibaba,
    elasticflow,
    gavel,
    helios,
    normalized,
    pcs,
    philly_log,
    philly_pollux,
    pollux,
    synergy,
)
from dlsched_gym.traces._base import COMMON_OPTIONS, READ_ERRORS, Reader
from dlsched_gym.workload import Workload

#: Format name -> reader.
READERS: dict[str, Reader] = {
    r.name: r
    for r in (
        philly_log.READER,
        philly_pollux.READER,
        helios.READER,
        alibaba.READER,
        acme.READER,
        elasticflow.READER,
        pollux.READER,
        synergy.READER,
        gavel.READER,
        pcs.READER,
        normalized.READER,
    )
}


def _first_line(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", errors="replace") as fh:
            return fh.readline().strip()
    except READ_ERRORS as exc:
        raise TraceFormatError(f"{path}: cannot read: {exc}") from exc


def infer_format(path: Path) -> str:
    """Guess a file's format from its name, then from its CSV header line.

    Raises:
        ConfigError: when no format or more than one fits (pass ``format=`` then).
    """
    if path.is_dir():
        if (path / "pai_job_table.csv").is_file():
            return alibaba.FORMAT
        raise ConfigError(
            f"{path}: a folder, but not one holding pai_job_table.csv; pass format= "
            f"(one of {sorted(READERS)})"
        )
    by_name = [r.name for r in READERS.values() if any(path.name.endswith(s) for s in r.suffixes)]
    if len(by_name) == 1:
        return by_name[0]
    header = {c.strip() for c in _first_line(path).split(",")}
    by_header = [r.name for r in READERS.values() if r.header and set(r.header) <= header]
    if len(by_header) == 1:
        return by_header[0]
    raise ConfigError(
        f"{path}: cannot tell the trace format from the file name or header "
        f"({'candidates ' + str(by_header or by_name) if (by_header or by_name) else 'no match'}); "
        f"pass format= (one of {sorted(READERS)})"
    )


def read(path: str | Path, *, format: str | None = None, **options: Any) -> Workload:
    """Read a trace file with the reader for ``format`` (inferred when ``None``).

    Args:
        path: the file (or, for ``alibaba-pai-2020``, its folder).
        format: a key of :data:`READERS`.
        **options: ``lenient``, ``drop_invalid``, ``name`` and the reader's own options.

    Raises:
        ConfigError: unknown format or option (the message lists the valid ones).
        TraceFormatError: the file does not match the format (names file, row and field).
        WorkloadError: a row violates the normalized schema.
    """
    path = Path(path)
    if not path.exists():
        raise TraceFormatError(f"{path}: no such file")
    name = format or infer_format(path)
    if name not in READERS:
        raise ConfigError(f"unknown trace format {name!r}; expected one of {sorted(READERS)}")
    reader = READERS[name]
    valid = COMMON_OPTIONS + reader.options
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"format {name!r}: unknown option(s) {unknown}; valid options: {list(valid)}")
    return reader.read(path, **options)
