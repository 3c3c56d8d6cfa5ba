"""Shortest remaining time first (SRTF), preemptive, with oracle remaining times.

The preemptive form of SJF (Schrage, "A proof of the optimality of the shortest remaining
processing time discipline", Operations Research 1968), used as a DL-cluster baseline by
Tiresias (Gu et al., NSDI'19, the ``shortest`` policy of its simulator) and AFS (Hwang et al.,
NSDI'21).

At every decision point (arrivals and completions), all queued and running jobs are ordered by
predicted remaining run time (the duration ``view.predict_duration`` predicted when the job
arrived, times the fraction of its work left; run the engine with the default
``predictor="oracle"`` for true remaining times), ties to running jobs, then to the earlier
submission. GPUs are filled greedily in that order by GPU count
(a job that does not fit is skipped, the next ones may still fit); running jobs left outside are
preempted, and the selected queued jobs are placed with a :class:`~dlsched_gym.scheduler.Plan` on
the freed GPUs. A preemption is cancelled when no selected job needed the victim's GPUs (e.g. the
placement could not use them). Preemption costs the engine's ``restart_overhead`` (Lucid uses
40 s for jobs of <= 8 GPUs, 60 s above: ``dlsched_gym.engine.lucid_overhead``).

Reconstruction notes: a job's predicted duration is taken once, at its arrival (with the
``history`` predictor, from the jobs finished by then), so remaining time only decreases while a
job runs. A waiting job's remaining time is taken when it enters the queue (arrival or
preemption); for speed, a running job's remaining time is re-evaluated only while its last
computed value exceeds the best waiting job's, which is exact because it never grows.
"""

from __future__ import annotations

import heapq
import math

from dlsched_gym.baselines._common import PreemptiveByKey
from dlsched_gym.baselines.registry import register


@register("srtf")
class Srtf(PreemptiveByKey):
    """Preemptive shortest remaining (predicted) time first. No parameters."""

    name = "srtf"
    round_seconds = None

    def priority(self, view, job: int) -> float:
        """Predicted remaining run time (s): the duration predicted at arrival x the fraction of
        work left."""
        pred = self._pred[job]
        if pred != pred:
            pred = self._pred[job] = view.predict_duration(job)
        return pred * (1.0 - view.progress(job))

    def reset(self, spec, jobs, rng) -> None:
        """Start a simulation with an empty queue."""
        super().reset(spec, jobs, rng)
        self._pred = [math.nan] * jobs.n
        self._bounds: list[tuple[float, int, int]] = []
        self._token = [0] * jobs.n

    def started(self, view, job: int, key: float) -> None:
        """The remaining time at the start bounds it from above while the job runs."""
        self._token[job] += 1
        heapq.heappush(self._bounds, (-key, self._token[job], job))

    def contested(self, view, best: tuple) -> list[tuple]:
        """Running jobs with more remaining time than ``best``: only those whose upper bound
        (the remaining time last computed) exceeds it are evaluated."""
        b = best[0]
        bounds = self._bounds
        token = self._token
        size = self._size
        pred = self._pred
        progress = view.progress
        out = []
        keep = []
        while bounds and -bounds[0][0] > b:
            _, tok, j = heapq.heappop(bounds)
            if tok != token[j] or j not in size:
                continue
            rem = pred[j] * (1.0 - progress(j))
            if rem > b:
                out.append((rem, 0, j))
            keep.append((-rem, tok, j))
        for entry in keep:
            heapq.heappush(bounds, entry)
        out.sort()
        return out
