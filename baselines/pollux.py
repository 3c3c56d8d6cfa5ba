"""Pollux (lite): goodput-based elastic allocation maximising a power mean of speed-ups.

Qiao, Choe, Subramanya, Neiswanger, Ho, Zhang, Ganger and Xing, "Pollux: Co-adaptive Cluster
Scheduling for Goodput-Optimized Deep Learning", OSDI 2021. Artifact: ``petuum/adaptdl``, branch
``osdi21-artifact``, ``simulator/`` (read for understanding, not copied). A faithful "lite"
version: the objective, speed-up, restart penalty and interference rule follow the paper; the
optimiser and the admission rule are ours (marked [I] below), so this is Pollux-inspired where
marked.

What follows the paper (spec: ``published-schedulers-b.md``, "Pollux (OSDI'21)"):

- A job's goodput on ``K`` GPUs over ``N`` nodes is Pollux's model, system throughput times
  statistical efficiency from the gradient noise scale, with the batch size chosen to maximise
  it (:func:`dlsched_gym.goodput.best_goodput`; parameters fitted to the artifact's profiles).
- ``SPEEDUP_j(A) = goodput_j(A) / goodput_j(a_f)``, ``a_f`` the fair baseline: 1 GPU (the job's
  ``min_gpus`` when that is larger, packed on the fewest nodes).
- Fitness = generalised (power) mean of the speed-ups of the active jobs,
  ``(mean_j SPEEDUP_j^p)^(1/p)`` with ``p = -1`` (the paper's default), re-optimised every
  ``round_seconds`` = 60 s; decisions are taken only at round boundaries.
- Restart penalty: a running job whose allocation changes has its speed-up multiplied by
  ``max(T - S delta, 0) / (T + delta)``, ``T`` its age (s since submission), ``S`` how often it
  was re-allocated so far, ``delta = restart_delay`` = 30 s; so a re-allocation happens only when
  its gain beats the penalty. (The engine separately charges its ``resize_overhead``; pass
  ``perf.overhead("pollux")``, 30 s, to charge the same delay.)
- Interference avoidance: no node holds GPUs of two distributed (multi-node) jobs.

Reconstructions ([I]: our choice, not the paper's):

- [I] Search: the paper runs a genetic algorithm (population 100, 100 generations) over
  node-by-job matrices. Here a greedy hill climb over GPU counts, then a placement pass:
  (1) running jobs keep their counts; queued jobs are admitted in queue order at ``min_gpus``,
  from free GPUs or by taking GPUs from elastic jobs above their minimum (the one losing the least
  fitness first), since with ``p = -1`` a job left at speed-up 0 makes the fitness 0; (2) free
  GPUs go, step by step, to the grow move (a job, +d GPUs) with the largest fitness gain per GPU;
  (3) with no useful free GPU, d GPUs move from one job to another while that raises the fitness.
  While counting, a changed job is assumed packed on the fewest nodes; (4) placement keeps every
  GPU a job still uses, shrinks a job on its least-used nodes first, and grows it on its own nodes,
  then on the best-fitting node, then on the nodes with the most free GPUs; a job that cannot be
  placed (interference, GPU type) gets fewer GPUs or waits for the next round.
- [I] The restart penalty is applied to running jobs only; a queued job's first start is not a
  re-allocation. ``S`` counts this scheduler's re-allocations of the job.
- [I] Jobs whose model has no Pollux profile use the engine's perf model
  (``view.rate_with`` on GPUs packed on the fewest nodes) as goodput, i.e. statistical
  efficiency 1. Rigid jobs (``min_gpus == max_gpus``) are either run at their size or wait.
- [I] The gradient noise scale is one number per application (see :mod:`dlsched_gym.goodput`),
  not re-measured as the job trains; GPU types are not modelled by the goodput profiles.

Deviation to know when reading results: the engine's progress follows its perf model. With the
default perf models a job progresses at throughput with its trace batch size, so Pollux chooses by
goodput while jobs progress at throughput; pass
``perf=dlsched_gym.goodput.GoodputModel(adaptive=True)`` to make jobs progress at goodput with the
batch size Pollux's job agent would pick (as ``benchmarks/reproduce/pollux.py`` does).
"""

from __future__ import annotations

import math

import numpy as np

from dlsched_gym import goodput
from dlsched_gym.baselines._common import check_bool, check_positive
from dlsched_gym.baselines.registry import register
from dlsched_gym.errors import ConfigError
from dlsched_gym.scheduler import Resize, Start, Wake

#: Gain below which a move is not worth making (fitness-sum units).
_EPS = 1e-9
#: Step sizes (GPUs) of the grow and transfer moves.
_STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)


def power_mean(speedups, p: float) -> float:
    """Generalised mean ``(mean s^p)^(1/p)`` of ``speedups`` (geometric mean for ``p = 0``);
    0 when ``p <= 0`` and some speed-up is 0."""
    s = np.asarray(speedups, dtype=float)
    if s.size == 0:
        raise ConfigError("power_mean: need at least one speed-up")
    if (s < 0).any():
        raise ConfigError(f"power_mean: speed-ups must be >= 0, got {s.tolist()}")
    if p <= 0 and (s == 0).any():
        return 0.0
    if p == 0:
        return float(np.exp(np.mean(np.log(s))))
    return float(np.mean(s ** p) ** (1.0 / p))


def utility(s: float, p: float) -> float:
    """A monotone transform of one speed-up whose sum over jobs orders allocations as the power
    mean does: ``s^p / p`` (``log s`` for ``p = 0``); ``-inf`` for ``s <= 0`` when ``p <= 0``."""
    if s <= 0:
        return -math.inf if p <= 0 else 0.0
    if p == 0:
        return math.log(s)
    return s ** p / p


def restart_factor(age: float, reallocations: int, delay: float) -> float:
    """Pollux's re-allocation factor ``max(T - S delta, 0) / (T + delta)``."""
    return max(age - reallocations * delay, 0.0) / (age + delay) if age + delay > 0 else 0.0


@register("pollux")
class Pollux:
    """Pollux (lite): every round, allocate GPUs to maximise the power mean of goodput speed-ups.

    Args:
        round_seconds: re-optimisation period (s); the paper uses 60.
        p: power of the generalised mean (the paper's default -1; 1 is the plain mean).
        restart_delay: ``delta`` of the restart penalty (s); the paper's 30.
        interference_avoidance: forbid two distributed jobs on one node.
        profiles: extra goodput profiles, model name -> :class:`dlsched_gym.goodput.AppParams`
            (models not given use the bundled Pollux applications, else the engine's perf model).
    """

    name = "pollux"

    def __init__(self, round_seconds: float = 60.0, p: float = -1.0, restart_delay: float = 30.0,
                 interference_avoidance: bool = True, profiles: dict | None = None) -> None:
        self.round_seconds = check_positive(self.name, "round_seconds", round_seconds)
        try:
            self.p = float(p)
        except (TypeError, ValueError):
            self.p = math.nan
        if not math.isfinite(self.p):
            raise ConfigError(f"scheduler 'pollux': parameter 'p' must be a finite number, got {p!r}")
        self.restart_delay = check_positive(self.name, "restart_delay", restart_delay,
                                            allow_zero=True)
        self.interference_avoidance = check_bool(self.name, "interference_avoidance",
                                                 interference_avoidance)
        self.profiles = dict(profiles or {})
        bad = sorted(k for k, v in self.profiles.items() if not isinstance(v, goodput.AppParams))
        if bad:
            raise ConfigError(f"scheduler 'pollux': profiles {bad} must be goodput.AppParams")

    # ------------------------------------------------------------------ setup
    def reset(self, spec, jobs, rng) -> None:
        """Resolve each job's goodput profile; clear the per-job state."""
        self._spec = spec
        self._node_size = int(spec.max_node_gpus)
        self._first = spec.node_first_gpu.tolist()
        names = [jobs.names["model"][c] for c in np.asarray(jobs.model).tolist()]
        self._app = [self.profiles.get(m) or (goodput.params(m) if goodput.app_name(m) else None)
                     for m in names]
        self._min = [int(x) for x in np.asarray(jobs.min_gpus).tolist()]
        self._max = [min(int(x), spec.num_gpus) for x in np.asarray(jobs.max_gpus).tolist()]
        self._submit = [float(x) for x in np.asarray(jobs.submit_time).tolist()]
        self._reallocs = [0] * jobs.n
        self._base: dict[int, float] = {}
        self._rates: dict[tuple[int, int, int], float] = {}
        self._wake = -math.inf
        self._changed = True
        self._online = -1

    # ------------------------------------------------------------------ model
    def _goodput(self, view, j: int, k: int, n: int) -> float:
        app = self._app[j]
        if app is not None:
            return goodput.best_goodput(app, k, n)[0]
        key = (j, k, n)
        r = self._rates.get(key)
        if r is None:
            r = view.rate_with(j, self._example_gpus(k, n))
            self._rates[key] = r
        return r

    def _example_gpus(self, k: int, n: int) -> np.ndarray:
        """``k`` GPU ids on the first ``n`` nodes, as evenly as their sizes allow (further nodes
        when those are too small)."""
        out, left = [], k
        for v, size in enumerate(self._spec.node_gpus.tolist()):
            if not left:
                break
            take = min(size, left, math.ceil(left / max(n - v, 1)))
            out.extend(range(self._first[v], self._first[v] + take))
            left -= take
        return np.asarray(out, dtype=np.int64)

    def speedup(self, view, j: int, k: int, n: int | None = None) -> float:
        """Goodput of job ``j`` on ``k`` GPUs over ``n`` nodes (default: packed) over its goodput
        at the fair baseline (``max(1, min_gpus)`` GPUs, packed)."""
        if k <= 0:
            return 0.0
        nodes = goodput.packed_nodes(k, self._node_size) if n is None else n
        base = self._base.get(j)
        if base is None:
            m = max(self._min[j], 1)
            base = self._goodput(view, j, m, goodput.packed_nodes(m, self._node_size))
            self._base[j] = base
        if base <= 0:
            return 1.0
        return self._goodput(view, j, k, min(nodes, k)) / base

    # ------------------------------------------------------------------ decision
    def schedule(self, view):
        """At round boundaries, re-optimise the allocation; otherwise wait for the next one.

        A round is skipped when it cannot change anything: no arrival, completion or change of
        the online GPUs since the previous round, which issued no op, and no elastic job (whose
        restart penalty fades with age) is active."""
        if view.new_jobs or view.finished or view.online_gpus != self._online:
            self._changed = True
            self._online = view.online_gpus
        now = view.now
        rs = self.round_seconds
        boundary = round(now / rs) * rs
        if abs(now - boundary) > 1e-6 * max(1.0, rs):
            nxt = (math.floor(now / rs) + 1) * rs
            if not view.running and len(view.queue) and self._wake < nxt:
                self._wake = nxt
                return [Wake(nxt)]
            return ()
        if not len(view.queue) and not len(view.running):
            return ()
        if not self._changed and not any(self._max[j] > self._min[j]
                                          for j in (*view.running, *view.queue)):
            return ()
        ops = self._place(view, self._optimise_counts(view))
        self._changed = bool(ops)
        return ops

    def _value(self, view, j: int, k: int, cur: dict[int, tuple[int, int]]) -> float:
        """Utility of job ``j`` at ``k`` GPUs (restart penalty when a running job changes)."""
        if j in cur:
            ck, cn = cur[j]
            if k == ck:
                return utility(self.speedup(view, j, k, cn), self.p)
            f = restart_factor(view.now - self._submit[j], self._reallocs[j], self.restart_delay)
            return utility(self.speedup(view, j, k) * f, self.p)
        return utility(self.speedup(view, j, k), self.p)

    def _optimise_counts(self, view) -> dict[int, int]:
        """GPU counts of the active jobs after admission, grow and transfer moves."""
        gpu_node = self._spec.gpu_node_list
        cur: dict[int, tuple[int, int]] = {}
        for j in view.running:
            g = view.allocation(j).tolist()
            cur[j] = (len(g), len({gpu_node[x] for x in g}))
        counts = {j: kn[0] for j, kn in cur.items()}
        free = int(np.sum(np.where(view.node_online, view.node_free, 0)))

        def value(j, k):
            return self._value(view, j, k, cur)

        def shrinkable():
            return [i for i in counts if counts[i] > self._min[i]]

        def loss(i):  # utility change of giving up one GPU (-inf: the job would stall)
            return value(i, counts[i] - 1) - value(i, counts[i])

        for j in list(view.queue):
            need = self._min[j]
            spare = sum(counts[i] - self._min[i] for i in shrinkable())
            if need > free + spare:
                continue
            while free < need:
                counts[max(shrinkable(), key=loss)] -= 1
                free += 1
            counts[j] = need
            free -= need

        for _ in range(4 * self._spec.num_gpus + 16):
            used = self._improve(counts, value, free)
            if used is None:
                break
            free -= used
        return counts

    def _improve(self, counts: dict[int, int], value, free: int) -> int | None:
        """Apply the best grow move (on free GPUs) or, failing that, the best transfer between two
        jobs; return the free GPUs it used (None: no move raises the fitness)."""
        elastic = [j for j in counts if self._max[j] > self._min[j]]
        base = {j: value(j, counts[j]) for j in elastic}
        best = (_EPS, None, 0)
        for j in elastic:
            for d in _STEPS:
                k = counts[j] + d
                if d > free or k > self._max[j]:
                    break
                gain = (value(j, k) - base[j]) / d
                if gain > best[0]:
                    best = (gain, j, d)
        if best[1] is not None:
            counts[best[1]] += best[2]
            return best[2]
        best_move, best_gain = None, _EPS
        for d in _STEPS:
            grows = sorted(((value(j, counts[j] + d) - base[j], j) for j in elastic
                            if counts[j] + d <= self._max[j]), reverse=True)[:2]
            shrinks = sorted(((value(i, counts[i] - d) - base[i], i) for i in elastic
                              if counts[i] - d >= self._min[i]), reverse=True)[:2]
            for g, j in grows:
                for s, i in shrinks:
                    if i != j and g + s > best_gain:
                        best_move, best_gain = (i, j, d), g + s
        if best_move is None:
            return None
        i, j, d = best_move
        counts[i] -= d
        counts[j] += d
        return 0

    # ------------------------------------------------------------------ placement
    def _place(self, view, counts: dict[int, int]) -> list:
        """Turn GPU counts into ops, keeping GPUs jobs already hold (see the module docstring)."""
        spec = self._spec
        gpu_node = spec.gpu_node_list
        online = view.node_online.tolist()
        load = view.gpu_load
        free_ids: list[list[int]] = []
        for v in range(spec.num_nodes):
            ids = range(self._first[v], self._first[v + 1])
            free_ids.append([g for g in ids if load[g] == 0] if online[v] else [])
        held: dict[int, dict[int, list[int]]] = {}
        for j in view.running:
            by_node: dict[int, list[int]] = {}
            for g in view.allocation(j).tolist():
                by_node.setdefault(gpu_node[g], []).append(g)
            held[j] = by_node
        shrink_ops, grow_ops, start_ops = [], [], []
        for j, by_node in held.items():  # shrink on the least-used nodes first
            extra = sum(len(x) for x in by_node.values()) - counts.get(j, 0)
            if extra <= 0 or j not in counts:
                continue
            for v in sorted(by_node, key=lambda v: (len(by_node[v]), v)):
                while extra and by_node[v]:
                    free_ids[v].append(by_node[v].pop())
                    extra -= 1
                if not by_node[v]:
                    del by_node[v]
            shrink_ops.append(Resize(j, _ids(by_node)))
        owner = [-1] * spec.num_nodes  # the distributed job on each node
        for j, by_node in held.items():
            if len(by_node) > 1:
                for v in by_node:
                    owner[v] = j
        order = sorted((j for j in counts if counts[j] > sum(map(len, held.get(j, {}).values()))),
                       key=lambda j: (-counts[j], j))
        for j in order:
            by_node = held.get(j, {})
            have = sum(len(x) for x in by_node.values())
            lowest = self._min[j] if j not in held else have
            got = self._grow(view, j, by_node, counts[j], lowest, free_ids, owner)
            if got is None:
                continue
            if j in held:
                grow_ops.append(Resize(j, _ids(got)))
                self._reallocs[j] += 1
            else:
                start_ops.append(Start(j, _ids(got)))
        for op in shrink_ops:
            self._reallocs[op.job] += 1
        return shrink_ops + grow_ops + start_ops

    def _grow(self, view, j: int, by_node: dict[int, list[int]], target: int, lowest: int,
              free_ids: list[list[int]], owner: list[int]) -> dict[int, list[int]] | None:
        """Add GPUs to job ``j`` (holding ``by_node``) up to ``target``; None when it cannot reach
        more than ``lowest`` GPUs (or ``lowest`` itself for a queued job). Reserves the GPUs."""
        allowed = view.allowed_nodes(j)
        avoid = self.interference_avoidance
        pick: dict[int, int] = {}
        left = target - sum(len(x) for x in by_node.values())
        for v in sorted(by_node, key=lambda v: (-len(free_ids[v]), v)):  # own nodes first
            take = min(len(free_ids[v]), left)
            if take:
                pick[v] = take
                left -= take
        cand = [v for v in range(len(free_ids))
                if left and v not in by_node and free_ids[v] and (allowed is None or allowed[v])]
        single = [v for v in cand if len(free_ids[v]) >= left]
        if single and not by_node:  # a queued job that fits one node is not distributed
            v = min(single, key=lambda v: (len(free_ids[v]), v))  # best fit
            pick[v], left = left, 0
        elif cand:  # the job will span several nodes: none may hold another distributed job
            if avoid:
                clear = all(owner[v] in (-1, j) for v in by_node)
                cand = [v for v in cand if owner[v] == -1] if clear else []
            single = [v for v in cand if len(free_ids[v]) >= left]
            if single:
                v = min(single, key=lambda v: (len(free_ids[v]), v))
                pick[v], left = left, 0
            for v in sorted(cand, key=lambda v: (-len(free_ids[v]), v)):
                if not left:
                    break
                take = min(len(free_ids[v]), left)
                pick[v] = take
                left -= take
        got = target - left
        if got < lowest or (got == lowest and by_node):
            return None
        out = {v: list(g) for v, g in by_node.items()}
        for v, take in pick.items():
            out.setdefault(v, []).extend(free_ids[v][:take])
            del free_ids[v][:take]
        if len(out) > 1:
            for v in out:
                owner[v] = j
        return out


def _ids(by_node: dict[int, list[int]]) -> np.ndarray:
    return np.asarray(sorted(g for gs in by_node.values() for g in gs), dtype=np.int64)
