"""Heet-inspired elastic scheduling on heterogeneous hosts: price-weighted matching and trading.

Mo, Xu and Xu, "Heet: Accelerating Elastic Training in Heterogeneous Deep Learning Clusters",
ASPLOS 2024 (doi:10.1145/3620665.3640375). The paper text was not available to us and no public
code was found (see ``specs/published-schedulers-a.md`` Sec. 2), so this is a **Heet-inspired
reconstruction** built from the abstract; every decision rule below is marked.

What follows the paper (its abstract):

- Elastic jobs on a cluster of heterogeneous *host types*; a job's scaling efficiency depends on
  the host type it runs on, and the scheduler predicts the throughput of every elastic
  configuration (job, host type, GPU count).
- A price function trades scaling efficiency (give a job a configuration it scales well on)
  against scheduling efficiency (serve more jobs).
- Decisions are made per round by minimum-weight bipartite matching, followed by opportunistic
  resource trading; jobs are resized or migrated, paying a restart cost.

Reconstructions ([I]: our choices, not the paper's):

- [I] Host type: nodes with the same GPU type, GPUs per node and link bandwidth. A job never
  spans host types.
- [I] Throughput prediction: the engine's perf model (``view.rate_with``) on the first ``n`` GPUs
  of the host type, node by node (as few nodes as possible), computed once per job; Heet's 3-D
  collaborative-filtering completion of sparse profiles is replaced by this oracle table. With
  ``type_aware=False`` (registered as ``heet_blind``, a type-blind elastic ablation) every host
  type is predicted at the mean over host types, so the scheduler knows how jobs scale with GPU
  count but not where.
- [I] GPU counts a job may take: the powers of two between its ``min_gpus`` and ``max_gpus`` and
  both ends (a rigid job: its request), at most the host type's GPUs.
- [I] Price of host type h after committing ``n`` more GPUs at utilisation u (GPUs committed this
  round / GPUs of h): ``p_h = (exp(beta u) - 1) / (exp(beta) - 1)`` (0 when empty, 1 when full;
  exponential as in online primal-dual pricing). Cost of giving job j the configuration (h, n):
  ``(T + r) (1 + lambda n p_h)`` with ``T = remaining work / X_j(h, n)`` the predicted time to
  finish and ``r = restart_seconds`` when a running job would change configuration (else 0).
  At low prices the fastest configuration wins; as a type fills, GPU-seconds ``n T`` (scaling
  efficiency) weigh more.
- [I] Matching: repeated minimum-cost assignments (``scipy.optimize.linear_sum_assignment``)
  of the unassigned jobs to the host types, each entry the job's cheapest GPU count on that type
  at the current prices; each assignment commits at most one job per host type, then prices are
  updated, until no unassigned job fits. Short jobs win the first assignments (their cost is
  smaller), which makes the round SRTF-like.
- [I] Trading, after the matching: (1) idle GPUs of a host type go, one allowed step at a time, to
  the job on that type that gains the most normalized throughput per added GPU (a running job
  the matching left unchanged grows only if its predicted finish time, ``restart_seconds``
  included, improves); (2) two jobs on different host types swap their allocations (host type
  and GPU count) when that raises their summed normalized throughput by more than ``trade_gain``
  (relative), best pair first, until no pair qualifies. Normalized throughput:
  ``X_j(h, n) / max_h' X_j(h', n_min)``. Moving GPUs between two jobs of one host type is left to
  the prices of the matching.
- [I] Rounds: a full re-plan (running and queued jobs) at multiples of ``round_seconds`` (300 s,
  Pollux/Sia-like); between rounds, arrivals and completions only match queued jobs to free GPUs.
- [I] Applying a plan: a job moving to another host type is preempted and restarted there (the
  engine's ``restart_overhead``); a job changing size on its host type is resized in place
  (``Resize``, the engine's ``resize_overhead``), shrinks before grows.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment

from dlsched_gym.baselines._common import check_bool, check_positive
from dlsched_gym.baselines.registry import register
from dlsched_gym.errors import ConfigError
from dlsched_gym.placement import free_gpus_on, take_from_nodes
from dlsched_gym.scheduler import Preempt, Resize, Start

#: Cost standing for "does not fit" in the assignment matrix (finite, as scipy requires).
_NO_FIT = 1e30


def job_sizes(min_gpus: int, max_gpus: int, cap: int) -> list[int]:
    """GPU counts an elastic job may take on a host type of ``cap`` GPUs: the powers of two in
    ``[min_gpus, max_gpus]`` plus both ends, those at most ``cap``, ascending."""
    lo, hi = int(min_gpus), int(max_gpus)
    sizes = {lo, hi} | {1 << k for k in range(hi.bit_length()) if lo <= 1 << k <= hi}
    return sorted(s for s in sizes if s <= cap)


def price(u: np.ndarray | float, beta: float) -> np.ndarray | float:
    """The host-type price at utilisation ``u`` in [0, 1]: ``(exp(beta u) - 1) / (exp(beta) - 1)``."""
    return np.expm1(beta * np.asarray(u, dtype=float)) / math.expm1(beta)


def host_types(spec) -> tuple[list[tuple[str, int, float]], np.ndarray]:
    """The cluster's host types, ``(gpu type, GPUs per node, bandwidth Gbit/s)`` in order of first
    appearance, and the host type index of every node (-1 for nodes without GPUs)."""
    keys: dict[tuple[str, int, float], int] = {}
    index = np.full(spec.num_nodes, -1, dtype=np.int64)
    for v, node in enumerate(spec.nodes):
        if node.gpus:
            index[v] = keys.setdefault((node.gpu_type, node.gpus, float(node.bandwidth_gbps)), len(keys))
    return list(keys), index


@register("heet")
class Heet:
    """Heet-inspired elastic scheduler for heterogeneous hosts (see the module docstring).

    Args:
        round_seconds: period of full re-plans (s).
        price_weight: lambda, the weight of the price term per GPU.
        price_steepness: beta of the exponential price.
        restart_seconds: the restart cost (s) the planner charges a running job that changes
            configuration (pass the engine's overhead; Pollux and Sia use 30 s).
        trade_gain: relative gain in summed normalized throughput a host-type swap must bring.
        type_aware: predict throughput per host type (False: one mean prediction for all types).
    """

    name = "heet"

    def __init__(self, round_seconds: float = 300.0, price_weight: float = 1.0,
                 price_steepness: float = 4.0, restart_seconds: float = 30.0,
                 trade_gain: float = 0.05, type_aware: bool = True) -> None:
        self.round_seconds = check_positive(self.name, "round_seconds", round_seconds)
        self.price_weight = check_positive(self.name, "price_weight", price_weight, allow_zero=True)
        self.price_steepness = check_positive(self.name, "price_steepness", price_steepness)
        self.restart_seconds = check_positive(self.name, "restart_seconds", restart_seconds,
                                              allow_zero=True)
        self.trade_gain = check_positive(self.name, "trade_gain", trade_gain, allow_zero=True)
        self.type_aware = check_bool(self.name, "type_aware", type_aware)

    # ------------------------------------------------------------------ setup
    def reset(self, spec, jobs, rng) -> None:
        """Group the nodes into host types and fix the configuration list (host type, GPU count)
        over every size any job may take."""
        self._spec = spec
        self._types, self._node_type = host_types(spec)
        k = len(self._types)
        self._type_nodes = [self._node_type == h for h in range(k)]
        self._cap = np.array([int(spec.node_gpus[m].sum()) for m in self._type_nodes], dtype=np.int64)
        first = spec.node_first_gpu
        self._probe = []
        for m in self._type_nodes:
            nodes = np.flatnonzero(m)
            self._probe.append(np.concatenate([np.arange(first[v], first[v + 1]) for v in nodes]))
        self._min = jobs.min_gpus.astype(np.int64)
        self._max = jobs.max_gpus.astype(np.int64)
        sizes = sorted({s for lo, hi in set(zip(self._min.tolist(), self._max.tolist()))
                        for s in job_sizes(lo, hi, int(self._cap.max()))})
        self._cfg_type = np.array([h for h in range(k) for s in sizes if s <= self._cap[h]], dtype=np.int64)
        self._cfg_n = np.array([s for h in range(k) for s in sizes if s <= self._cap[h]], dtype=np.int64)
        self._cfg_of = {(int(h), int(n)): c for c, (h, n) in enumerate(zip(self._cfg_type, self._cfg_n))}
        self._x: dict[int, np.ndarray] = {}  # job -> predicted rate per configuration (0: not allowed)
        self._norm: dict[int, float] = {}

    def predictions(self, view, job: int) -> np.ndarray:
        """Predicted rate (work units/s) of ``job`` on every configuration; 0 where the job may
        not take it (size outside its set, GPU type or region not allowed, too few GPUs)."""
        allowed = view.allowed_nodes(job)
        x = np.zeros(len(self._cfg_n))
        for h, probe in enumerate(self._probe):
            if allowed is not None:
                probe = probe[allowed[self._spec.gpu_node[probe]]]
            for n in job_sizes(self._min[job], self._max[job], len(probe)):
                x[self._cfg_of[(h, n)]] = view.rate_with(job, probe[:n])
        if not self.type_aware:
            for n in np.unique(self._cfg_n).tolist():
                cols = np.flatnonzero((self._cfg_n == n) & (x > 0))
                if len(cols):
                    x[cols] = x[cols].mean()
        return x

    def _track(self, view) -> None:
        for j in view.finished:
            self._x.pop(j, None)
            self._norm.pop(j, None)
        for j in view.new_jobs:
            x = self.predictions(view, j)
            if not (x > 0).any():
                sizes = dict(zip(self._types, self._cap.tolist()))
                raise ConfigError(
                    f"heet: job {view.jobs.job_id[j]!r} needs at least {self._min[j]} GPUs of one "
                    f"host type it may use; expected a host type that large (GPUs per host type "
                    f"(GPU type, GPUs per node, Gbit/s): {sizes})")
            self._x[j] = x
            self._norm[j] = float(x[self._cfg_n == self._cfg_n[x > 0].min()].max())

    # ------------------------------------------------------------------ decisions
    def schedule(self, view):
        """At round boundaries re-plan every job; otherwise match queued jobs to free GPUs."""
        self._track(view)
        rs = self.round_seconds
        now = view.now
        boundary = abs(now - round(now / rs) * rs) <= 1e-6 * max(1.0, rs)
        if not boundary:
            if not view.queue or view.free_gpus == 0:
                return ()
            return self._fill(view)
        if not view.queue and not view.running:
            return ()
        return self._replan(view)

    def _current(self, view) -> dict[int, int]:
        """Running job -> its configuration index (-1 if it matches none of them)."""
        gpu_node = self._spec.gpu_node
        out = {}
        for j in view.running:
            g = view.allocation(j)
            out[j] = self._cfg_of.get((int(self._node_type[gpu_node[g[0]]]), len(g)), -1)
        return out

    def _fill(self, view):
        """Match queued jobs to the free GPUs; running jobs keep theirs."""
        online = view.node_online
        free = np.array([int(view.node_free[m & online].sum()) for m in self._type_nodes])
        used = self._cap - free
        queued = [j for j in view.queue if j in self._x]
        target = self.match(view, queued, free, used, {})
        return self._apply(view, target, {})

    def _replan(self, view):
        """The full round: matching over all jobs, then trading, then the ops."""
        current = self._current(view)
        online = view.node_online
        cap = np.array([int(view.spec.node_gpus[m & online].sum()) for m in self._type_nodes])
        jobs = sorted(current) + [j for j in view.queue if j in self._x]
        target = self.match(view, jobs, cap.copy(), self._cap - cap, current)
        left = cap.copy()
        for c in target.values():
            left[self._cfg_type[c]] -= self._cfg_n[c]
        self.trade(view, target, left, current)
        return self._apply(view, target, current)

    def match(self, view, jobs: list[int], free: np.ndarray, used: np.ndarray,
              current: dict[int, int]) -> dict[int, int]:
        """Price-weighted matching of ``jobs`` to host types (see the module docstring).

        Args:
            jobs: candidate jobs.
            free: GPUs per host type the matching may hand out (updated in place).
            used: GPUs per host type already committed (updated in place).
            current: running job -> current configuration (a change pays ``restart_seconds``).

        Returns:
            job -> configuration index, for the jobs that got one.
        """
        out: dict[int, int] = {}
        if not jobs:
            return out
        x = np.array([self._x[j] for j in jobs])
        rem = np.array([view.predict_remaining(j) for j in jobs])
        with np.errstate(divide="ignore"):
            t = np.where(x > 0, rem[:, None] / np.where(x > 0, x, 1.0), np.inf)
        for i, j in enumerate(jobs):
            c = current.get(j)
            if c is not None:
                t[i] += self.restart_seconds
                if c >= 0:
                    t[i, c] -= self.restart_seconds
        ctype, cn = self._cfg_type, self._cfg_n
        cap = np.maximum(self._cap, 1)
        k = len(self._types)
        rows = np.arange(len(jobs))
        while len(rows):
            fits = cn <= free[ctype]
            p = price((used[ctype] + cn) / cap[ctype], self.price_steepness)
            cost = t[rows] * (1.0 + self.price_weight * cn * p)
            cost[:, ~fits] = np.inf
            best = np.full((len(rows), k), np.inf)
            arg = np.zeros((len(rows), k), dtype=np.int64)
            for h in range(k):
                cols = np.flatnonzero(ctype == h)
                if len(cols):
                    a = cost[:, cols].argmin(axis=1)
                    arg[:, h] = cols[a]
                    best[:, h] = cost[np.arange(len(rows)), cols[a]]
            if not np.isfinite(best).any():
                break
            r, h = linear_sum_assignment(np.where(np.isfinite(best), best, _NO_FIT))
            ok = np.isfinite(best[r, h])
            done = []
            for ri, hi in zip(r[ok].tolist(), h[ok].tolist()):
                c = int(arg[ri, hi])
                out[jobs[rows[ri]]] = c
                free[hi] -= cn[c]
                used[hi] += cn[c]
                done.append(ri)
            rows = np.delete(rows, done)
        return out

    def trade(self, view, target: dict[int, int], left: np.ndarray, current: dict[int, int]) -> None:
        """Opportunistic trading on the matched ``target`` (job -> configuration, changed in
        place): hand idle GPUs (``left`` per host type, updated) out by normalized-throughput
        gain per GPU, then swap allocations between host types while that raises the summed
        normalized throughput of the pair by more than ``trade_gain``.

        A running job that the matching left unchanged (``current``) only grows when its
        predicted finish time, ``restart_seconds`` included, improves."""
        if not target:
            return
        jobs = sorted(target)
        c = np.array([target[j] for j in jobs], dtype=np.int64)
        x = np.array([self._x[j] for j in jobs])
        rho = x / np.array([self._norm[j] for j in jobs])[:, None]
        rem = np.array([view.predict_remaining(j) for j in jobs])
        fixed = np.array([current.get(j, -2) == target[j] for j in jobs])
        ctype, cn = self._cfg_type, self._cfg_n
        for h in range(len(self._types)):
            cols = np.flatnonzero(ctype == h)
            while left[h] > 0:
                rows = np.flatnonzero(ctype[c] == h)
                if not len(rows):
                    break
                step = cn[cols][None, :] - cn[c[rows]][:, None]
                ok = (step > 0) & (step <= left[h]) & (x[rows][:, cols] > 0)
                a = np.where(ok, step, np.iinfo(np.int64).max).argmin(axis=1)
                has = ok[np.arange(len(rows)), a]
                nxt = cols[a]
                with np.errstate(divide="ignore", invalid="ignore"):
                    gain = (rho[rows, nxt] - rho[rows, c[rows]]) / np.maximum(cn[nxt] - cn[c[rows]], 1)
                    sooner = rem[rows] / x[rows, nxt] + self.restart_seconds < rem[rows] / x[rows, c[rows]]
                gain = np.where(has & (gain > 0) & (~fixed[rows] | sooner), gain, -np.inf)
                i = int(gain.argmax())
                if gain[i] == -np.inf:
                    break
                row = rows[i]
                left[h] -= cn[nxt[i]] - cn[c[row]]
                c[row] = nxt[i]
                fixed[row] = False
        for _ in range(len(jobs)):
            cur = rho[np.arange(len(jobs)), c]
            m = rho[:, c]  # m[a, b]: job a's normalized throughput on b's allocation
            gain = m + m.T - cur[:, None] - cur[None, :]
            valid = (ctype[c][:, None] != ctype[c][None, :]) & (x[:, c] > 0) & (x[:, c] > 0).T
            gain = np.where(valid & (gain > self.trade_gain * (cur[:, None] + cur[None, :])), gain, -np.inf)
            a, b = np.unravel_index(int(gain.argmax()), gain.shape)
            if gain[a, b] == -np.inf:
                break
            c[a], c[b] = c[b], c[a]
        for j, cj in zip(jobs, c.tolist()):
            target[j] = cj

    # ------------------------------------------------------------------ ops
    def _take(self, plan, n: int, mask: np.ndarray, prefer: np.ndarray | None = None) -> np.ndarray | None:
        """``n`` free GPUs on the nodes of ``mask`` in ``plan``: one node by best fit when one
        holds them, else nodes in ``prefer`` first, then by most free GPUs."""
        node_free = np.where(mask, plan.node_free, 0)
        if prefer is None:
            fit = np.flatnonzero(node_free >= n)
            if len(fit):
                v = int(fit[node_free[fit].argmin()])
                return free_gpus_on(v, n, plan.gpu_load, self._spec)
        key = -node_free.astype(float)
        if prefer is not None:
            key[prefer] -= 1e9
        order = np.argsort(key, kind="stable")
        return take_from_nodes(order, n, node_free, plan.gpu_load, self._spec)

    def _apply(self, view, target: dict[int, int], current: dict[int, int]) -> list:
        """Turn the target configurations into ops: preempt (dropped or moving jobs), shrink,
        grow, start."""
        ctype, cn = self._cfg_type, self._cfg_n
        spec = self._spec
        plan = view.plan()
        ops: list = []
        shrink, grow = [], []
        for j in sorted(current):
            c0, c = current[j], target.get(j)
            g = view.allocation(j)
            h0 = int(self._node_type[spec.gpu_node[g[0]]])
            if c is None or int(ctype[c]) != h0:
                ops.append(Preempt(j))
                plan.release(g)
                continue
            target.pop(j)
            if c == c0:
                continue
            (shrink if cn[c] < len(g) else grow).append((j, int(cn[c]), g))
        for j, n, g in shrink:
            nodes = spec.gpu_node[g]
            counts = np.bincount(nodes, minlength=spec.num_nodes)
            keep = g[np.lexsort((g, -counts[nodes]))][:n]
            plan.release(np.setdiff1d(g, keep))
            ops.append(Resize(j, np.sort(keep)))
        for j, n, g in grow:
            mask = self._type_nodes[int(self._node_type[spec.gpu_node[g[0]]])] & view.node_online
            allowed = view.allowed_nodes(j)
            if allowed is not None:
                mask = mask & allowed
            extra = self._take(plan, n - len(g), mask, prefer=np.unique(spec.gpu_node[g]))
            if extra is not None:
                plan.reserve(extra)
                ops.append(Resize(j, np.sort(np.concatenate([g, extra]))))
        for j in sorted(target, key=lambda j: (-cn[target[j]], j)):
            c = target[j]
            mask = self._type_nodes[int(ctype[c])] & view.node_online
            allowed = view.allowed_nodes(j)
            if allowed is not None:
                mask = mask & allowed
            gpus = self._take(plan, int(cn[c]), mask)
            if gpus is not None:
                plan.reserve(gpus)
                ops.append(Start(j, gpus))
        return ops


@register("heet_blind", aliases=("heet-blind",))
class HeetBlind(Heet):
    """The Heet-inspired scheduler with type-blind throughput predictions (one mean prediction
    for every host type): an elastic scheduler that ignores host-type-dependent scaling.

    Args:
        round_seconds: period of full re-plans (s).
        price_weight: lambda, the weight of the price term per GPU.
        price_steepness: beta of the exponential price.
        restart_seconds: the restart cost (s) charged to a running job that changes configuration.
        trade_gain: relative gain in summed normalized throughput a host-type swap must bring.
    """

    name = "heet_blind"

    def __init__(self, round_seconds: float = 300.0, price_weight: float = 1.0,
                 price_steepness: float = 4.0, restart_seconds: float = 30.0,
                 trade_gain: float = 0.05) -> None:
        super().__init__(round_seconds, price_weight, price_steepness, restart_seconds, trade_gain,
                         type_aware=False)
