"""MAST-inspired global scheduling of training jobs and their data across regions.

Choudhury et al., "MAST: Global Scheduling of ML Training across Geo-Distributed Datacenters at
Hyperscale", OSDI'24, pp. 563-580 (Meta). There is no public code and the project's specification
(``published-schedulers-b.md`` section 1) tags nearly every mechanism as recalled [M] or inferred
[I]: this module is a **reconstruction** ("mast-inspired"), not the paper's algorithm. What the
abstract confirms: users submit to one global scheduler that places both the training data and the
jobs across regions, built on temporal decoupling, scope decoupling and exhaustive search; the
headline is the most overloaded region's GPU demand-to-supply ratio for high-priority work,
2.63 before MAST and 0.98 with it.

Two schedulers share one regional tier:

- ``mast``: the global scheduler.

  * Slow path (temporal decoupling, [I]): every ``plan_seconds`` the data-placement planner looks
    at the most overloaded region (high-priority demand / supply above 1) and, greedily, starts
    the replication of the dataset whose queued high-priority demand there, moved to the
    least-loaded region without a copy, lowers the larger of the two regions' ratios the most
    (ties: the smaller dataset). It repeats while a move helps. A replica takes
    ``size / bandwidth`` seconds, occupies storage in its destination from the start, and may
    evict replicas this planner made earlier that no job in that region uses (oldest first);
    the initial replicas are permanent.
  * Fast path (scope decoupling, global tier, [I]): a job is routed at arrival to the region,
    among those holding a finished replica of its dataset (any region for a job without a
    dataset) with enough GPUs for its gang, whose projected demand/supply ratio after adding the
    job is lowest (ties: the lower region index). A high-priority job counts only high-priority
    demand (it may preempt the rest); a low-priority job counts all demand. At every slow-path
    run and whenever a replica completes, queued jobs are re-routed the same way when that
    strictly lowers their ratio.
  * Initial replicas (the data users uploaded before MAST, [I]): one per dataset, in the most
    common home region of the jobs that read it (the lowest region index on a tie), unless
    ``initial_replicas`` names them.

- ``mast-pinned``: the pre-MAST baseline: every job runs in its home region (``region`` column),
  as users pick regions by hand; data is where its users put it, so no replication.

Regional tier (both, [I]): per region, queued jobs in order of priority (higher first), then
arrival; each starts where a best-fit gang placement finds room (jobs that do not fit are skipped,
later ones may start). The "exhaustive search" over topology domains is done per gang size: a gang
that fits in one node goes to the feasible node with the fewest free GPUs; a larger gang to the
rack that fits it with the fewest GPUs left over, taking its nodes with the most free GPUs first
(fewest nodes); with no such rack, nodes with the most free GPUs first across the region. A
high-priority job (``priority >= high_priority``) that does not fit may preempt low-priority jobs
of its region: for a gang that fits in one node, the node where the fewest low-priority jobs (then
the fewest of their GPUs) make room; for a larger gang, the largest low-priority jobs until it
fits. Low-priority jobs never preempt.

Metric: both schedulers integrate each region's GPU demand (GPUs requested by queued plus running
jobs routed to it) over time, per priority class; :meth:`demand_supply` returns the time-averaged
demand/supply ratio per region. Jobs are annotated with ``mast_region`` (the index in
``spec.regions`` of the region they were last routed to) and ``mast_ratio`` (that region's
projected ratio when it was chosen).

TEMPORARY: the engine has no datasets, replicas, storage or replication delay yet. Until it does,
:class:`ReplicaModel` is a scheduler-side model of the data placement plan, and ``mast`` routes
jobs only to regions that, in this model, hold a finished replica of their dataset. The engine
design it stands in for (``Replicate``/``Evict`` ops, ``ClusterSpec.storage_tb``, a job started
where its data is still being copied waits for the copy) is in ``baselines/reproductions/mast.md``.

Differences from the specification's sketch: the planner uses the current queue as its demand
forecast (no arrival forecast, no per-team placement groups, no slow-path shares x[g][r] as a
routing tie-break); replicas expire only when storage is needed; moving a preempted job's
checkpoint between regions is free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from dlsched_gym.baselines._common import SortedJobs, check_positive
from dlsched_gym.baselines.registry import register
from dlsched_gym.errors import ConfigError
from dlsched_gym.placement import free_gpus_on, take_from_nodes
from dlsched_gym.scheduler import Preempt, Route, Start, Wake

#: Bits per terabyte (decimal), for replication delays.
TB_BITS = 8e12
_EPS = 1e-9


def _per_name(scheduler: str, param: str, value, names: Sequence[str], *,
              allow_none: bool = False) -> list[float]:
    """A positive number per name from a number or a ``{name: number}`` mapping (missing: error)."""
    if value is None and allow_none:
        return [math.inf] * len(names)
    if isinstance(value, Mapping):
        missing = [n for n in names if n not in value]
        if missing:
            raise ConfigError(f"scheduler {scheduler!r}: parameter {param!r} has no value for "
                              f"{missing[:5]}")
        return [check_positive(scheduler, f"{param}[{n!r}]", value[n]) for n in names]
    v = check_positive(scheduler, param, value)
    return [v] * len(names)


class ReplicaModel:
    """TEMPORARY scheduler-side model of dataset replicas (the engine has none yet).

    Datasets and regions are integer codes. A replica is *ready* (jobs may read it), or
    *pending* until its copy finishes. Storage counts ready and pending replicas.

    Args:
        sizes_tb: size of each dataset (TB).
        storage_tb: storage of each region (TB; ``inf`` for no limit).
        bandwidth_gbps: inter-region copy bandwidth (Gbit/s); a copy of ``s`` TB takes
            ``s x 8e12 / (bandwidth x 1e9)`` seconds.
        initial: the permanent replicas, ``{dataset: {region, ...}}``.
    """

    def __init__(self, sizes_tb: Sequence[float], storage_tb: Sequence[float], bandwidth_gbps: float,
                 initial: Mapping[int, set[int]]) -> None:
        self.sizes = list(sizes_tb)
        self.storage = list(storage_tb)
        self.bandwidth_bps = bandwidth_gbps * 1e9
        self.ready: list[set[int]] = [set(initial.get(d, ())) for d in range(len(self.sizes))]
        #: (dataset, region) -> time its copy finishes
        self.pending: dict[tuple[int, int], float] = {}
        #: (dataset, region) -> time a planned replica was made ready
        self.created: dict[tuple[int, int], float] = {}
        self.used = [0.0] * len(self.storage)
        for d, rs in enumerate(self.ready):
            for r in rs:
                self.used[r] += self.sizes[d]
        #: TB copied between regions so far
        self.tb_replicated = 0.0
        #: (start time, dataset, region) of every replication
        self.log: list[tuple[float, int, int]] = []

    def has(self, d: int, r: int) -> bool:
        """True when region ``r`` holds or is copying dataset ``d``."""
        return r in self.ready[d] or (d, r) in self.pending

    def make_room(self, r: int, size: float, in_use) -> bool:
        """Free ``size`` TB in ``r`` by evicting planned, ready replicas no job there uses
        (``in_use(d)`` says), oldest first; True when the room is there."""
        if self.used[r] + size <= self.storage[r] + _EPS:
            return True
        idle = sorted((t, d) for (d, rr), t in self.created.items() if rr == r and not in_use(d))
        for _, d in idle:
            self.ready[d].discard(r)
            del self.created[(d, r)]
            self.used[r] -= self.sizes[d]
            if self.used[r] + size <= self.storage[r] + _EPS:
                return True
        return False

    def replicate(self, d: int, r: int, now: float) -> float:
        """Start copying ``d`` to ``r`` (room must have been made); returns when it is ready."""
        done = now + self.sizes[d] * TB_BITS / self.bandwidth_bps
        self.pending[(d, r)] = done
        self.used[r] += self.sizes[d]
        self.tb_replicated += self.sizes[d]
        self.log.append((now, d, r))
        return done

    def complete(self, now: float) -> bool:
        """Make the copies finished by ``now`` ready; True if any was."""
        done = [k for k, t in self.pending.items() if t <= now + _EPS]
        for d, r in done:
            del self.pending[(d, r)]
            self.ready[d].add(r)
            self.created[(d, r)] = now
        return bool(done)


class _RegionalScheduler:
    """The regional tier shared by ``mast`` and ``mast-pinned``; subclasses choose regions."""

    name = ""
    round_seconds: float | None = None

    def __init__(self, high_priority: int = 1) -> None:
        if not isinstance(high_priority, (int, np.integer)) or isinstance(high_priority, bool):
            raise ConfigError(f"scheduler {self.name!r}: parameter 'high_priority' must be an "
                              f"integer, got {high_priority!r}")
        self.high_priority = int(high_priority)

    # -- state -----------------------------------------------------------------------
    def reset(self, spec, jobs, rng) -> None:
        """Index the regions and clear the queues, demand and metric integrals."""
        self._spec = spec
        nreg = len(spec.regions)
        self._masks = [spec.node_region_index == r for r in range(nreg)]
        self._supply = [float(spec.node_gpus[m].sum()) for m in self._masks]
        node_types = np.array([n.gpu_type for n in spec.nodes], dtype=object)
        self._type_mask = {c: node_types == t for c, t in enumerate(jobs.names["gpu_type"]) if t}
        #: GPUs per (requested GPU type code, region)
        self._capacity = [[int(spec.node_gpus[m & self._type_mask[c] if c in self._type_mask else m].sum())
                           for m in self._masks] for c in range(len(jobs.names["gpu_type"]))]
        self._gpu_type = jobs.gpu_type.tolist()
        self._gpus = jobs.num_gpus.tolist()
        self._high = (jobs.priority >= self.high_priority).tolist()
        self._prio = jobs.priority.tolist()
        self._region = [-1] * jobs.n
        self._queues = [SortedJobs() for _ in range(nreg)]
        #: low-priority running jobs per region: job -> GPUs
        self._low = [dict() for _ in range(nreg)]
        #: GPUs of queued + running jobs per region, high and low class
        self._demand = [[0.0] * nreg, [0.0] * nreg]
        self._integral = np.zeros((2, nreg))
        self._t0 = math.nan
        self._t = 0.0
        self._rack = spec.node_rack_index

    def fits(self, j: int, r: int) -> bool:
        """True when region ``r`` has enough GPUs (of the job's type) for ``j``'s gang."""
        return self._capacity[self._gpu_type[j]][r] >= self._gpus[j]

    def _cls(self, j: int) -> int:
        return 0 if self._high[j] else 1

    def _load(self, c: int, r: int) -> float:
        """GPUs demanded in region ``r`` that count for class ``c``: high-priority demand for the
        high class (0), all demand for the low class (1)."""
        d = self._demand
        return d[0][r] if c == 0 else d[0][r] + d[1][r]

    def _ratio(self, j: int, r: int) -> float:
        """Region ``r``'s demand/supply for ``j``'s class with ``j`` added."""
        return (self._load(self._cls(j), r) + self._gpus[j]) / self._supply[r]

    def _enter(self, view, j: int, r: int, ratio: float) -> None:
        """Put queued ``j`` in region ``r``'s queue and demand."""
        self._region[j] = r
        self._demand[self._cls(j)][r] += self._gpus[j]
        self._queues[r].add((-self._prio[j], j), self._gpus[j])
        view.annotate(j, "mast_region", r)
        view.annotate(j, "mast_ratio", ratio)

    def _leave(self, j: int) -> None:
        """Take queued ``j`` out of its region (before a re-route)."""
        r = self._region[j]
        self._queues[r].remove(j)
        self._demand[self._cls(j)][r] -= self._gpus[j]

    def demand_supply(self) -> dict[str, dict[str, float]]:
        """Time-averaged GPU demand (queued + running, routed to the region) / the region's GPUs,
        from the first arrival to the last decision: ``{region: {"high": .., "all": ..}}``."""
        span = self._t - self._t0
        out = {}
        for r, name in enumerate(self._spec.regions):
            hi, lo = (self._integral[:, r] / span) if span > 0 else (0.0, 0.0)
            out[name] = {"high": float(hi / self._supply[r]), "all": float((hi + lo) / self._supply[r])}
        return out

    # -- decisions -------------------------------------------------------------------
    def route(self, view, j: int) -> tuple[int, float]:
        """The region of a newly arrived job and its projected ratio there."""
        raise NotImplementedError

    def replan(self, view, ops: list) -> None:
        """Hook before the regional fill (the slow path of ``mast``)."""

    def schedule(self, view):
        """Account demand, route arrivals, run the slow path, then fill every region."""
        now = view.now
        if self._t0 != self._t0:
            self._t0 = now
        self._integral += np.array(self._demand) * (now - self._t)
        self._t = now
        for j in view.finished:
            r = self._region[j]
            self._demand[self._cls(j)][r] -= self._gpus[j]
            self._low[r].pop(j, None)
        ops: list = []
        for j in view.new_jobs:
            r, ratio = self.route(view, j)
            ops.append(Route(j, self._spec.regions[r]))
            self._enter(view, j, r, ratio)
        self.replan(view, ops)
        if view.free_gpus or any(self._low):
            plan = view.plan()
            for r in range(len(self._queues)):
                if self._queues[r].items:
                    self._fill(view, plan, r, ops)
        return ops

    def _nodes(self, j: int, r: int) -> np.ndarray:
        t = self._type_mask.get(self._gpu_type[j])
        return self._masks[r] if t is None else self._masks[r] & t

    def _fill(self, view, plan, r: int, ops: list) -> None:
        """Start region ``r``'s queued jobs in priority order, preempting for high priority."""
        queue = self._queues[r]
        low = self._low[r]
        free = int(plan.node_free[self._masks[r]].sum())
        smallest = queue.smallest_request()
        started, victims = [], []
        # A gang that found no room (with preemption) rules out every larger one in this walk.
        no_fit = no_fit_preempting = math.inf
        for item in queue.items:
            j = item[-1]
            g = self._gpus[j]
            can_preempt = self._high[j] and low and g < no_fit_preempting
            if min(free + 1, no_fit) <= smallest and not can_preempt:
                break
            gpus = self._place(plan, j, r) if g <= free and g < no_fit else None
            if gpus is None:
                no_fit = min(no_fit, g)
                if not can_preempt:
                    continue
                gpus, freed = self._preempt_place(view, plan, j, r)
                if gpus is None:
                    no_fit_preempting = g
                    continue
                no_fit = math.inf  # the victims may free more than the gang takes
                for v in freed:
                    free += len(view.allocation(v))
                    del low[v]
                    victims.append(v)
                    ops.append(Preempt(v))
            free -= len(gpus)
            started.append(j)
            ops.append(Start(j, gpus))
            if not self._high[j]:
                low[j] = len(gpus)
        for j in started:
            queue.remove(j)
        for v in victims:
            queue.add((-self._prio[v], v), self._gpus[v])

    def _best_fit(self, n: int, node_free: np.ndarray, load: np.ndarray) -> np.ndarray | None:
        """Best-fit gang placement over nodes and racks on the masked ``node_free``."""
        spec = self._spec
        if n <= spec.max_node_gpus:
            ok = np.flatnonzero(node_free >= n)
            if not len(ok):
                return None
            node = int(ok[np.argmin(node_free[ok])])
            return free_gpus_on(node, n, load, spec)
        if node_free.sum() < n:
            return None
        rack_free = np.bincount(self._rack, weights=node_free, minlength=int(self._rack.max()) + 1)
        ok = np.flatnonzero(rack_free >= n)
        if len(ok):
            rack = int(ok[np.argmin(rack_free[ok])])
            node_free = np.where(self._rack == rack, node_free, 0)
        return take_from_nodes(np.argsort(-node_free, kind="stable"), n, node_free, load, spec)

    def _place(self, plan, j: int, r: int, nodes: np.ndarray | None = None) -> np.ndarray | None:
        mask = self._nodes(j, r) if nodes is None else nodes
        gpus = self._best_fit(self._gpus[j], np.where(mask, plan.node_free, 0), plan.gpu_load)
        if gpus is not None:
            plan.reserve(gpus)
        return gpus

    def _preempt_place(self, view, plan, j: int, r: int) -> tuple[np.ndarray | None, list[int]]:
        """Place high-priority ``j`` in ``r`` by preempting the fewest low-priority jobs there."""
        n = self._gpus[j]
        low = self._low[r]
        mask = self._nodes(j, r)
        spec = self._spec
        if n <= spec.max_node_gpus:
            local: dict[int, list[tuple[int, int, int]]] = {}
            for v, size in low.items():
                nodes, counts = np.unique(spec.gpu_node[view.allocation(v)], return_counts=True)
                for node, c in zip(nodes.tolist(), counts.tolist()):
                    if mask[node] and spec.node_gpus[node] >= n:
                        local.setdefault(node, []).append((-c, size, v))
            best = None
            for node, cands in local.items():
                need = n - int(plan.node_free[node])
                taken, got = [], 0
                for negc, size, v in sorted(cands):
                    if got >= need:
                        break
                    taken.append((size, v))
                    got -= negc
                if got >= need:
                    cost = (len(taken), sum(s for s, _ in taken), node)
                    if best is None or cost < best[0]:
                        best = (cost, [v for _, v in taken])
            if best is None:
                return None, []
            for v in best[1]:
                plan.release(view.allocation(v))
            only = np.zeros(spec.num_nodes, dtype=bool)
            only[best[0][2]] = True
            return self._place(plan, j, r, only), best[1]
        if int(plan.node_free[mask].sum()) + sum(low.values()) < n:
            return None, []
        freed = []
        for _, v in sorted(((s, v) for v, s in low.items()), reverse=True):
            plan.release(view.allocation(v))
            freed.append(v)
            gpus = self._place(plan, j, r)
            if gpus is not None:
                return gpus, freed
        for v in freed:
            plan.reserve(view.allocation(v))
        return None, []


@register("mast-pinned")
class MastPinned(_RegionalScheduler):
    """Pre-MAST baseline: every job runs in its home region (see the module docstring).

    Args:
        high_priority: jobs with ``priority >=`` this are high priority (may preempt the rest).
    """

    name = "mast-pinned"

    def reset(self, spec, jobs, rng) -> None:
        """Map each job's home region to the cluster's regions; every gang must fit there."""
        super().reset(spec, jobs, rng)
        lookup = {name: i for i, name in enumerate(spec.regions)}
        names = jobs.names["region"]
        unknown = [x for x in names if x not in lookup]
        if unknown:
            raise ConfigError(f"scheduler {self.name!r}: home region(s) {unknown[:5]} are not regions "
                              f"of cluster {spec.name!r} ({list(spec.regions)})")
        self._home = [lookup[names[c]] for c in jobs.region.tolist()]
        for j in range(jobs.n):
            if not self.fits(j, self._home[j]):
                raise ConfigError(f"scheduler {self.name!r}: job {jobs.job_id[j]!r} needs "
                                  f"{self._gpus[j]} GPUs, more than its home region "
                                  f"{spec.regions[self._home[j]]!r} has")

    def route(self, view, j: int) -> tuple[int, float]:
        """The home region."""
        r = self._home[j]
        return r, self._ratio(j, r)


@register("mast")
class Mast(_RegionalScheduler):
    """MAST-inspired global scheduler (see the module docstring).

    Args:
        plan_seconds: period of the slow-path data-placement planner (s).
        dataset_tb: dataset size in TB: one number for all, or ``{dataset: TB}``.
        storage_tb: storage per region in TB: one number, ``{region: TB}``, or None (no limit).
        bandwidth_gbps: inter-region replication bandwidth (Gbit/s).
        initial_replicas: ``{dataset: [region, ...]}`` where data lives at the start (default: the
            most common home region of the dataset's jobs).
        high_priority: jobs with ``priority >=`` this are high priority (may preempt the rest).
    """

    name = "mast"

    def __init__(self, plan_seconds: float = 3600.0, dataset_tb: float | Mapping[str, float] = 10.0,
                 storage_tb: float | Mapping[str, float] | None = None, bandwidth_gbps: float = 100.0,
                 initial_replicas: Mapping[str, Sequence[str]] | None = None,
                 high_priority: int = 1) -> None:
        super().__init__(high_priority)
        self.plan_seconds = check_positive(self.name, "plan_seconds", plan_seconds)
        self.round_seconds = self.plan_seconds
        self.bandwidth_gbps = check_positive(self.name, "bandwidth_gbps", bandwidth_gbps)
        if not isinstance(dataset_tb, Mapping):
            check_positive(self.name, "dataset_tb", dataset_tb)
        if storage_tb is not None and not isinstance(storage_tb, Mapping):
            check_positive(self.name, "storage_tb", storage_tb)
        if initial_replicas is not None and not isinstance(initial_replicas, Mapping):
            raise ConfigError(f"scheduler 'mast': parameter 'initial_replicas' must map datasets to "
                              f"region lists, got {initial_replicas!r}")
        self.dataset_tb = dataset_tb
        self.storage_tb = storage_tb
        self.initial_replicas = initial_replicas

    def reset(self, spec, jobs, rng) -> None:
        """Build the replica model (initial replicas, storage) and clear the planner."""
        super().reset(spec, jobs, rng)
        datasets = jobs.names["dataset"]
        regions = list(spec.regions)
        self._no_data = datasets.index("") if "" in datasets else -1
        named = [x for x in datasets if x]
        sizes = iter(_per_name(self.name, "dataset_tb", self.dataset_tb, named) if named else [])
        sizes = [0.0 if d == self._no_data else next(sizes) for d in range(len(datasets))]
        storage = _per_name(self.name, "storage_tb", self.storage_tb, regions, allow_none=True)
        self._dataset = jobs.dataset.tolist()
        initial = self._initial(spec, jobs)
        self.replicas = ReplicaModel(sizes, storage, self.bandwidth_gbps, initial)
        over = [regions[r] for r in range(len(regions)) if self.replicas.used[r] > storage[r] + _EPS]
        if over:
            raise ConfigError(f"scheduler 'mast': the initial replicas exceed the storage of {over}")
        for j in range(jobs.n):
            d = self._dataset[j]
            if d != self._no_data and not any(self.fits(j, r) for r in initial[d]):
                raise ConfigError(f"scheduler 'mast': job {jobs.job_id[j]!r} needs {self._gpus[j]} GPUs "
                                  f"but no region holding dataset {datasets[d]!r} has that many")
        #: jobs in the system per (region, dataset), for eviction
        self._use = [dict() for _ in regions]
        self._next_plan = self.plan_seconds

    def _initial(self, spec, jobs) -> dict[int, set[int]]:
        regions = {name: i for i, name in enumerate(spec.regions)}
        datasets = jobs.names["dataset"]
        if self.initial_replicas is not None:
            out = {}
            for d, name in enumerate(datasets):
                if d == self._no_data:
                    continue
                rs = self.initial_replicas.get(name)
                if not rs or any(x not in regions for x in rs):
                    raise ConfigError(f"scheduler 'mast': initial_replicas[{name!r}] must list regions "
                                      f"of {list(spec.regions)}, got {rs!r}")
                out[d] = {regions[x] for x in rs}
            return out
        home_names = jobs.names["region"]
        home = np.array([regions.get(x, -1) for x in home_names], dtype=np.int64)[jobs.region]
        counts = np.zeros((len(datasets), len(spec.regions)), dtype=np.int64)
        known = home >= 0
        np.add.at(counts, (jobs.dataset[known], home[known]), 1)
        out = {}
        for d in range(len(datasets)):
            if d != self._no_data:
                out[d] = {int(counts[d].argmax()) if counts[d].any() else int(np.argmax(self._supply))}
        return out

    # -- global tier ------------------------------------------------------------------
    def _candidates(self, j: int):
        d = self._dataset[j]
        rs = range(len(self._supply)) if d == self._no_data else sorted(self.replicas.ready[d])
        return [r for r in rs if self.fits(j, r)]

    def route(self, view, j: int) -> tuple[int, float]:
        """The least-loaded region holding the job's data."""
        best = min((self._ratio(j, r), r) for r in self._candidates(j))
        self._track(j, best[1], 1)
        return best[1], best[0]

    def _track(self, j: int, r: int, delta: int) -> None:
        d = self._dataset[j]
        use = self._use[r]
        use[d] = use.get(d, 0) + delta

    def schedule(self, view):
        """As the regional tier, also releasing finished jobs' dataset use."""
        for j in view.finished:
            self._track(j, self._region[j], -1)
        return super().schedule(view)

    def _reroute(self, view, ops: list) -> None:
        """Move queued jobs to a region with their data and a strictly lower ratio."""
        supply = self._supply
        for r in range(len(self._queues)):
            for item in list(self._queues[r].items):
                j = item[-1]
                c, g = self._cls(j), self._gpus[j]
                here = self._load(c, r) / supply[r]  # j is already counted in r
                best = min((((self._load(c, x) + g) / supply[x], x)
                            for x in self._candidates(j) if x != r), default=None)
                if best is not None and best[0] < here - _EPS:
                    self._leave(j)
                    self._track(j, r, -1)
                    self._track(j, best[1], 1)
                    ops.append(Route(j, self._spec.regions[best[1]]))
                    self._enter(view, j, best[1], best[0])

    def replan(self, view, ops: list) -> None:
        """Slow path: finish copies, plan replicas every ``plan_seconds``, re-route queued jobs."""
        now = view.now
        moved = self.replicas.complete(now)
        if now >= self._next_plan - _EPS:
            self._next_plan = (math.floor(now / self.plan_seconds) + 1) * self.plan_seconds
            for t in self._plan_replicas(now):
                ops.append(Wake(t))
            moved = True
        if moved:
            self._reroute(view, ops)

    def _plan_replicas(self, now: float) -> list[float]:
        """Greedy data placement for the most overloaded region; returns copy completion times."""
        ratio = np.array(self._demand[0]) / self._supply
        waiting: list[dict[int, list[int]]] = [dict() for _ in ratio]
        for r, queue in enumerate(self._queues):
            for item in queue.items:
                j = item[-1]
                if not self._high[j]:
                    break
                d = self._dataset[j]
                if d != self._no_data:
                    entry = waiting[r].setdefault(d, [0, 0])
                    entry[0] += self._gpus[j]
                    entry[1] = max(entry[1], self._gpus[j])
        sizes = self.replicas.sizes
        done, refused = [], set()
        while True:
            hot = int(ratio.argmax())
            if ratio[hot] <= 1.0:
                break
            best = None
            for d, (q, biggest) in waiting[hot].items():
                for dst in range(len(ratio)):
                    if (dst == hot or q <= 0 or self.replicas.has(d, dst) or (d, dst) in refused
                            or self._supply[dst] < biggest):
                        continue
                    s_hot, s_dst = self._supply[hot], self._supply[dst]
                    m = min(q, (ratio[hot] - ratio[dst]) * s_hot * s_dst / (s_hot + s_dst))
                    if m <= 0:
                        continue
                    gain = ratio[hot] - max(ratio[hot] - m / s_hot, ratio[dst] + m / s_dst)
                    key = (-gain, sizes[d], dst, d)
                    if best is None or key < best[0]:
                        best = (key, m)
            if best is None:
                break
            (_, _, dst, d), m = best
            if not self.replicas.make_room(dst, sizes[d], lambda x, u=self._use[dst]: u.get(x, 0) > 0):
                refused.add((d, dst))
                continue
            done.append(self.replicas.replicate(d, dst, now))
            ratio[hot] -= m / self._supply[hot]
            ratio[dst] += m / self._supply[dst]
            waiting[hot][d][0] -= m
        return done
