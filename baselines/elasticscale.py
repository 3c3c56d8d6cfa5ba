"""ElasticScale (EasyScale): elastic jobs with a fixed number of logical workers on a variable mix
of GPU types, grown round by round by speed-up gain per GPU. elasticscale-inspired.

Li, Xiao, Yang, Sun, Zhao, Ren, Luan, Jia, Liu, Li, Lin and Qian, "EasyScale: Elastic Training
with Consistent Accuracy and Improved Utilization on GPUs", SC 2023,
doi:10.1145/3581784.3607054 (the seed list's "ElasticScale"; the DOI resolves to EasyScale). The
artifact's simulator (``sUntvoOk/EasyScale_info_for_SC23``, ``simulator/easy_policy.py``,
``simulator/simulator.py``) was read, through the project's spec, to settle details; no code is
taken from it.

Registered schedulers:

- ``elasticscale`` (alias ``easyscale``): EasyScale-heter. A job may mix GPU types.
- ``elasticscale_homo`` (alias ``easyscale_homo``): EasyScale-homo. Every GPU of a job is of one
  type (jobs without heterogeneous determinism, the paper's D2).

What follows the paper and its artifact:

- A job keeps a fixed number of logical workers (EasyScaleThreads), its ``max_gpus`` = P, whatever
  GPUs it holds, so it may run on any number of GPUs from ``min_gpus`` to P without changing its
  training semantics (no accuracy or statistical-efficiency penalty for rescaling).
- Speeds come from the engine's perf model (``view.rate_with``). With
  ``perf.ThroughputModel(execution="easyscale")`` the engine models EasyScale's execution: the P
  workers are spread over the GPUs by speed and the most loaded GPU sets the iteration time
  (:func:`dlsched_gym.perf.est_balance`). The scheduler computes no speeds of its own.
- Rounds of ``round_seconds`` (60 s, the artifact's scheduling interval); allocations change only
  at round boundaries.
- Each round: every job that is still queued gets its smallest proposal (``min_gpus`` GPUs,
  normally one) in arrival order if it fits. Then every running job below P proposes at most one
  increment per GPU type: ``k`` more GPUs of that one type that raise its speed, with waste at most
  ``max_waste`` (0.30) and ``n + k <= max_growth * n`` (2x per round), scored
  ``inc_perf = 1 + (speed_new / speed_now - 1) / k``; the best ``k`` per type is proposed.
  Proposals are granted in decreasing ``inc_perf`` while their GPUs are free, at most one per job
  per round (a granted increment is a ``Resize``, which pays the engine's ``resize_overhead``).
- No shrinking and no preemption: an allocation only grows until the job ends.
- EasyScale-homo keeps each job on one GPU type.

Reconstructions ([I]: our choice, not the paper's):

- [I] Waste of an allocation = ``est_balance(speeds, P).waste``: the share of the allocation's
  aggregate speed left idle when the P workers are spread over it, each GPU's speed being the perf
  model's rate of the job on that GPU alone. It covers both of the artifact's terms (load imbalance
  between types and unused worker slots); the artifact gives single-type proposals no waste at
  all, here a single type wastes when P is not a multiple of the GPU count.
- [I] An increment must raise the speed strictly (the artifact's ``>=`` would also admit GPUs that
  only idle). Ties in ``inc_perf`` (within 1e-9): for one job and type, the larger ``k`` (the
  larger speed); across jobs, the lower job index (arrival order); for one job, the faster type.
- [I] The smallest proposal of a new job is ``min_gpus`` GPUs of the fastest type (for this job,
  by the perf model) where the engine's placement finds room; EasyScale-heter falls back to the
  fastest free GPUs of any type. EasyScale-homo keeps a job on its requested ``gpu_type``, or, when
  it requests any type, on the type of its first allocation (the artifact's jobs name a preferred
  type; the public traces do not).
- [I] Increment GPUs of a type come first from the nodes the job already uses, then from the nodes
  with the most free GPUs (fewer nodes spanned).
- [I] The artifact charges a one-time 20 s start delay and no rescale cost; here starts are free
  and every resize pays the engine's ``resize_overhead`` (choose it per experiment).
- Not modelled: the production mode in which serving reclaims GPUs (the job would shrink); with an
  inference pool the engine's forced reclaim preempts the job instead.
"""

from __future__ import annotations

import math

import numpy as np

from dlsched_gym.baselines._common import check_positive
from dlsched_gym.baselines.registry import register
from dlsched_gym.errors import ConfigError
from dlsched_gym.perf import est_balance
from dlsched_gym.scheduler import Resize, Start

#: Relative tolerance under which two increment scores count as equal.
_TIE = 1e-9


@register("elasticscale", aliases=("easyscale",))
class ElasticScale:
    """EasyScale-heter: fixed logical workers on a mix of GPU types (see the module docstring).

    Args:
        round_seconds: scheduling interval (s); the artifact's is 60.
        max_waste: largest waste an increment may leave (the artifact's 0.30), in [0, 1).
        max_growth: a round may grow a job from n to at most ``max_growth * n`` GPUs (the
            artifact's 2), > 1.
    """

    name = "elasticscale"
    #: whether a job may mix GPU types (False: ``elasticscale_homo``)
    heterogeneous = True

    def __init__(self, round_seconds: float = 60.0, max_waste: float = 0.30,
                 max_growth: float = 2.0) -> None:
        self.round_seconds = check_positive(self.name, "round_seconds", round_seconds)
        w = check_positive(self.name, "max_waste", max_waste, allow_zero=True)
        if w >= 1.0:
            raise ConfigError(f"scheduler {self.name!r}: parameter 'max_waste' must lie in [0, 1), "
                              f"got {max_waste!r}")
        self.max_waste = w
        g = check_positive(self.name, "max_growth", max_growth)
        if g <= 1.0:
            raise ConfigError(f"scheduler {self.name!r}: parameter 'max_growth' must be > 1 (a "
                              f"job may grow from n to max_growth * n GPUs), got {max_growth!r}")
        self.max_growth = g

    def reset(self, spec, jobs, rng) -> None:
        """Index the GPUs by type and node; forget every job."""
        self._types = list(spec.gpu_types)
        self._gpu_type = spec.node_type_index[spec.gpu_node]
        self._gpu_node = spec.gpu_node
        self._min = jobs.min_gpus.tolist()
        self._workers = jobs.max_gpus.tolist()
        #: per job: the rate on one GPU, by GPU id (the GPU's speed for this job)
        self._speed: dict[int, dict[int, float]] = {}
        #: per job: GPU types by decreasing speed for the job (0-based type indexes)
        self._order: dict[int, list[int]] = {}
        #: EasyScale-homo: the type each started job is bound to
        self._home: dict[int, int] = {}

    # ------------------------------------------------------------------ perf-model lookups
    def _gpu_speed(self, view, job: int, g: int) -> float:
        by_gpu = self._speed.setdefault(job, {})
        s = by_gpu.get(g)
        if s is None:
            s = by_gpu[g] = view.rate_with(job, np.array([g], dtype=np.int64))
        return s

    def _type_order(self, view, job: int) -> list[int]:
        """The GPU types the job may use, fastest first (by its rate on one GPU of each type)."""
        order = self._order.get(job)
        if order is None:
            allowed = view.allowed_nodes(job)
            usable = np.ones(len(self._gpu_type), dtype=bool) if allowed is None \
                else allowed[self._gpu_node]
            speed = {}
            for t in range(len(self._types)):
                gpus = np.flatnonzero(usable & (self._gpu_type == t))
                if len(gpus):
                    speed[t] = self._gpu_speed(view, job, int(gpus[0]))
            order = self._order[job] = sorted(speed, key=lambda t: (-speed[t], t))
        return order

    def waste(self, view, job: int, gpus: np.ndarray) -> float:
        """Waste of ``job`` on ``gpus``: the idle share of their aggregate speed when the job's
        logical workers are spread over them (:func:`dlsched_gym.perf.est_balance`)."""
        speeds = [self._gpu_speed(view, job, g) for g in np.asarray(gpus).tolist()]
        return est_balance(speeds, self._workers[job]).waste

    # ------------------------------------------------------------------ the round
    def schedule(self, view):
        """At round boundaries: start queued jobs on their smallest proposal, then grant the best
        increments, one per job."""
        for j in view.finished:
            self._speed.pop(j, None)
            self._order.pop(j, None)
            self._home.pop(j, None)
        rs = self.round_seconds
        now = view.now
        if abs(now - round(now / rs) * rs) > 1e-6 * max(1.0, rs):
            return ()
        plan = view.plan()
        ops: list = []
        for j in list(view.queue):
            if plan.free_gpus < self._min[j]:
                continue
            gpus = self._smallest(view, plan, j)
            if gpus is not None:
                ops.append(Start(j, gpus))
        if plan.free_gpus == 0:
            return ops
        # (the jobs started above are not running yet: they wait for the next round to grow)
        proposals = []
        for j in sorted(view.running):
            proposals.extend(self._increments(view, plan, j))
        proposals.sort(key=lambda p: (-round(p[0], 9), p[3], p[2]))
        granted = set()
        for _, _, _, j, t, k in proposals:
            if j in granted:
                continue
            cur = view.allocation(j)
            new = self._ordered_free(view, plan, j, t, cur)[:k]
            if len(new) < k:
                continue
            plan.reserve(new)
            ops.append(Resize(j, np.concatenate([cur, new])))
            granted.add(j)
        return ops

    def _types_for(self, view, job: int) -> list[int]:
        order = self._type_order(view, job)
        if not self.heterogeneous and job in self._home:
            return [self._home[job]]
        return order

    def _smallest(self, view, plan, job: int) -> np.ndarray | None:
        """``min_gpus`` GPUs of the fastest type with room (heter: else the fastest free GPUs)."""
        n = self._min[job]
        node_type = view.spec.node_type_index
        for t in self._types_for(view, job):
            gpus = plan.place(job, n, nodes=node_type == t)
            if gpus is not None:
                if not self.heterogeneous:
                    self._home[job] = t
                return gpus
        if not self.heterogeneous:
            return None
        free = self._free(view, plan, job)
        if len(free) < n:
            return None
        rank = {t: i for i, t in enumerate(self._type_order(view, job))}
        order = sorted(free.tolist(), key=lambda g: (rank[int(self._gpu_type[g])], g))
        gpus = np.array(order[:n], dtype=np.int64)
        plan.reserve(gpus)
        return gpus

    def _free(self, view, plan, job: int, t: int | None = None) -> np.ndarray:
        """Free GPUs the job may use in the plan (of type ``t`` if given)."""
        mask = plan.gpu_load == 0
        allowed = view.allowed_nodes(job)
        if allowed is not None:
            mask &= allowed[self._gpu_node]
        if t is not None:
            mask &= self._gpu_type == t
        return np.flatnonzero(mask)

    def _ordered_free(self, view, plan, job: int, t: int, cur: np.ndarray) -> np.ndarray:
        """Free GPUs of type ``t`` in the order increments take them: on the job's nodes first,
        then on the nodes with the most free GPUs, then by GPU id."""
        free = self._free(view, plan, job, t)
        nodes = self._gpu_node[free]
        other = ~np.isin(nodes, self._gpu_node[cur])
        return free[np.lexsort((free, -plan.node_free[nodes], other))]

    def _increments(self, view, plan, job: int) -> list[tuple]:
        """The job's best increment per GPU type: ``(inc_perf, speed_new, type rank, job, type,
        k)``."""
        cur = view.allocation(job)
        n = len(cur)
        room = min(self._workers[job] - n, math.floor(self.max_growth * n + 1e-9) - n)
        if room < 1:
            return []
        speed_now = view.rate_with(job, cur)
        if not speed_now > 0:
            return []
        out = []
        for rank, t in enumerate(self._types_for(view, job)):
            free = self._ordered_free(view, plan, job, t, cur)
            best = None
            for k in range(1, min(room, len(free)) + 1):
                gpus = np.concatenate([cur, free[:k]])
                speed = view.rate_with(job, gpus)
                if not speed > speed_now or self.waste(view, job, gpus) > self.max_waste + 1e-12:
                    continue
                score = 1.0 + (speed / speed_now - 1.0) / k
                if best is None or score > best[0] * (1 + _TIE) or (
                        score >= best[0] * (1 - _TIE) and speed > best[1]):
                    best = (score, speed, rank, job, t, k)
            if best is not None:
                out.append(best)
        return out


@register("elasticscale_homo", aliases=("easyscale_homo",))
class ElasticScaleHomo(ElasticScale):
    """EasyScale-homo: as ``elasticscale``, but every GPU of a job is of one type (see the module
    docstring).

    Args:
        round_seconds: scheduling interval (s); the artifact's is 60.
        max_waste: largest waste an increment may leave (the artifact's 0.30), in [0, 1).
        max_growth: a round may grow a job from n to at most ``max_growth * n`` GPUs, > 1.
    """

    name = "elasticscale_homo"
    heterogeneous = False
