"""ElasticFlow: deadline-aware elastic scheduling with admission control and buddy placement.

Gu, Zhao, Zhong, Xiong, Han, Cheng, Yang, Huang, Jin and Liu, "ElasticFlow: An Elastic
Serverless Training Platform for Distributed Deep Learning", ASPLOS 2023. Artifact:
github.com/pkusys/ElasticFlow (``scheduler/``; read for understanding, not copied).

Registered schedulers:

- ``elasticflow``: the paper's system (the artifact's ``ef-accessctrl``);
- ``elasticflow-noac``: the same without admission control (the artifact's ``ef``);
- ``elasticflow-edf``: the artifact's *elastic* EDF baseline (in deadline order each job gets
  as many GPUs as fit, up to its maximum, rounded down to a power of two). The project's ``edf``
  is the rigid EDF, so this one is separate.

What follows the paper and the artifact:

- Jobs run on power-of-two GPU counts ("levels") between their ``min_gpus`` and ``max_gpus``
  (and at most the cluster size); the throughput at a level is the perf model's rate
  (``view.rate_with``) on a consolidated buddy block of that size.
- Time is cut into slots of ``slot_seconds`` (60 s in the paper's Fig. 8, 240 s in Figs. 9-11)
  counted from the decision instant; a deadline cuts its last slot. ``free(s)`` is the number of
  GPUs no plan reserves in slot ``s``.
- Minimum satisfactory share (:func:`plan_mss`): the smallest level ``q`` that finishes the
  job's remaining work by its deadline when every slot gives ``min(q, largest level <= free)``
  GPUs. The plan then uses the level below ``q`` before the latest slot ("point") from which
  ``q`` alone would still suffice, ``q`` from there on, and stops when the work is done; it is
  reserved in ``free``. When no level suffices: a best-effort plan (as many GPUs as fit, up to
  the job's largest level, until the work is done).
- Every decision re-plans all admitted jobs in deadline (EDF) order from an empty timeline; each
  job's GPU count now is its plan's value for the current slot.
- Admission control: an arriving job with a deadline is declined (``Reject``) when planning it
  with the admitted jobs in EDF order cannot meet its deadline.
- Leftover GPUs (not reserved for the current slot) go one step at a time (the job's next level
  up) to the best-scoring job, re-scoring after each step. Jobs holding 0 GPUs score +infinity
  (they start first, as in the artifact). ``leftover="marginal"`` (default, the paper's
  "diminishing returns" wording): the largest speed-up gained per added GPU,
  ``(T(next) - T(cur)) / (next - cur) / T(lowest level)``. ``leftover="artifact"``: the artifact's
  ranking, the largest increase of the job's remaining GPU-time per added GPU,
  ``(rem x next / T(next) - rem x cur / T(cur)) / (next - cur)``.
- Buddy placement (:class:`BuddyPlacement`): a job of ``n >= node size`` GPUs takes whole free
  nodes; a smaller one an aligned power-of-two block inside a node, partially used nodes first.
  Every decision re-packs all jobs in descending GPU count (so power-of-two jobs never fragment);
  a job whose GPUs change is migrated with ``Resize`` and pays the engine's ``resize_overhead``
  (the paper charges scaling/migration costs; pass ``perf.overhead("elasticflow")``).
- Re-decision points: arrivals, completions, and the next slot at which any plan changes (a
  ``Wake``).

Reconstructions ([I]: our choice, not the paper's):

- [I] The level-``q`` throughput is the engine's perf model on the cluster's first ``n`` GPUs
  (one buddy block), computed once per job; the real allocation may differ (GPU variability).
- [I] Remaining work is the predictor's duration times (1 - progress) (the oracle predictor
  gives the artifact's exact iteration counts); planning ignores rescaling overheads, as the
  artifact's planner does.
- [I] Admission: several arrivals at one instant are tested one at a time in deadline order,
  and an arrival is admitted when it meets its deadline and every admitted job that met its
  deadline without it still does (the artifact admits only if every job's plan succeeds; an
  admitted job that has become late would then block all arrivals).
- [I] A job whose deadline can no longer be met is planned after all jobs that can still meet
  theirs (best effort on what they leave), instead of at its EDF position.
- [I] Jobs without a deadline (NaN; the artifact's best-effort jobs) reserve nothing and run on
  leftover GPUs only.
- [I] Leftover GPUs never go to a step that does not raise the job's throughput.
- [I] The artifact postpones events closer than one slot; here every arrival and completion is a
  decision point. Its per-event overhead charged to every running job is not modelled; only
  jobs whose allocation changes pay the engine's resize/restart overheads.
- [I] A rigid job whose size is not a power of two gets an aligned block of the next power of
  two (its first ``n`` GPUs); buddy placement assumes nodes of equal power-of-two size (other
  clusters raise ``ConfigError``).
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from dlsched_gym.baselines._common import check_bool, check_choice, check_positive
from dlsched_gym.baselines.registry import register
from dlsched_gym.errors import ConfigError
from dlsched_gym.scheduler import Preempt, Reject, Resize, Start, Wake

#: Relative tolerance when comparing planned work with remaining work.
_EPS = 1e-9


def _next_pow2(n: int) -> int:
    return 1 << (int(n) - 1).bit_length()


def job_levels(min_gpus: int, max_gpus: int, total: int) -> list[int]:
    """The power-of-two GPU counts in ``[min_gpus, min(max_gpus, total)]``; a job with none
    (a rigid non-power-of-two size) gets ``[min_gpus]``."""
    top = min(int(max_gpus), int(total))
    levels = [1 << k for k in range(top.bit_length()) if int(min_gpus) <= 1 << k <= top]
    return levels or [int(min_gpus)]


class BuddyPlacement:
    """Buddy placement: power-of-two aligned GPU blocks (a :class:`~dlsched_gym.placement.Placement`).

    ``n`` GPUs at least the node size (a multiple of it) take whole free nodes, in node order;
    fewer take the first free aligned block of ``next_pow2(n)`` GPUs (its first ``n`` GPUs) on
    the node with the fewest free GPUs that can hold them. Nodes must have the same power-of-two
    number of GPUs for blocks to align (checked by the ElasticFlow schedulers).
    """

    name = "buddy"

    def place(self, n, node_free, gpu_load, spec, job, allowed=None):
        """GPU ids for a gang of ``n``, or None if no aligned block is free."""
        g = int(spec.max_node_gpus)
        first = spec.node_first_gpu
        if n >= g:
            if n % g:
                return None
            nodes = np.flatnonzero(node_free == spec.node_gpus)[: n // g]
            if len(nodes) < n // g:
                return None
            return np.concatenate([np.arange(first[v], first[v] + g) for v in nodes])
        b = _next_pow2(n)
        cand = np.flatnonzero(node_free >= n)
        for v in cand[np.argsort(node_free[cand], kind="stable")]:
            lo = int(first[v])
            load = gpu_load[lo:lo + g]
            blocks = np.flatnonzero((load.reshape(-1, b) == 0).all(axis=1))
            if len(blocks):
                return np.arange(lo + int(blocks[0]) * b, lo + int(blocks[0]) * b + n)
        return None

    @staticmethod
    def near(n: int, current: np.ndarray, gpu_load: np.ndarray, spec) -> np.ndarray | None:
        """The aligned ``n``-GPU block that contains, or lies in, the block ``current`` starts
        (same nodes for multi-node jobs), if all its GPUs are free in ``gpu_load``; else None.
        Used to keep, shrink or grow a job in place."""
        g = int(spec.max_node_gpus)
        first = spec.node_first_gpu
        if n >= g:
            if n % g:
                return None
            nodes = list(dict.fromkeys(spec.gpu_node[current].tolist()))[: n // g]
            if len(nodes) < n // g:
                return None
            gpus = np.concatenate([np.arange(first[v], first[v] + g) for v in nodes])
        else:
            b = _next_pow2(n)
            lo = int(first[spec.gpu_node[current[0]]])
            start = lo + (int(current[0]) - lo) // b * b
            gpus = np.arange(start, start + n)
        return gpus if (gpu_load[gpus] == 0).all() else None


def plan_mss(free: np.ndarray, levels: list[int], rates: list[float], rem: float,
             deadline_slots: float, slot_seconds: float) -> tuple[bool, np.ndarray]:
    """ElasticFlow's minimum satisfactory share plan of one job.

    Args:
        free: GPUs free in each slot from now (slot ``s`` covers ``[s, s+1) x slot_seconds``);
            long enough to hold the plan (see :meth:`ElasticFlow._ensure`).
        levels: the job's GPU counts, ascending; ``rates``: its work units per second on each.
        rem: remaining work units.
        deadline_slots: (deadline - now) / slot_seconds (may be fractional, <= 0 or inf).

    Returns ``(meets_deadline, alloc)``: ``alloc[s]`` GPUs in slot ``s`` (zeros after the plan
    ends). When no level meets the deadline, ``alloc`` is the best-effort plan.
    """
    lv = np.asarray(levels)
    tp = np.concatenate([[0.0], rates])
    if deadline_slots > 0 and math.isfinite(deadline_slots):
        k = math.ceil(deadline_slots)
        lens = np.full(k, float(slot_seconds))
        lens[-1] = (deadline_slots - (k - 1)) * slot_seconds
        window = free[:k]

        def work(q: int) -> np.ndarray:
            idx = np.searchsorted(lv, np.minimum(window, q), side="right")
            return tp[idx] * lens

        need = rem * (1 - _EPS)
        lo, hi = 0, len(levels)  # binary search for the smallest feasible level
        while lo < hi:
            mid = (lo + hi) // 2
            if work(levels[mid]).sum() >= need:
                hi = mid
            else:
                lo = mid + 1
        if lo < len(levels):
            q = levels[lo]
            suffix = np.cumsum(work(q)[::-1])[::-1]
            point = int(np.flatnonzero(suffix >= need)[-1])
            cap = np.full(k, q)
            cap[:point] = levels[lo - 1] if lo > 0 else 0
            idx = np.searchsorted(lv, np.minimum(window, cap), side="right")
            done = np.cumsum(tp[idx] * slot_seconds)
            end = int(np.searchsorted(done, need))
            alloc = np.zeros(len(free), dtype=np.int64)
            alloc[: end + 1] = np.where(idx[: end + 1] > 0, lv[np.maximum(idx[: end + 1] - 1, 0)], 0)
            return True, alloc
    idx = np.searchsorted(lv, np.minimum(free, lv[-1]), side="right")
    done = np.cumsum(tp[idx] * slot_seconds)
    end = int(np.searchsorted(done, rem * (1 - _EPS)))
    alloc = np.zeros(len(free), dtype=np.int64)
    alloc[: end + 1] = np.where(idx[: end + 1] > 0, lv[np.maximum(idx[: end + 1] - 1, 0)], 0)
    return False, alloc


class _Elastic:
    """Shared machinery: per-job levels and throughputs, and buddy re-packing into ops."""

    name = ""
    round_seconds = None

    def reset(self, spec, jobs, rng) -> None:
        """Start a simulation; check that the nodes suit buddy placement."""
        sizes = set(spec.node_gpus.tolist())
        g = int(spec.max_node_gpus)
        if len(sizes) != 1 or g & (g - 1):
            raise ConfigError(f"scheduler {self.name!r}: buddy placement needs nodes with the same "
                              f"power-of-two GPU count, cluster {spec.name!r} has {sorted(sizes)}")
        self._spec = spec
        self._total = int(spec.num_gpus)
        self._min = jobs.min_gpus.tolist()
        self._max = jobs.max_gpus.tolist()
        self._deadline = [d if d == d else math.inf for d in jobs.deadline.tolist()]
        self._levels: dict[int, list[int]] = {}
        self._rates: dict[int, list[float]] = {}
        self._buddy = BuddyPlacement()
        #: jobs in the system (queued or running), in arrival order
        self._active: dict[int, None] = {}

    def _arrive(self, view, j: int) -> None:
        levels = job_levels(self._min[j], self._max[j], self._total)
        self._levels[j] = levels
        self._rates[j] = [view.rate_with(j, np.arange(n)) for n in levels]
        self._active[j] = None

    def _leave(self, j: int) -> None:
        del self._active[j]
        del self._levels[j]
        del self._rates[j]

    def _fit(self, j: int, n: int) -> int:
        """The job's largest level <= n (0 if none)."""
        best = 0
        for lv in self._levels[j]:
            if lv > n:
                break
            best = lv
        return best

    def _realize(self, view, target: dict[int, int]) -> list:
        """Ops that move every job to its target GPU count (absent: 0) with buddy placement,
        re-packing all jobs in descending size; jobs keep their block where they can."""
        spec = self._spec
        plan = view.plan()
        allocation = view.allocation
        running = list(view.running)
        for r in running:
            plan.release(allocation(r))
        run_set = set(running)
        order = sorted(target, key=lambda j: (-target[j], j not in run_set, j))
        new: dict[int, np.ndarray] = {}
        for j in order:
            gpus = None
            for n in [target[j]] + [lv for lv in reversed(self._levels[j]) if lv < target[j]]:
                if j in run_set:
                    gpus = self._buddy.near(n, allocation(j), plan.gpu_load, spec)
                    if gpus is not None:
                        plan.reserve(gpus)
                        break
                gpus = plan.place(j, n, placement=self._buddy)
                if gpus is not None:
                    break
            if gpus is not None:
                new[j] = gpus
        ops: list = []
        owner: dict[int, int] = {}
        for r in running:
            if r in new:
                for g in allocation(r).tolist():
                    owner[g] = r
            else:
                ops.append(Preempt(r))
        pending = []
        for j, gpus in new.items():
            if j not in run_set:
                pending.append(j)
            else:
                cur = allocation(j)
                if len(cur) != len(gpus) or (np.sort(cur) != np.sort(gpus)).any():
                    pending.append(j)
        while pending:  # apply each op once the GPUs it takes are free; break cycles by preempting
            left = []
            for j in pending:
                if any(owner.get(g, j) != j for g in new[j].tolist()):
                    left.append(j)
                    continue
                self._move(j, new[j], run_set, allocation, owner, ops)
            if len(left) == len(pending):
                victim = next(j for j in left if j in run_set)  # only moving jobs block
                ops.append(Preempt(victim))
                for g in allocation(victim).tolist():
                    del owner[g]
                run_set.discard(victim)
            pending = left
        return ops

    @staticmethod
    def _move(j, gpus, run_set, allocation, owner, ops) -> None:
        if j in run_set:
            for g in allocation(j).tolist():
                del owner[g]
            ops.append(Resize(j, gpus))
        else:
            ops.append(Start(j, gpus))
        for g in gpus.tolist():
            owner[g] = j


@register("elasticflow")
class ElasticFlow(_Elastic):
    """ElasticFlow: minimum satisfactory shares, admission control, leftover by marginal gain.

    Args:
        slot_seconds: length of a planning slot (s); the paper uses 60 and 240.
        admission_control: decline arriving jobs whose deadline cannot be guaranteed.
        leftover: ``"marginal"`` (largest speed-up per added GPU; the paper's wording) or
            ``"artifact"`` (largest remaining-GPU-time increase per added GPU, the artifact's
            ranking).
    """

    name = "elasticflow"

    def __init__(self, slot_seconds: float = 60.0, admission_control: bool = True,
                 leftover: str = "marginal") -> None:
        self.slot_seconds = check_positive(self.name, "slot_seconds", slot_seconds)
        self.admission_control = check_bool(self.name, "admission_control", admission_control)
        check_choice(self.name, "leftover", leftover, ("marginal", "artifact"))
        self.leftover = leftover

    def reset(self, spec, jobs, rng) -> None:
        """Start a simulation with nothing admitted."""
        super().reset(spec, jobs, rng)
        #: admitted jobs with a deadline
        self._admitted: set[int] = set()
        self._next_wake = -math.inf

    # ------------------------------------------------------------------ planning
    def _ensure(self, free: np.ndarray, slots: int) -> np.ndarray:
        """``free`` extended to at least ``slots`` slots (unreserved slots hold every GPU)."""
        if slots <= len(free):
            return free
        return np.concatenate([free, np.full(max(slots, 2 * len(free)) - len(free), self._total)])

    def _horizon(self, now: float, j: int, rem: float) -> int:
        """Slots that surely hold job ``j``'s plan: its deadline, or its work on one level-1 share
        after the whole current timeline."""
        d = (self._deadline[j] - now) / self.slot_seconds
        slow = rem / self._rates[j][0] / self.slot_seconds
        return int(math.ceil(max(d if math.isfinite(d) else 0.0, 0.0) + slow)) + 2

    def _plan_all(self, now: float, jobs: list[int], rem: dict[int, float]):
        """Plan ``jobs`` in EDF order; late ones after the others. Returns (GPUs now per job,
        the set of jobs meeting their deadline, the time of the next plan change)."""
        free = np.full(1, self._total, dtype=np.int64)
        ok, now_alloc, late = set(), {}, []
        change = math.inf
        span = 0

        def reserve(j: int, alloc: np.ndarray) -> None:
            nonlocal free, change, span
            used = np.flatnonzero(alloc)
            if len(used):
                last = int(used[-1])
                diff = np.flatnonzero(alloc[1: last + 1] != alloc[0])
                if len(diff):
                    change = min(change, now + (int(diff[0]) + 1) * self.slot_seconds)
                free[: last + 1] -= alloc[: last + 1]
                span = max(span, last + 1)
            now_alloc[j] = int(alloc[0])

        for j in sorted(jobs, key=lambda x: (self._deadline[x], x)):
            free = self._ensure(free, span + self._horizon(now, j, rem[j]))
            met, alloc = plan_mss(free, self._levels[j], self._rates[j], rem[j],
                                  (self._deadline[j] - now) / self.slot_seconds, self.slot_seconds)
            if met:
                ok.add(j)
                reserve(j, alloc)
            else:
                late.append(j)
        for j in late:
            free = self._ensure(free, span + self._horizon(now, j, rem[j]))
            _, alloc = plan_mss(free, self._levels[j], self._rates[j], rem[j], 0.0, self.slot_seconds)
            reserve(j, alloc)
        return now_alloc, ok, change

    # ------------------------------------------------------------------ leftover
    def _score(self, j: int, cur: int, nxt: int, rem: float) -> float:
        """Leftover priority of raising job ``j`` from ``cur`` to ``nxt`` GPUs (larger first)."""
        if cur == 0:
            return math.inf
        levels, rates = self._levels[j], self._rates[j]
        t_cur, t_nxt = rates[levels.index(cur)], rates[levels.index(nxt)]
        if self.leftover == "marginal":
            return (t_nxt - t_cur) / (nxt - cur) / rates[0]
        return (rem * nxt / t_nxt - rem * cur / t_cur) / (nxt - cur)

    def _leftover(self, target: dict[int, int], rem: dict[int, float]) -> None:
        """Hand the GPUs not reserved now out one level step at a time (see module docstring).

        A heap of each job's next step, best score first (ties in EDF order); free GPUs only
        shrink, so a step too large now is dropped for good."""
        free = self._total - sum(target.values())
        heap: list[tuple[float, int, int, int]] = []
        for pos, j in enumerate(sorted(self._active, key=lambda x: (self._deadline[x], x))):
            self._push_step(heap, pos, j, target.get(j, 0), rem[j])
        while free > 0 and heap:
            _, pos, j, nxt = heapq.heappop(heap)
            cur = target.get(j, 0)
            if nxt - cur > free:
                continue
            free -= nxt - cur
            target[j] = nxt
            self._push_step(heap, pos, j, nxt, rem[j])

    def _push_step(self, heap: list, pos: int, j: int, cur: int, rem: float) -> None:
        """Push job ``j``'s next level step up from ``cur`` GPUs, if it raises its throughput."""
        levels, rates = self._levels[j], self._rates[j]
        i = levels.index(cur) + 1 if cur else 0
        if i >= len(levels) or (cur and rates[i] <= rates[i - 1]):
            return
        heapq.heappush(heap, (-self._score(j, cur, levels[i], rem), pos, j, levels[i]))

    # ------------------------------------------------------------------ decisions
    def schedule(self, view):
        """Admit or decline arrivals, re-plan every admitted job, give out the leftover GPUs,
        and re-pack with buddy placement."""
        now = view.now
        for j in view.finished:
            self._admitted.discard(j)
            self._leave(j)
        ops: list = []
        arrivals = []
        for j in view.new_jobs:
            self._arrive(view, j)
            if self._deadline[j] < math.inf:
                arrivals.append(j)
        if not self._active:
            return ops
        rem = {j: view.predict_remaining(j) for j in self._active}
        admitted = sorted(self._admitted)
        if self.admission_control and arrivals:
            alloc, ok, change = self._plan_all(now, admitted, rem)
            for j in sorted(arrivals, key=lambda x: (self._deadline[x], x)):
                trial = self._plan_all(now, admitted + [j], rem)
                if j in trial[1] and ok <= trial[1]:
                    admitted.append(j)
                    alloc, ok, change = trial
                else:
                    ops.append(Reject(j))
                    self._leave(j)
                    del rem[j]
        else:
            admitted += arrivals
            alloc, ok, change = self._plan_all(now, admitted, rem)
        self._admitted = set(admitted)
        target = {j: n for j, n in alloc.items() if n > 0}
        self._leftover(target, rem)
        ops.extend(self._realize(view, target))
        if change < math.inf and not (now < self._next_wake <= change):
            self._next_wake = change
            ops.append(Wake(change))
        return ops


@register("elasticflow-noac")
class ElasticFlowNoAc(ElasticFlow):
    """ElasticFlow without admission control (the artifact's ``ef``): every job is planned, the
    ones that cannot meet their deadline on a best-effort basis."""

    name = "elasticflow-noac"

    def __init__(self, slot_seconds: float = 60.0, leftover: str = "marginal") -> None:
        super().__init__(slot_seconds=slot_seconds, admission_control=False, leftover=leftover)


@register("elasticflow-edf")
class ElasticEdf(_Elastic):
    """Elastic EDF, ElasticFlow's deadline baseline: at every event, in deadline order (jobs
    without one last, by arrival), each job gets its largest level that fits in the GPUs left;
    buddy placement. No admission control."""

    name = "elasticflow-edf"

    def schedule(self, view):
        """Re-assign GPUs in deadline order and re-pack."""
        for j in view.finished:
            self._leave(j)
        for j in view.new_jobs:
            self._arrive(view, j)
        if not self._active:
            return ()
        free = self._total
        target = {}
        for j in sorted(self._active, key=lambda x: (self._deadline[x], x)):
            n = self._fit(j, free)
            if n:
                target[j] = n
                free -= n
        return self._realize(view, target)
