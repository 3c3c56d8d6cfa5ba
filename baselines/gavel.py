"""Gavel: heterogeneity-aware max-min fairness (LAS) over GPU types, scheduled in rounds.

Narayanan, Santhanam, Kazhamiaka, Phanishayee and Zaharia, "Heterogeneity-Aware Cluster
Scheduling Policies for Deep Learning Workloads", OSDI'20. The authors' repository
(stanford-futuredata/gavel, ``scheduler/policies/max_min_fairness.py``, ``proportional.py``,
``scheduler/scheduler.py``) was read to settle details; no code is taken from it.

Two registered variants, following Gavel's ``max_min_fairness`` / ``max_min_fairness_perf``
naming:

- ``gavel``: heterogeneity-agnostic LAS. Every job's throughput is taken as 1 on every GPU type
  it can use, so the policy equalizes time (GPU-time for multi-GPU jobs) and does not care which
  type a job gets; the order in which the types are filled is shuffled each round (as Gavel does
  for its agnostic policies).
- ``gavel_perf``: heterogeneity-aware LAS on normalized effective throughput, with the
  throughput of each job on each type from the engine's perf model (``view.rate_with`` on a
  consolidated allocation of that type); types are filled fastest first.

What follows the paper and its code:

- Allocation X[j][k] = the fraction of time job j should spend on type k, the solution of
  ``max_X min_j s_j * sum_k T[j][k] X[j][k] / P_j`` subject to ``sum_k X[j][k] <= 1``,
  ``sum_j s_j X[j][k] <= n_k`` (GPUs of type k), ``X >= 0``; ``s_j`` is the job's GPU count (the
  paper's scale factor: a 1-GPU job gets ``s`` times the time of an ``s``-GPU one). ``P_j`` is
  the effective throughput under Gavel's proportional allocation, ``X[j][k] = n_k / N`` (the
  agnostic variant uses ``P_j = 1``). A linear program (scipy's HiGHS); recomputed at the first
  round after the set of jobs changed.
- Rounds of ``round_seconds`` (360 s). At each round, every (job, type) pair gets the priority
  ``X[j][k] / (rounds the job ran on type k / rounds since the allocation was computed)``
  (``X * 1e9`` when it has not run there yet, 0 when ``X`` is 0); type by type, jobs are taken
  in decreasing priority while their GPU count fits what is left of the type (jobs with
  priority 0 fill what is left: the round is work-conserving). A job kept on the same type keeps
  its GPUs (Gavel's lease extension); a job moved or not selected is preempted.

Reconstructions:

- Gavel's plain max-min LP can leave capacity unused when some jobs are capped at a full
  allocation; a second LP keeps every job at the max-min value and maximizes the sum of the
  normalized throughputs (a one-pass stand-in for Gavel's later water-filling policy).
- The normalizer is the proportional allocation (Gavel's ``ProportionalPolicy``); the
  repository's ``MaxMinFairnessPolicyWithPerf`` normalizes by the agnostic policy's allocation
  instead, whose split over types is whatever the solver returns.
- Ties in priority go to the job with the larger X on that type, then to the lower job index
  (Gavel breaks them with a deficit counter, then X).
- Decisions happen only at round boundaries (multiples of ``round_seconds``): a job arriving
  or GPUs freed between rounds wait for the next one, as in Gavel's round-based mechanism. When
  nothing runs, the scheduler asks for a wake-up at the next boundary.
- Placement inside a type is the engine's placement strategy restricted to that type's nodes; a
  job it cannot place (fragmentation) waits for the next round. Space sharing (job pairs) is not
  modelled.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix

from dlsched_gym.baselines._common import check_positive
from dlsched_gym.baselines.registry import register
from dlsched_gym.errors import SchedulerError
from dlsched_gym.scheduler import Preempt, Start, Wake

#: Priority of a (job, type) pair that has not run on the type since the last allocation
#: (multiplied by X, as Gavel does, so such jobs run in the order of their allocation).
_UNSERVED = 1e9


def max_min_allocation(coef: np.ndarray, sizes: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Gavel's max-min allocation: X (jobs x types) maximizing ``min_j sum_k coef[j, k] X[j, k]``
    with ``sum_k X[j, k] <= 1``, ``sum_j sizes[j] X[j, k] <= capacity[k]``, ``X >= 0`` and
    ``X[j, k] = 0`` where ``coef[j, k] == 0``; then, keeping every job at that minimum, the sum of
    ``coef * X`` is maximized (so no capacity that someone can use is left idle). Values are
    rounded to 1e-6.

    Jobs with no usable type (a row of zeros) are left out of the minimum and get nothing.
    """
    m, k = coef.shape
    usable = coef.sum(axis=1) > 0
    x = np.zeros((m, k))
    if not usable.any():
        return x
    c = coef[usable]
    mu = len(c)
    nv = mu * k
    var = np.arange(nv)
    job = var // k
    # variables: X flattened by job, then t. Rows: t - c_j . X_j <= 0 (one per job),
    # sum_k X_jk <= 1 (one per job), sum_j s_j X_jk <= n_k (one per type).
    rows = np.concatenate([job, np.arange(mu), mu + job, 2 * mu + var % k])
    cols = np.concatenate([var, np.full(mu, nv), var, var])
    data = np.concatenate([-c.ravel(), np.ones(mu), np.ones(nv), np.repeat(sizes[usable], k)])
    a = csr_matrix((data, (rows, cols)), shape=(2 * mu + k, nv + 1))
    b = np.concatenate([np.zeros(mu), np.ones(mu), capacity.astype(float)])
    bounds = np.zeros((nv + 1, 2))
    bounds[:nv, 1] = c.ravel() > 0
    bounds[nv, 1] = np.inf
    obj = np.zeros(nv + 1)
    obj[nv] = -1.0
    res = linprog(obj, A_ub=a, b_ub=b, bounds=bounds, method="highs")
    if res.status != 0:
        raise SchedulerError(f"gavel: max-min LP failed: {res.message}")
    # stage 2: t fixed at the optimum (a hair less, for the solver's tolerance), maximize the sum
    bounds[nv] = res.x[nv] * (1.0 - 1e-7)
    obj[:nv] = -c.ravel()
    obj[nv] = 0.0
    res2 = linprog(obj, A_ub=a, b_ub=b, bounds=bounds, method="highs")
    sol = (res2.x if res2.status == 0 else res.x)[:nv]
    # rounded to 1e-6 so that solver noise does not decide priority ties
    x[usable] = np.clip(np.round(sol.reshape(mu, k), 6), 0.0, 1.0)
    return x


@register("gavel")
class Gavel:
    """Gavel's round-based max-min fairness (LAS); heterogeneity-agnostic (see the module
    docstring; ``gavel_perf`` is the heterogeneity-aware variant).

    Args:
        round_seconds: round length (s); Gavel's default is 360.
    """

    name = "gavel"
    #: whether the policy uses per-type throughputs (``gavel_perf``)
    aware = False

    def __init__(self, round_seconds: float = 360.0) -> None:
        self.round_seconds = check_positive(self.name, "round_seconds", round_seconds)

    def reset(self, spec, jobs, rng) -> None:
        """Index the cluster's GPU types; start with no jobs."""
        self._rng = rng
        self._types = list(spec.gpu_types)
        node_type = spec.node_type_index
        self._type_nodes = [node_type == i for i in range(len(self._types))]
        self._capacity = np.array([spec.gpus_of_type(t) for t in self._types], dtype=float)
        self._total = float(self._capacity.sum())
        # GPUs of each type, node by node, the largest nodes first (a consolidated probe)
        first = spec.node_first_gpu
        self._probe = []
        for i in range(len(self._types)):
            nodes = sorted(np.flatnonzero(self._type_nodes[i]).tolist(), key=lambda v: -spec.node_gpus[v])
            self._probe.append(np.concatenate([np.arange(first[v], first[v + 1]) for v in nodes]))
        self._gpus = jobs.num_gpus.tolist()
        self._thr: dict[int, np.ndarray] = {}
        self._jobs: list[int] = []
        self._xm = np.zeros((0, len(self._types)))
        self._rounds = 0
        self._dirty = False
        self._wake = -math.inf

    @property
    def allocation(self) -> dict[int, dict[str, float]]:
        """The current allocation: job -> {GPU type: fraction of time}."""
        return {j: dict(zip(self._types, x.tolist())) for j, x in zip(self._jobs, self._xm)}

    def _throughputs(self, view, job: int) -> np.ndarray:
        """Throughput of ``job`` on each type (0 where it cannot run): 1 for the agnostic policy,
        the perf model's rate on a consolidated allocation for the aware one."""
        n = self._gpus[job]
        allowed = view.allowed_nodes(job)
        out = np.zeros(len(self._types))
        for i, probe in enumerate(self._probe):
            if n > self._capacity[i] or (allowed is not None and not (allowed & self._type_nodes[i]).any()):
                continue
            if allowed is not None:
                probe = probe[allowed[view.spec.gpu_node[probe]]]
                if len(probe) < n:
                    continue
            out[i] = view.rate_with(job, probe[:n]) if self.aware else 1.0
        return out

    def _solve(self) -> None:
        """Recompute the allocation over the current jobs and restart the round counts."""
        jobs = list(self._thr)
        k = len(self._types)
        thr = np.array([self._thr[j] for j in jobs]).reshape(len(jobs), k)
        sizes = np.array([self._gpus[j] for j in jobs], dtype=float)
        if self.aware:
            prop = thr @ (self._capacity / self._total)
            coef = np.divide(sizes[:, None] * thr, prop[:, None], out=np.zeros_like(thr),
                             where=prop[:, None] > 0)
        else:
            coef = sizes[:, None] * thr
        self._jobs = jobs
        self._sizes = sizes.astype(int).tolist()
        self._usable = thr > 0
        self._xm = max_min_allocation(coef, sizes, self._capacity)
        self._got = np.zeros((len(jobs), k))
        self._rounds = 0
        speed = thr.mean(axis=0) if jobs else np.zeros(k)
        self._fastest_first = sorted(range(k), key=lambda i: (-speed[i], i))

    def _type_order(self) -> list[int]:
        """The order in which the round fills the types: fastest first (by the mean throughput
        of the jobs) for the aware policy, shuffled for the agnostic one."""
        if self.aware:
            return self._fastest_first
        return self._rng.permutation(len(self._types)).tolist()

    def schedule(self, view):
        """Track arrivals and completions; at round boundaries re-solve if needed and pick the
        jobs of the round."""
        for j in view.finished:
            del self._thr[j]
            self._dirty = True
        for j in view.new_jobs:
            self._thr[j] = self._throughputs(view, j)
            self._dirty = True
        now = view.now
        rs = self.round_seconds
        boundary = round(now / rs) * rs
        if abs(now - boundary) > 1e-6 * max(1.0, rs):
            nxt = (math.floor(now / rs) + 1) * rs
            if not view.running and self._thr and self._wake < nxt:
                self._wake = nxt
                return [Wake(nxt)]
            return ()
        if not self._thr:
            return ()
        if self._dirty:
            self._solve()
            self._dirty = False
        return self._round(view)

    def _round(self, view):
        """Pick the round's jobs per type by priority and turn the choice into ops."""
        x, got, jobs, sizes = self._xm, self._got, self._jobs, self._sizes
        with np.errstate(divide="ignore", invalid="ignore"):
            prio = np.where(x <= 0, 0.0, np.where(got > 0, x * self._rounds / got, x * _UNSERVED))
        left = self._capacity.tolist()
        taken = np.zeros(len(jobs), dtype=bool)
        chosen: dict[int, int] = {}
        index = np.arange(len(jobs))
        for k in self._type_order():
            cand = np.flatnonzero(self._usable[:, k] & ~taken)
            # decreasing priority, then larger X, then lower job index (= submission order)
            order = cand[np.lexsort((index[cand], -x[cand, k], -prio[cand, k]))]
            room = left[k]
            for i in order.tolist():
                if room < 1:
                    break
                n = sizes[i]
                if n <= room:
                    room -= n
                    taken[i] = True
                    chosen[jobs[i]] = k
            left[k] = room
        node_type = view.spec.node_type_index
        gpu_node = view.spec.gpu_node
        plan = view.plan()
        ops: list = []
        placed: dict[int, int] = {}
        for j in list(view.running):
            gpus = view.allocation(j)
            k = int(node_type[gpu_node[gpus[0]]])
            if chosen.get(j) == k:
                placed[j] = k
            else:
                ops.append(Preempt(j))
                plan.release(gpus)
        starts = sorted((j for j in chosen if j not in placed), key=lambda j: (-self._gpus[j], j))
        for j in starts:
            k = chosen[j]
            gpus = plan.place(j, self._gpus[j], nodes=self._type_nodes[k])
            if gpus is not None:
                ops.append(Start(j, gpus))
                placed[j] = k
        self._rounds += 1
        row = {j: i for i, j in enumerate(jobs)}
        for j, k in placed.items():
            got[row[j], k] += 1
        return ops


@register("gavel_perf")
class GavelPerf(Gavel):
    """Gavel's heterogeneity-aware max-min fairness (LAS) on normalized effective throughput
    (see the module docstring).

    Args:
        round_seconds: round length (s); Gavel's default is 360.
    """

    name = "gavel_perf"
    aware = True
