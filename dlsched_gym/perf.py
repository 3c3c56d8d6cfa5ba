"""How fast a job progresses on a given allocation (the rate model).

Progress is measured in the job's work units: seconds of run time at its requested allocation of
the reference GPU type (the trace duration). A model answers
``rate(job, gpus, sharers) -> work units per second``; the engine asks again whenever a job's
allocation or its GPUs' sharing changes.

``duration`` (the default) reproduces the trace exactly: a job on its requested GPU count runs at
rate 1, so its run time equals its trace duration. On another GPU count (elastic jobs) it scales
linearly, ``len(gpus) / num_gpus``; co-location is not slowed down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

from dlsched_gym.errors import ConfigError

if TYPE_CHECKING:
    from dlsched_gym.cluster import ClusterSpec
    from dlsched_gym.engine import JobTable


class PerfModel(Protocol):
    """A rate model."""

    name: str

    def reset(self, spec: ClusterSpec, jobs: JobTable, rng: np.random.Generator) -> None:
        """Bind to a cluster and workload before a simulation."""

    def rate(self, job: int, gpus: np.ndarray, sharers: int) -> float:
        """Work units per second of ``job`` on ``gpus``; ``sharers`` is the largest number of
        jobs on any of those GPUs (1 = exclusive)."""


class DurationModel:
    """Trace durations reproduced exactly; linear scaling for other GPU counts."""

    name = "duration"

    def reset(self, spec, jobs, rng) -> None:
        self._req = jobs.num_gpus

    def rate(self, job, gpus, sharers):
        return len(gpus) / float(self._req[job])


#: Registry: name -> factory.
PERF_MODELS: dict[str, Callable[[], PerfModel]] = {"duration": DurationModel}


def make_perf(name: str | PerfModel) -> PerfModel:
    """A perf model by name (or pass one through)."""
    if not isinstance(name, str):
        return name
    try:
        return PERF_MODELS[name]()
    except KeyError:
        raise ConfigError(f"unknown perf model {name!r}; expected one of {sorted(PERF_MODELS)}") from None
