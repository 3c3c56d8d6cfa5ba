"""Earliest deadline first (EDF), non-preemptive, with optional admission control.

The classic real-time rule (Liu and Layland, JACM 1973), as the deadline baseline of ElasticFlow
(Gu et al., "ElasticFlow: An Elastic Serverless Training Platform for Distributed Deep
Learning", ASPLOS'23), whose artifact also has the admission-controlled variant ``EDF+AC``.

Queued jobs are ordered by absolute deadline (``jobs.deadline``); jobs without one (NaN) come
after all jobs with a deadline, in submission order. Rigid jobs start in that order wherever they
fit: a job that does not fit is skipped and later ones may start (``backfill=True``, the default,
"start the job if it fits"); ``backfill=False`` stops at the first job that does not fit. Running
jobs are never preempted.

``admission_control=True``: when a job with a deadline arrives, the scheduler replays the
schedule in EDF order with predicted durations (``view.predict_duration``; run the engine with
the oracle predictor for exact durations) and rejects the job if it would finish after its
deadline. The replay counts GPUs (no placement): running jobs free their GPUs after their
predicted remaining time, and the queued jobs ahead of the new one in EDF order start one after
another, each as soon as enough GPUs are free; the jobs behind it cannot delay it. Only the new
job's own deadline is checked (the admitted jobs' deadlines are not re-checked), as in the
specification "reject a new job if, replayed in EDF order with the others, it cannot meet its
deadline". The replay is a reconstruction; ElasticFlow's own admission control plans elastic
allocations instead.
"""

from __future__ import annotations

import heapq
import math

from dlsched_gym.baselines._common import SortedJobs, check_bool, fill
from dlsched_gym.baselines.registry import register
from dlsched_gym.scheduler import Reject


@register("edf")
class Edf:
    """Non-preemptive earliest deadline first, optionally with admission control.

    Args:
        admission_control: reject an arriving job that the EDF replay says will miss its
            deadline.
        backfill: skip a job that does not fit (default) instead of stopping at it.
    """

    name = "edf"
    round_seconds = None

    def __init__(self, admission_control: bool = False, backfill: bool = True) -> None:
        self.admission_control = check_bool("edf", "admission_control", admission_control)
        self.backfill = check_bool("edf", "backfill", backfill)
        if self.admission_control:
            self.name = "edf-ac"

    def reset(self, spec, jobs, rng) -> None:
        """Start a simulation with an empty queue."""
        self._gpus = jobs.num_gpus.tolist()
        self._deadline = [d if d == d else math.inf for d in jobs.deadline.tolist()]
        self._total = spec.num_gpus
        self._queue = SortedJobs()

    def schedule(self, view):
        """Admit (or reject) new jobs, then start queued jobs in deadline order."""
        ops: list = []
        for j in view.new_jobs:
            n = self._gpus[j]
            item = (self._deadline[j], j)
            if self.admission_control and item[0] < math.inf and \
                    self._replay_finish(view, item, n) > item[0]:
                ops.append(Reject(j))
                continue
            self._queue.add(item, n)
        ops.extend(fill(view, self._queue, self.backfill))
        return ops

    def _replay_finish(self, view, item: tuple, n: int) -> float:
        """Predicted finish time of the new job ``item`` when the queue runs in EDF order."""
        gpus = self._gpus
        t = view.now
        free = self._total
        releases: list[tuple[float, int]] = []
        for r in view.running:
            g = len(view.allocation(r))
            free -= g
            releases.append((t + view.predict_remaining(r), g))
        heapq.heapify(releases)
        for other in self._queue.items:
            if other > item:
                break
            k = other[-1]
            while free < gpus[k] and releases:
                when, g = heapq.heappop(releases)
                free += g
                t = max(t, when)
            if free < gpus[k]:  # larger than the cluster: never starts
                continue
            free -= gpus[k]
            heapq.heappush(releases, (t + view.predict_duration(k), gpus[k]))
        while free < n:
            if not releases:
                return math.inf
            when, g = heapq.heappop(releases)
            free += g
            t = max(t, when)
        return t + view.predict_duration(item[-1])
