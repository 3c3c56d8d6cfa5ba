"""Lyra: capacity loaning from the inference cluster plus elastic scaling (Lyra-inspired).

Li, Xu, Zhu, Liu, Guo and Wang, "Lyra: Elastic Scheduling for Deep Learning Clusters",
EuroSys'23 (arXiv 2202.07896, first titled "Aryl"). The paper has no public code; this module
follows the project's spec (``published-schedulers-b.md`` section 4), whose algorithm is recalled
from the paper and partly reconstructed, so the agent is *Lyra-inspired*.

Follows the paper (abstract-level, confirmed):

- **Capacity loaning**: idle servers of the inference pool (``Node(pool="inference")``, lent
  while the cluster's ``inference_schedule`` says so; see :mod:`~dlsched_gym.baselines._lyra_pool`
  for a generated diurnal series) run training jobs.
- **Reclaiming by server preemption cost** (:meth:`Lyra.choose_reclaim`): when serving takes
  ``k`` servers back, reclaim greedily, one server at a time, the lent server of least cost, then
  recompute the costs of the others.
- **Elastic scaling as a multiple-choice knapsack** (MCKP): each elastic job is a class whose
  items are ``k = 0 .. max_gpus - min_gpus`` extra workers (weight ``k`` GPUs) valued by the JCT
  reduction they bring; one item per class, total weight at most the free GPUs; solved exactly by
  dynamic programming over the capacity.

Reconstructions (the spec's [M]/[I] parts; "Lyra-inspired"):

1. *Cost unit*: a server's preemption cost is the number of jobs on it that would have to be
   preempted; an elastic job that keeps at least ``min_gpus`` GPUs elsewhere can shrink and costs
   0. Ties: fewer busy GPUs, then fewer jobs, then the lower node index.
2. *Base allocation order*: FIFO over the queue, with backfilling (``backfill=True``: a job that
   does not fit is skipped), each job getting its base demand: ``min_gpus`` for elastic jobs,
   ``num_gpus`` for rigid ones. Base demand comes before extra workers: extra workers of running
   jobs are taken back when a queued job's base demand needs their GPUs (and only then).
3. *Placement*: base demands go on training servers when they fit there, else anywhere (loaned
   servers included); extra workers go first on the GPUs the job already had as extras, then on
   loaned servers, then on nodes the job already uses (so reclaiming hits shrinkable workers).
   Among a running job's GPUs, the base ones are those on training servers first.
4. *Value of an item*: ``R / rate(base) - R / rate(base + k GPUs)``, with ``R =
   view.predict_remaining(job)`` (remaining run time at the requested allocation, from the
   experiment's predictor) and rates from ``view.rate_with`` on the GPUs the job would get (so a
   measured scaling curve, if the perf model has one, sets the marginal gain of each worker).
   Changing a running job's size costs ``resize_cost`` seconds of value (its JCT grows by the
   stall), so extras are not shuffled for tiny gains.
5. *Shrinking before a reclaim*: the engine preempts every job on a reclaimed server at the
   reclaim instant. To shrink elastic jobs instead, as the paper does, the scheduler treats each
   decrease of ``spec.inference_schedule`` as announced ``reclaim_notice`` seconds ahead: it wakes
   up then, picks the servers by the same greedy cost, shrinks the shrinkable jobs off them
   (``Resize``) and places nothing more on them. Jobs that cannot shrink are preempted by the
   engine at the reclaim (``forced_preemptions``). ``reclaim_notice=0`` turns this off.
6. Event-driven (no periodic rounds); whole servers are loaned and reclaimed, as in the paper.

Parameters: ``elastic`` (False: every job runs at its requested ``num_gpus``, the paper's
baseline without elastic scaling, reported as ``lyra-rigid``; the baseline without capacity
loaning is a cluster whose inference pool is never lent), ``backfill``, ``reclaim_notice`` (s),
``resize_cost`` (s). The defaults are this simulator's choices, not the paper's: backfilling on,
a 1 s reclaim notice, and a 30 s resize cost (Pollux's restart penalty as a stand-in for the stall
of a resize). Inputs: job sizes and elastic ranges, ``view.predict_remaining`` (the experiment's
predictor), ``view.rate_with`` (the perf model) and the cluster's ``inference_schedule``.
"""

from __future__ import annotations

import numpy as np

from dlsched_gym.baselines._common import check_positive
from dlsched_gym.baselines.registry import register
from dlsched_gym.errors import ConfigError
from dlsched_gym.scheduler import Resize, Start, Wake

_EMPTY = np.zeros(0, dtype=np.int64)


@register("lyra")
class Lyra:
    """Capacity loaning, least-preemption-cost reclaiming and MCKP elastic scaling (see the
    module docstring).

    Args:
        elastic: scale elastic jobs (``min_gpus < max_gpus``) within their range; False runs
            every job at ``num_gpus``.
        backfill: skip a queued job whose base demand does not fit and try the next ones (False:
            strict FIFO).
        reclaim_notice: seconds before each reclaim at which the scheduler shrinks elastic jobs
            off the servers it will return (0: no notice, the engine preempts them).
        resize_cost: seconds of JCT charged to the MCKP value of changing a running job's size.
    """

    name = "lyra"
    round_seconds = None

    def __init__(self, elastic: bool = True, backfill: bool = True, reclaim_notice: float = 1.0,
                 resize_cost: float = 30.0) -> None:
        for param, value in (("elastic", elastic), ("backfill", backfill)):
            if not isinstance(value, bool):
                raise ConfigError(f"scheduler 'lyra': parameter {param!r} must be True or False, "
                                  f"got {value!r}")
        self.elastic = elastic
        self.backfill = backfill
        self.reclaim_notice = check_positive("lyra", "reclaim_notice", reclaim_notice, allow_zero=True)
        self.resize_cost = check_positive("lyra", "resize_cost", resize_cost, allow_zero=True)
        if not elastic:
            self.name = "lyra-rigid"

    # ------------------------------------------------------------------ setup
    def reset(self, spec, jobs, rng) -> None:
        """Bind to the cluster and workload; list the announced reclaims."""
        self._min = jobs.min_gpus.tolist()
        self._max = jobs.max_gpus.tolist()
        self._req = jobs.num_gpus.tolist()
        self._gpu_node = spec.gpu_node
        self._gpu_node_list = spec.gpu_node.tolist()
        self._inference = spec.node_pool_inference
        self._gpu_inference = spec.node_pool_inference[spec.gpu_node]
        self._inference_nodes = np.flatnonzero(spec.node_pool_inference).tolist()
        self._num_nodes = spec.num_nodes
        # (notice time, reclaim time, lendable nodes after it) for each decrease of the schedule
        self._notices: list[tuple[float, float, int]] = []
        prev = 0
        for t, lendable in spec.inference_schedule:
            if lendable < prev and self.reclaim_notice > 0:
                self._notices.append((max(float(t) - self.reclaim_notice, 0.0), float(t), int(lendable)))
            prev = lendable
        self._next_notice = 0
        self._wakes_sent = False
        self._draining: dict[int, float] = {}  # node -> time it is reclaimed

    def _is_elastic(self, j: int) -> bool:
        return self.elastic and self._min[j] < self._max[j]

    def _can_shrink(self, j: int, left: int) -> bool:
        """True if job ``j`` may keep running on ``left`` GPUs (elastic, at least its minimum)."""
        return self._is_elastic(j) and left >= self._min[j]

    # ------------------------------------------------------------------ reclaiming
    def _node_jobs(self, cur: dict[int, np.ndarray], nodes: list[int]) -> dict[int, dict[int, int]]:
        """For each of ``nodes``: the jobs with GPUs there and how many GPUs each holds there."""
        out: dict[int, dict[int, int]] = {v: {} for v in nodes}
        gpu_node = self._gpu_node_list
        inference = self._gpu_inference
        for j, gpus in cur.items():
            if not inference[gpus].any():
                continue
            for g in gpus.tolist():
                jobs = out.get(gpu_node[g])
                if jobs is not None:
                    jobs[j] = jobs.get(j, 0) + 1
        return out

    def _greedy_reclaim(self, cur: dict[int, np.ndarray], candidates: list[int],
                        k: int) -> tuple[list[int], dict[int, np.ndarray]]:
        """Pick ``k`` of the ``candidates`` servers one at a time by least preemption cost.

        Returns the servers in the order picked and, for each elastic job that shrinks instead of
        being preempted, the GPUs it keeps."""
        node_jobs = self._node_jobs(cur, candidates)
        size = {j: len(cur[j]) for jobs in node_jobs.values() for j in jobs}
        left = list(candidates)
        chosen: list[int] = []
        shrunk: set[int] = set()
        for _ in range(k):
            best = None
            for v in left:
                jobs = node_jobs[v]
                cost = sum(1 for j, c in jobs.items() if not self._can_shrink(j, size[j] - c))
                key = (cost, sum(jobs.values()), len(jobs), v)
                if best is None or key < best:
                    best = key
            v = best[-1]
            chosen.append(v)
            left.remove(v)
            for j, c in node_jobs.pop(v).items():
                if self._can_shrink(j, size[j] - c):
                    size[j] -= c
                    shrunk.add(j)
                else:  # preempted: its GPUs on the other servers are freed too
                    shrunk.discard(j)
                    for u in left:
                        node_jobs[u].pop(j, None)
        gone = np.array(chosen, dtype=np.int64)
        keep = {j: cur[j][~np.isin(self._gpu_node[cur[j]], gone)] for j in shrunk}
        return chosen, keep

    def choose_reclaim(self, view, lent_nodes, k: int) -> list[int]:
        """The engine's reclaim hook: the ``k`` lent servers to return, by least preemption cost
        (greedy, costs recomputed after each pick; see the module docstring)."""
        cur = {j: view.allocation(j) for j in view.running}
        return self._greedy_reclaim(cur, [int(v) for v in lent_nodes], int(k))[0]

    def _lent_nodes(self, view, cur: dict[int, np.ndarray]) -> list[int]:
        """Inference servers lent now: online ones have free GPUs or jobs (offline ones neither)."""
        node_free = view.node_free
        used = {self._gpu_node_list[g] for gpus in cur.values() if self._gpu_inference[gpus].any()
                for g in gpus.tolist()}
        return [v for v in self._inference_nodes if node_free[v] > 0 or v in used]

    def _drain(self, view, cur: dict[int, np.ndarray]) -> set[int]:
        """Handle the reclaims announced by now: mark their servers draining and shrink the
        shrinkable jobs off them (in ``cur``). Returns the shrunk jobs."""
        now = view.now
        shrunk: set[int] = set()
        while self._next_notice < len(self._notices) and self._notices[self._next_notice][0] <= now:
            _, t, lendable = self._notices[self._next_notice]
            self._next_notice += 1
            if t <= now:  # already reclaimed by the engine
                continue
            lent = [v for v in self._lent_nodes(view, cur) if v not in self._draining]
            k = len(lent) - lendable
            if k <= 0:
                continue
            chosen, keep = self._greedy_reclaim(cur, lent, k)
            for v in chosen:
                self._draining[v] = t
            cur.update(keep)
            shrunk |= set(keep)
        return shrunk

    # ------------------------------------------------------------------ allocation
    def _extra_order(self, view, j: int, free: np.ndarray, own: np.ndarray, base: np.ndarray) -> np.ndarray:
        """The ``free`` GPUs job ``j`` may use, in the order it takes them as extra workers: its
        own previous extras, then loaned servers, then nodes it already uses, then by id."""
        nodes = self._gpu_node[free]
        allowed = view.allowed_nodes(j)
        if allowed is not None:
            free, nodes = free[allowed[nodes]], nodes[allowed[nodes]]
        near = np.zeros(self._num_nodes, dtype=bool)
        near[self._gpu_node[base]] = True
        key = (~self._inference[nodes]).astype(np.int64) * 2 + ~near[nodes]
        if len(own):
            mine = np.zeros(len(self._gpu_node), dtype=bool)
            mine[own] = True
            key += (~mine[free]).astype(np.int64) * 4
        return free[np.lexsort((free, key))]

    def _split(self, gpus: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """A running job's GPUs as (base of ``m`` GPUs, extras): base GPUs on training servers
        first, then on the nodes holding most of the job, then by id."""
        nodes = self._gpu_node[gpus]
        if (nodes == nodes[0]).all():
            gpus = np.sort(gpus)
            return gpus[:m], gpus[m:]
        held = np.bincount(nodes, minlength=self._num_nodes)[nodes]
        order = np.lexsort((gpus, -held, self._inference[nodes]))
        return gpus[order[:m]], gpus[order[m:]]

    def schedule(self, view):
        """Drain announced reclaims, start queued jobs at their base demand, then give the free
        GPUs to elastic jobs by the MCKP."""
        now = view.now
        ops: list = []
        if not self._wakes_sent:
            self._wakes_sent = True
            ops += [Wake(tn) for tn, _, _ in self._notices if tn > now]
        if self._draining:
            self._draining = {v: t for v, t in self._draining.items() if t > now}
        cur = {j: view.allocation(j) for j in view.running}
        shrunk = self._drain(view, cur)
        usable = np.ones(self._num_nodes, dtype=bool)
        usable[list(self._draining)] = False
        plan = view.plan()
        for j in shrunk:
            plan.release(np.setdiff1d(view.allocation(j), cur[j]))
        free_now = int(plan.node_free[usable].sum())
        if not view.queue and (free_now == 0 or not self.elastic) and not shrunk:
            return ops

        base: dict[int, np.ndarray] = {}
        extras: dict[int, np.ndarray] = {}
        if self.elastic:
            for j, gpus in cur.items():
                if self._is_elastic(j):
                    base[j], extras[j] = self._split(gpus, self._min[j])
        held = sum(len(e) for e in extras.values())
        released = False

        def release_extras() -> None:
            for e in extras.values():
                if len(e):
                    plan.release(e)

        # 1. base demands in FIFO order; extra workers are taken back only when needed
        started: dict[int, np.ndarray] = {}
        training = usable & ~self._inference
        cap = free_now
        for j in view.queue:
            b = self._min[j] if self._is_elastic(j) else self._req[j]
            if b > cap + (0 if released else held):
                if self.backfill and cap + (0 if released else held) > 0:
                    continue
                break
            gpus = plan.place(j, b, nodes=training)
            if gpus is None:
                gpus = plan.place(j, b, nodes=usable)
            if gpus is None and not released and held:
                release_extras()
                released, cap = True, cap + held
                gpus = plan.place(j, b, nodes=training)
                if gpus is None:
                    gpus = plan.place(j, b, nodes=usable)
            if gpus is None:
                if self.backfill:
                    continue
                break
            started[j] = gpus
            cap -= b
        final = dict(started)
        if self.elastic:
            if not released:
                release_extras()
            final.update(self._knapsack(view, plan, usable, cur, base, extras, started, shrunk))

        # 2. ops: shrink-only resizes free GPUs that growing resizes and starts may take
        shrinks, grows = [], []
        for j, new in final.items():
            if j in started:
                continue
            old = view.allocation(j)
            if len(new) != len(old) or not np.array_equal(np.sort(new), np.sort(old)):
                (shrinks if np.isin(new, old).all() else grows).append(Resize(j, np.sort(new)))
        return ops + shrinks + grows + [Start(j, np.sort(final[j])) for j in started]

    def _knapsack(self, view, plan, usable, cur, base, extras, started, shrunk) -> dict[int, np.ndarray]:
        """Solve the MCKP over the free usable GPUs; return each elastic job's new GPU set."""
        for j, gpus in started.items():
            if self._is_elastic(j):
                base[j], extras[j] = gpus, _EMPTY
        classes = list(base)
        usable_gpu = usable[self._gpu_node]
        free = np.flatnonzero((plan.gpu_load == 0) & usable_gpu)
        cap = len(free)
        if cap == 0 or not classes:
            return {j: base[j] for j in classes}
        values = []
        for j in classes:
            top = min(self._max[j] - self._min[j], cap)
            order = self._extra_order(view, j, free, extras[j], base[j])[:top]
            rem = view.predict_remaining(j)
            t0 = rem / view.rate_with(j, base[j])
            vals = np.zeros(top + 1)
            for k in range(1, top + 1):
                r = view.rate_with(j, np.concatenate([base[j], order[:k]]))
                vals[k] = t0 - rem / r if r > 0 else -np.inf
            if j in cur and j not in shrunk and not (plan.gpu_load[extras[j]] > 0).any():
                # not forced to resize anyway: charge a change of size
                keep = len(cur[j]) - self._min[j]
                vals[np.arange(top + 1) != keep] -= self.resize_cost
            values.append(vals)
        # dp[c]: best total value with at most c GPUs; choice[i][c]: item of class i
        dp = np.zeros(cap + 1)
        choice = []
        for vals in values:
            new = np.full(cap + 1, -np.inf)
            arg = np.zeros(cap + 1, dtype=np.int64)
            for k, v in enumerate(vals):
                cand = dp[: cap + 1 - k] + v
                better = cand > new[k:]
                new[k:][better] = cand[better]
                arg[k:][better] = k
            dp = new
            choice.append(arg)
        take = {}
        c = cap
        for j, arg in zip(reversed(classes), reversed(choice)):
            take[j] = int(arg[c])
            c -= take[j]
        # first every job takes back its previous extras that are still free (up to its k), then
        # the jobs that need more take other free GPUs: no job takes GPUs another one keeps, so
        # the resizes that take new GPUs only need those released by shrinking resizes
        out = {}
        for j in classes:
            kept = extras[j][plan.gpu_load[extras[j]] == 0][: take[j]]
            if len(kept):
                plan.reserve(kept)
                out[j] = np.concatenate([base[j], kept])
            else:
                out[j] = base[j]
        for j in classes:
            need = take[j] - (len(out[j]) - len(base[j]))
            if need > 0:
                free = np.flatnonzero((plan.gpu_load == 0) & usable_gpu)
                got = self._extra_order(view, j, free, _EMPTY, base[j])[:need]
                plan.reserve(got)
                out[j] = np.concatenate([out[j], got])
        return out
