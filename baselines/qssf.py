"""Quasi-shortest-service-first (QSSF), non-preemptive.

Hu et al., "Characterization and Prediction of Deep Learning Workloads in Large-Scale GPU
Datacenters" (Helios), SC'21. Queued jobs are ordered by **predicted GPU-time** = predicted
duration x requested GPUs, smallest first; ties go to the earlier submission.

The prediction is the engine's predictor (``view.predict_duration``). QSSF is meant to run with
``Engine(..., predictor="history")``: the mean duration of *finished* jobs of the same user and
GPU count, else of the same user, else of all finished jobs (Helios's estimator without its fuzzy
job-name match, which the public traces cannot support). With the oracle predictor this becomes
SJF by GPU-time.

Follows the paper: order by predicted GPU-time, no preemption. Reconstructions: a job's estimate
is taken once, at its arrival, from the jobs finished by then (as a production scheduler would
estimate at submission), and kept while it waits; strict head-of-line by default (the Helios
simulator's FIFO convention), ``backfill=True`` skips a job that does not fit.
"""

from __future__ import annotations

from dlsched_gym.baselines._common import SortedJobs, check_bool, fill
from dlsched_gym.baselines.registry import register


@register("qssf")
class Qssf:
    """Non-preemptive ordering by predicted GPU-time (Helios QSSF).

    Args:
        backfill: skip a job that does not fit instead of stopping at it.
    """

    name = "qssf"
    round_seconds = None
    #: the predictor the paper assumes; experiments with predictor "auto" use it
    predictor = "history"

    def __init__(self, backfill: bool = False) -> None:
        self.backfill = check_bool("qssf", "backfill", backfill)

    def reset(self, spec, jobs, rng) -> None:
        """Start a simulation with an empty queue."""
        self._gpus = jobs.num_gpus.tolist()
        self._queue = SortedJobs()

    def schedule(self, view):
        """Estimate new jobs' GPU-time, then start queued jobs in order of it."""
        for j in view.new_jobs:
            n = self._gpus[j]
            self._queue.add((view.predict_duration(j) * n, j), n)
        return fill(view, self._queue, self.backfill)
