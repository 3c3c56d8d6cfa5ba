"""Shared machinery of the ordered baselines: a sorted job queue and two fill procedures.

- :class:`SortedJobs`: queued jobs kept sorted by a key tuple whose last element is the job id,
  with O(log n) search and a count of GPU requests (so a scan can stop as soon as nothing can
  fit). Schedulers keep it up to date from ``view.new_jobs`` and their own ops, so no decision
  re-sorts the queue.
- :func:`fill`: non-preemptive; start queued jobs in key order, strict head-of-line or with
  backfill.
- :func:`preemptive_fill`: greedy fill over running and queued jobs in one priority order, as the
  Tiresias simulator does: walk jobs by priority, keep a GPU-count quota, select each job whose
  request fits the quota; running jobs that are not selected are preempted.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from itertools import accumulate

import numpy as np

from dlsched_gym.errors import ConfigError
from dlsched_gym.scheduler import Preempt, Start


def check_choice(scheduler: str, param: str, value, choices) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"scheduler {scheduler!r}: parameter {param!r} must be one of "
                          f"{list(choices)}, got {value!r}")


def check_bool(scheduler: str, param: str, value) -> bool:
    """``value`` as a bool; raise :class:`ConfigError` unless it is True or False."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ConfigError(f"scheduler {scheduler!r}: parameter {param!r} must be True or False, "
                      f"got {value!r}")


def check_positive(scheduler: str, param: str, value, *, allow_zero: bool = False) -> float:
    """``value`` as a float; raise :class:`ConfigError` unless it is finite and > 0 (>= 0)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    ok = v >= 0 if allow_zero else v > 0
    if not (ok and v < float("inf")):
        want = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"scheduler {scheduler!r}: parameter {param!r} must be a finite number "
                          f"{want}, got {value!r}")
    return v


class SortedJobs:
    """Jobs sorted by key tuples ``(..., job)``; also counts the jobs' GPU requests.

    Iterate ``items`` for the jobs in order (do not mutate it while iterating).
    """

    __slots__ = ("items", "requested", "_item", "_sizes")

    def __init__(self) -> None:
        self.items: list[tuple] = []
        #: total GPUs requested by the jobs
        self.requested = 0
        self._item: dict[int, tuple[tuple, int]] = {}
        self._sizes: dict[int, int] = {}

    def add(self, item: tuple, gpus: int) -> None:
        """Insert ``item`` (its last element is the job id) that requests ``gpus`` GPUs."""
        insort(self.items, item)
        self._item[item[-1]] = (item, gpus)
        self._sizes[gpus] = self._sizes.get(gpus, 0) + 1
        self.requested += gpus

    def remove(self, job: int) -> None:
        """Remove ``job``."""
        item, gpus = self._item.pop(job)
        del self.items[bisect_left(self.items, item)]
        self.requested -= gpus
        left = self._sizes[gpus] - 1
        if left:
            self._sizes[gpus] = left
        else:
            del self._sizes[gpus]

    def key(self, job: int) -> tuple:
        """The key tuple of ``job``."""
        return self._item[job][0]

    def request(self, job: int) -> int:
        """GPUs requested by ``job``."""
        return self._item[job][1]

    def smallest_request(self) -> int:
        """The smallest GPU request among the jobs (a huge number when empty)."""
        return min(self._sizes) if self._sizes else 1 << 62


def fill(view, queue: SortedJobs, backfill: bool) -> list:
    """Start queued jobs in ``queue`` order on free GPUs (planned with ``view.plan()``).

    Strict (``backfill=False``): stop at the first job that does not fit. With backfill: skip it
    and try the next ones. Started jobs are removed from ``queue``. Returns the ``Start`` ops.
    """
    if not queue.items or view.free_gpus == 0:
        return []
    smallest = queue.smallest_request()
    plan = view.plan()
    ops = []
    for item in queue.items:
        if plan.free_gpus < smallest:
            break
        j = item[-1]
        gpus = plan.place(j)
        if gpus is None:
            if backfill:
                continue
            break
        ops.append(Start(j, gpus))
    for op in ops:
        queue.remove(op.job)
    return ops


def preemptive_fill(view, queued: SortedJobs, contested: list[tuple], quota: int,
                    size: dict[int, int]) -> tuple[list[int], list[tuple[int, object]]]:
    """Greedy priority fill over queued jobs and the running jobs that may lose their GPUs.

    Args:
        view: the cluster view.
        queued: queued jobs in priority order (smaller key first).
        contested: running jobs whose key is larger than the best queued key, as key tuples
            comparable with ``queued``'s, sorted. Running jobs with smaller keys always keep their
            GPUs (they come first in the order and running jobs never exceed the cluster).
        quota: the GPUs not held by those safe running jobs.
        size: GPUs held by each contested job.

    Pass 1 (GPU counts, as the Tiresias simulator): walk the merged order; a job is selected when
    its GPU count fits the quota left; contested jobs not selected are victims. Runs of contested
    jobs between two queued ones are taken whole through prefix sums when they fit. Pass 2
    (placement): with the victims' GPUs released in a :class:`~dlsched_gym.scheduler.Plan`, walk
    the queued jobs and the victims in order; a queued job starts where the placement finds GPUs,
    and a victim whose GPUs nobody took keeps running (no preemption is wasted on a job that
    cannot start).

    Returns ``(preempted jobs, [(started job, gpus), ...])``; ``queued`` is not modified.
    """
    items = queued.items
    smallest = queued.smallest_request()
    victims: list[tuple] = []
    nc = len(contested)
    if nc:
        prefix = list(accumulate([size[c[-1]] for c in contested], initial=0))
        left = quota
        ci = 0

        def take(ci: int, cj: int, left: int) -> int:
            """Select contested[ci:cj] in order; the ones that do not fit become victims."""
            if prefix[cj] - prefix[ci] <= left:
                return left - (prefix[cj] - prefix[ci])
            k = bisect_right(prefix, prefix[ci] + left, ci, cj + 1) - 1
            left -= prefix[k] - prefix[ci]
            for c in contested[k:cj]:
                n = size[c[-1]]
                if n <= left:
                    left -= n
                else:
                    victims.append(c)
            return left

        for item in items:
            if left < smallest:
                break
            cj = bisect_left(contested, item, ci)
            if cj > ci:
                left = take(ci, cj, left)
                ci = cj
            if ci == nc:
                break
            n = queued.request(item[-1])
            if n <= left:
                left -= n
        if ci < nc:
            take(ci, nc, left)
    plan = view.plan()
    allocation = view.allocation
    for v in victims:
        plan.release(allocation(v[-1]))
    started: list[tuple[int, object]] = []
    preempted: list[int] = []
    nv = len(victims)
    vi = 0

    def settle(v: tuple) -> None:
        gpus = allocation(v[-1])
        if (plan.gpu_load[gpus] == 0).all():
            plan.reserve(gpus)
        else:
            preempted.append(v[-1])

    for item in items:
        while vi < nv and victims[vi] < item:
            settle(victims[vi])
            vi += 1
        if plan.free_gpus < smallest:
            break
        j = item[-1]
        if queued.request(j) <= plan.free_gpus:
            gpus = plan.place(j)
            if gpus is not None:
                started.append((j, gpus))
    for v in victims[vi:]:
        settle(v)
    return preempted, started


class PreemptiveByKey:
    """Base of preemptive schedulers whose priority is a number recomputed at each decision.

    Subclasses define :meth:`priority` (smaller runs first), :meth:`contested` (the running jobs
    that the best queued job outranks, found without scanning all of them where possible) and
    optionally :meth:`started` (bookkeeping for ``contested``). At each decision
    point with jobs waiting, :func:`preemptive_fill` decides; queued jobs keep the priority they
    had when they entered the queue (valid when a waiting job's priority cannot change, as for
    remaining time with a fixed predictor or attained service). Ties go to running jobs (no
    preemption among equals), then to the lower job index (earlier submission).
    """

    name = ""
    round_seconds: float | None = None

    def priority(self, view, job: int) -> float:
        """The job's current priority (smaller runs first)."""
        raise NotImplementedError

    def reset(self, spec, jobs, rng) -> None:
        """Start a simulation with an empty queue."""
        self._gpus = jobs.num_gpus.tolist()
        self._total = spec.num_gpus
        self._queue = SortedJobs()
        #: GPUs held by each running job, and in all
        self._size: dict[int, int] = {}
        self._held = 0

    def started(self, view, job: int, key: float) -> None:
        """Bookkeeping hook: ``job`` starts now; ``key`` was its queued priority."""

    def sync(self, view) -> None:
        """Rebuild the bookkeeping from the view: the queued and running jobs as they are now
        (for drivers that may not apply every op, e.g. the env's SchedulerPolicy); the next
        :meth:`schedule` must then see no ``new_jobs`` or ``finished``."""
        self._queue = SortedJobs()
        for j in view.queue:
            self._queue.add((self.priority(view, j), 1, j), self._gpus[j])
        self._size = {j: len(view.allocation(j)) for j in view.running}
        self._held = sum(self._size.values())
        for j in self._size:
            self.started(view, j, self.priority(view, j))

    def contested(self, view, best: tuple) -> list[tuple]:
        """Sorted ``(priority, 0, job)`` of the running jobs that rank after ``best``."""
        raise NotImplementedError

    def schedule(self, view):
        """Preempt and start so that the highest-priority jobs that fit run."""
        queue = self._queue
        gpus = self._gpus
        size = self._size
        for j in view.finished:
            self._held -= size.pop(j)
        for j in view.new_jobs:
            queue.add((self.priority(view, j), 1, j), gpus[j])
        if not queue.items:
            return ()
        if queue.requested <= view.free_gpus:  # everything waiting fits: nobody is preempted
            contested = []
        else:
            contested = self.contested(view, queue.items[0])
            if not contested and view.free_gpus == 0:
                return ()
        quota = self._total - self._held + sum([size[c[-1]] for c in contested])
        preempted, started = preemptive_fill(view, queue, contested, quota, size)
        ops: list = [Preempt(j) for j in preempted]
        for j in preempted:
            self._held -= size.pop(j)
        for j, g in started:
            key = queue.key(j)
            queue.remove(j)
            size[j] = len(g)
            self._held += len(g)
            self.started(view, j, key[0])
            ops.append(Start(j, g))
        for j in preempted:
            queue.add((self.priority(view, j), 1, j), gpus[j])
        return ops
