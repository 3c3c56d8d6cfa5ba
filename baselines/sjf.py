"""Shortest job first (oracle), non-preemptive.

Classic SJF as used as a baseline by Tiresias (Gu et al., "Tiresias: A GPU Cluster Manager for
Distributed Deep Learning", NSDI'19) and Lucid (Hu et al., ASPLOS'23). Queued jobs are ordered by
**predicted run time** (``key="duration"``, the default) or by predicted **GPU-time** = run time x
GPUs (``key="gpu_time"``); ties go to the earlier submission. Durations come from
``view.predict_duration``: run the engine with ``predictor="oracle"`` (its default) for the
classic oracle SJF; with another predictor this is SJF on estimates.

Strict head-of-line by default (stop at the first job that does not fit, as the Lucid and Helios
artifact simulators do for their non-preemptive policies); ``backfill=True`` skips it and tries
the next ones. Running jobs are never preempted.

Reconstruction notes: a job's key is computed once, when it arrives, and kept while it waits.
"""

from __future__ import annotations

from dlsched_gym.baselines._common import SortedJobs, check_bool, check_choice, fill
from dlsched_gym.baselines.registry import register


@register("sjf")
class Sjf:
    """Non-preemptive shortest job first.

    Args:
        key: ``"duration"`` (predicted run time) or ``"gpu_time"`` (predicted run time x GPUs).
        backfill: skip a job that does not fit instead of stopping at it.
    """

    name = "sjf"
    round_seconds = None

    def __init__(self, key: str = "duration", backfill: bool = False) -> None:
        check_choice("sjf", "key", key, ("duration", "gpu_time"))
        self.key = key
        self.backfill = check_bool("sjf", "backfill", backfill)

    def reset(self, spec, jobs, rng) -> None:
        """Start a simulation with an empty queue."""
        self._gpus = jobs.num_gpus.tolist()
        self._queue = SortedJobs()

    def schedule(self, view):
        """Start queued jobs in order of (predicted run time or GPU-time, submission)."""
        by_gpu_time = self.key == "gpu_time"
        for j in view.new_jobs:
            n = self._gpus[j]
            d = view.predict_duration(j)
            self._queue.add((d * n if by_gpu_time else d, j), n)
        return fill(view, self._queue, self.backfill)
