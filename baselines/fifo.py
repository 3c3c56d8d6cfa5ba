"""First-in first-out, strict and with backfill.

``fifo``: strict head-of-line order; the scheduler stops at the first queued job that does not fit
(as the Lucid and Helios artifact simulators do). ``fifo-backfill``: skips a job that does not fit
and tries the next ones. Non-preemptive. Inputs: arrival order and GPU counts only.
"""

from __future__ import annotations

from dlsched_gym.baselines.registry import register
from dlsched_gym.scheduler import Start


@register("fifo")
class Fifo:
    """Strict FIFO (``backfill=False``) or FIFO with backfilling (``backfill=True``)."""

    name = "fifo"
    round_seconds = None

    def __init__(self, backfill: bool = False) -> None:
        self.backfill = bool(backfill)
        if self.backfill:
            self.name = "fifo-backfill"

    def reset(self, spec, jobs, rng) -> None:
        self._jobs = jobs

    def schedule(self, view):
        if not view.queue or view.free_gpus == 0:
            return ()
        plan = view.plan()
        ops = []
        for j in view.queue:
            gpus = plan.place(j)
            if gpus is None:
                if not self.backfill:
                    break
                if plan.free_gpus == 0:
                    break
                continue
            ops.append(Start(j, gpus))
        return ops


@register("fifo-backfill")
class FifoBackfill(Fifo):
    """FIFO that backfills: a job that does not fit is skipped, later ones may start."""

    def __init__(self) -> None:
        super().__init__(backfill=True)
