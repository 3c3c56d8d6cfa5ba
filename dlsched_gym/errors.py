"""The project's error types.

Every error a user can provoke with bad input is one of these, so callers (and the CLI, which maps
them to exit codes) can tell bad data from bad configuration from a scheduler bug.
"""

from __future__ import annotations


class DLSchedError(Exception):
    """Base class of every error raised on purpose by dlsched-gym."""


class WorkloadError(DLSchedError, ValueError):
    """A workload table violates the normalized schema (names the row and column)."""


class TraceFormatError(DLSchedError, ValueError):
    """A trace file is not in the format its reader expects (names the file, row and field)."""


class ClusterSpecError(DLSchedError, ValueError):
    """A cluster specification is malformed or names an unknown preset."""


class ConfigError(DLSchedError, ValueError):
    """An unknown name or a bad parameter value (scheduler, preset, option, CLI argument)."""


class SchedulerError(DLSchedError, RuntimeError):
    """A scheduler returned an op the engine cannot apply (names the job, the op and the reason)."""


class DownloadError(DLSchedError, OSError):
    """A trace download failed or its checksum did not match."""
