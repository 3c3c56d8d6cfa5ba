"""The trace library: named traces, raw-format readers, a generator, downloads and summaries.

Public API:

- :func:`load` a catalogue name (``"philly"``, ``"elasticflow"``, ...) or a trace file;
- :func:`catalogue` / :func:`info`: what is bundled (:class:`TraceInfo`);
- :func:`describe` / :func:`plot`: summary statistics and a summary PNG;
- :func:`download`: fetch the large public logs that are not bundled;
- :func:`generate` / :func:`fit`: synthetic workloads, optionally fitted to a trace;
- :data:`READERS`: the raw-format readers by name.

Bundled files, their sources and licenses are listed in ``traces/README.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlsched_gym.traces.fetch import REMOTES, download
from dlsched_gym.traces.generator import fit, generate
from dlsched_gym.traces.library import TraceInfo, catalogue, info, load_any
from dlsched_gym.traces.readers import READERS
from dlsched_gym.traces.summary import describe, plot
from dlsched_gym.workload import Workload

__all__ = [
    "READERS",
    "REMOTES",
    "TraceInfo",
    "catalogue",
    "describe",
    "download",
    "fit",
    "generate",
    "info",
    "load",
    "plot",
]


def load(name_or_path: str | Path, *, format: str | None = None, **options: Any) -> Workload:
    """Load a workload: a catalogue name, or a trace file.

    Args:
        name_or_path: a name from :func:`catalogue` (e.g. ``"philly"``, ``"philly-vc/6214e9"``), or the
            path of a trace file.
        format: for a path, the reader (a key of :data:`READERS`); inferred from the file name or CSV
            header when omitted. Not allowed with a catalogue name.
        **options: a catalogue trace's options (see ``info(name).options``, e.g. ``vc=``, ``seed=``,
            ``cluster=``, ``workload=``), or a reader's options (``lenient=``, ...). Both accept
            ``drop_invalid=`` (passed to :func:`~dlsched_gym.workload.normalize`).

    Raises:
        ConfigError: unknown name, format or option (the message lists the valid ones).
        TraceFormatError: a file that does not match its format (names file, row and field).
        WorkloadError: a row that violates the normalized schema.
    """
    return load_any(name_or_path, format=format, **options)
