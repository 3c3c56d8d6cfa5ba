"""Least attained service (LAS), preemptive, in GPU-seconds.

Least-attained-service scheduling (Rai, Urvoy-Keller and Biersack, "Analysis of LAS scheduling
for job size distributions with high variance", SIGMETRICS'03), in the two-dimensional form of
Tiresias (Gu et al., NSDI'19): a job's attained service is GPUs x executed time
(``view.attained_service``), so it needs no duration estimate.

At every decision point (arrivals, completions, and a round every ``round_seconds``, 60 s by
default, so priorities are re-evaluated while jobs run), all queued and running jobs are ordered
by attained service, smallest first, ties to running jobs, then to the earlier submission. GPUs
are filled greedily in that order by GPU count (a job that does not fit is skipped); running jobs
left outside are preempted and the selected queued jobs placed with a
:class:`~dlsched_gym.scheduler.Plan`. A preemption is cancelled when no selected job needed the
victim's GPUs. Preemption costs the engine's ``restart_overhead``.

This is continuous LAS (no queues, no thresholds); Tiresias's discretized version is
``tiresias``. Executed time includes the restart overhead (the job holds its GPUs meanwhile).
"""

from __future__ import annotations

from dlsched_gym.baselines._common import PreemptiveByKey, check_positive
from dlsched_gym.baselines.registry import register


@register("las")
class Las(PreemptiveByKey):
    """Preemptive least attained GPU-service first.

    Args:
        round_seconds: period (s) of the extra decision points that re-evaluate priorities.
    """

    name = "las"

    def __init__(self, round_seconds: float = 60.0) -> None:
        self.round_seconds = check_positive("las", "round_seconds", round_seconds)

    def priority(self, view, job: int) -> float:
        """Attained service (GPU-seconds)."""
        return view.attained_service(job)

    def reset(self, spec, jobs, rng) -> None:
        """Start a simulation with an empty queue."""
        super().reset(spec, jobs, rng)
        self._service0 = [0.0] * jobs.n
        self._since = [0.0] * jobs.n

    def started(self, view, job: int, key: float) -> None:
        """Remember the service at the start: it then grows by the job's GPUs per second."""
        self._service0[job] = key
        self._since[job] = view.now

    def contested(self, view, best: tuple) -> list[tuple]:
        """Running jobs with more service than ``best``, computed without engine calls."""
        now = view.now
        b = best[0]
        service0 = self._service0
        since = self._since
        out = []
        for j, g in self._size.items():
            s = service0[j] + (now - since[j]) * g
            if s > b:
                out.append((s, 0, j))
        out.sort()
        return out
