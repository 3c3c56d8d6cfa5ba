"""NetPack-inspired placement under statistical in-network aggregation, and its placement baselines.

Paper: S. Zhao, F. Xu, Y. Liu, H. Tian, J. Wang, C. Wu, "Training Job Placement in Clusters with
Statistical In-Network Aggregation" (NetPack), ASPLOS 2024, doi 10.1145/3617232.3624863. Only the
abstract is public; the procedure follows the prototype controller ``ZeBraHack0/ATP-Controller``
(2021, ``wpa_place.py``, ``wpaq_place.py``, ``qscheduler.py``) as summarised in the project's spec
(``shared/specs/published-schedulers-a.md`` Sec. 1). It is therefore labelled "-inspired".

What follows the paper/prototype ([A] abstract, [C] prototype code):

- jobs are placed one at a time in FIFO order with head-of-line blocking, at periodic batches;
  placements are sticky (no preemption, no migration) [A/C];
- *steady-state estimation* (:func:`steady_state`): max-min fair progressive filling of every
  distributed job's bandwidth over the server links and the switch's shared in-network-aggregation
  (INA) capacity; while INA capacity is left a job's parameter-server (PS) link carries one flow,
  once it is exhausted the PS link carries one flow per worker server (PS fallback) [C];
- the "connectionless" rule for jobs that fit on one server (exact fit, else least leftover, ties to
  the busier link, then more residual bandwidth) [C];
- the server-value knapsack DP ``max sum(r_i - 1/(l_i+1)) + 1/(1 + max l_i)`` over servers that give
  all their free GPUs, with over-sized totals allowed when no exact total exists or some link is
  idle, trimmed from the largest contributor [C];
- PS placement on the server with most residual bandwidth after the job is added, then fewest
  (links + shadow links) [C]; the optional deferral ``WAITING`` (default 0) [C];
- the prototype's placement baselines, as :class:`OrderedPlacement` strategies: ``spread``
  (Optimus-style round-robin over the least-used servers), ``tetris`` (GPU load + link load),
  ``gpu-balance``, ``link-balance``, ``least-fragment``; each puts the PS of a spanning job on the
  server with fewest links [C]; INA capacity PTA = 10 server links [C].

What is reconstructed ([I]/[M]):

- [I] batch period (default 60 s; the paper's is unknown): arrivals wait for the next batch
  boundary; a queue whose head does not fit is retried at the first boundary after the next
  arrival or completion (the prototype polls every 5 s; nothing else can change the outcome);
- [I] per-node bandwidths: capacities are in units of the cluster's median node bandwidth
  (``Node.bandwidth_gbps``), so a homogeneous cluster has the prototype's capacity 1 per link;
  the INA capacity is in the same unit; one non-blocking switch (racks are ignored, as in the
  single-rack prototype);
- [M] job speed comes from the engine's ``network`` perf model
  (:class:`dlsched_gym.network.NetworkModel`), built on the same :func:`steady_state` and
  :class:`NetworkState` this scheduler estimates with: a job's share ``b`` (reference-link units)
  becomes an iteration-time term ``grad_bits / (b x median Gbit/s)`` (each worker sends and
  receives its local-aggregated gradient once per iteration through the switch or PS) on top of
  the throughput model's iteration time. The engine re-rates every job whose share changes when
  another job starts or ends. The scheduler tells the model where it put each PS
  (``bind_perf`` hook); by default the scheduler assumes the model's INA capacity.

Usage::

    sched = make("netpack", placement="netpack")       # or "tetris", "least-fragment", ...
    Engine(workload, cluster, perf="network").run(sched)
    # INA capacity: Engine(..., perf=make_perf("network", ina_capacity=0.0)) (pure PS)
"""

from __future__ import annotations

import math

import numpy as np

from dlsched_gym.baselines._common import check_choice, check_positive
from dlsched_gym.baselines.registry import register
from dlsched_gym.errors import ConfigError
from dlsched_gym.network import (
    DEFAULT_INA_CAPACITY,
    NetworkState,
    default_ps,
    link_capacity,
    steady_state,
)
from dlsched_gym.placement import free_gpus_on
from dlsched_gym.scheduler import Start, Wake

#: Batch period in seconds [I] (the spec's suggestion; the paper's value is unknown).
DEFAULT_BATCH_SECONDS = 60.0
_EPS = 1e-9

__all__ = ["DEFAULT_BATCH_SECONDS", "DEFAULT_INA_CAPACITY", "PLACEMENT_NAMES", "NetPack",
           "NetPackPlacement", "NetworkState", "OrderedPlacement", "make_network_placement",
           "steady_state"]


# ----------------------------------------------------------------------------- placements
class OrderedPlacement:
    """A placement baseline of the NetPack prototype [C]: visit servers in the order of a key
    (stable, ties by server index), take ``min(needed, free)`` GPUs from each; a job spanning
    servers gets its PS on the server with the fewest links (counting its own).

    Keys: ``gpu-balance`` least-used first; ``least-fragment`` most-used first (consolidation);
    ``link-balance`` fewest links first; ``tetris`` ``used x g / G^2 + links`` (g the job's GPUs,
    G the server's); ``spread`` (Optimus-style) takes the shortest prefix of the least-used
    servers that holds the job and deals its GPUs round-robin over it.
    """

    KINDS = ("spread", "tetris", "gpu-balance", "link-balance", "least-fragment")

    def __init__(self, kind: str) -> None:
        check_choice("netpack", "placement", kind, self.KINDS)
        self.name = kind

    def choose(self, g: int, free: np.ndarray, size: np.ndarray, net: NetworkState,
               capacity: np.ndarray, ina: float) -> tuple[dict[int, int], int] | None:
        """``({server: GPUs}, PS server or -1)`` for a job of ``g`` GPUs, or None."""
        if int(free.sum()) < g:
            return None
        used = size - free
        links = net.links
        if self.name in ("gpu-balance", "spread"):
            key = used
        elif self.name == "least-fragment":
            key = -used
        elif self.name == "link-balance":
            key = links
        else:
            key = used * g / np.maximum(size, 1) ** 2 + links
        order = [int(v) for v in np.argsort(key, kind="stable") if free[v] > 0]
        parts: dict[int, int] = {}
        if self.name == "spread":
            prefix, total = [], 0
            for v in order:
                prefix.append(v)
                total += int(free[v])
                if total >= g:
                    break
            left = {v: int(free[v]) for v in prefix}
            need = g
            while need:
                for v in prefix:
                    if need and left[v]:
                        parts[v] = parts.get(v, 0) + 1
                        left[v] -= 1
                        need -= 1
        else:
            need = g
            for v in order:
                k = min(need, int(free[v]))
                parts[v] = k
                need -= k
                if need == 0:
                    break
        if len(parts) == 1:
            return parts, -1
        return parts, default_ps(links, parts)


class NetPackPlacement:
    """NetPack's placement [C]: connectionless best fit, else the server-value DP, then the PS
    (see the module docstring and spec Sec. 1.2)."""

    name = "netpack"

    def choose(self, g: int, free: np.ndarray, size: np.ndarray, net: NetworkState,
               capacity: np.ndarray, ina: float) -> tuple[dict[int, int], int] | None:
        """``({server: GPUs}, PS server or -1)`` for a job of ``g`` GPUs, or None."""
        if int(free.sum()) < g:
            return None
        links = net.links
        _, _, residual = net.estimate(capacity, ina)
        # (a) connectionless: exact fit, else least leftover; ties: more links, more residual
        fits = np.flatnonzero(free >= g)
        if len(fits):
            exact = fits[free[fits] == g]
            if len(exact):
                return {int(exact[0]): g}, -1
            best = min(fits.tolist(), key=lambda v: (free[v] - g, -links[v], -residual[v], v))
            return {best: g}, -1
        # (b) connection-oriented: knapsack over servers giving all their free GPUs
        parts = self._knapsack(g, free, links, residual)
        workers = tuple(sorted(parts))
        # (c) PS: most residual bandwidth with the job added, then fewest links + shadow links
        links_after = links.copy()
        links_after[list(workers)] += 1
        _, _, res_after = net.estimate(capacity, ina, workers)
        shadow = links_after.copy()
        for ws, p in net.jobs.values():
            servers = (*ws, p)
            top = links_after[list(servers)].max()
            if top > 1:
                for v in servers:
                    if links_after[v] == 1:
                        shadow[v] = 0
        ps = min(range(len(free)), key=lambda v: (round(1.0 - res_after[v], 9),
                                                  links_after[v] + shadow[v], v))
        return parts, ps

    @staticmethod
    def _knapsack(g: int, free: np.ndarray, links: np.ndarray, residual: np.ndarray) -> dict[int, int]:
        """Servers maximising ``sum v_i + 1/(1 + max l_i)`` with exactly ``g`` GPUs, or up to
        ``g + G`` when no exact set exists or a link is idle; excess trimmed from the largest
        contributor (ties: the later server). Ties between sets keep the first found in server
        order (strict improvement only, as the prototype)."""
        cand = np.flatnonzero(free > 0)
        top_g = int(free.max())
        width = g + top_g + 1
        up = int(links[cand].max())
        dp = np.full((up + 1, width), -math.inf)
        dp[:, 0] = 1.0 / (np.arange(up + 1) + 1.0)
        pred = np.full((len(cand), up + 1, width), -1, dtype=np.int64)
        for idx, v in enumerate(cand.tolist()):
            wt, lv = int(free[v]), int(links[v])
            value = residual[v] - 1.0 / (lv + 1.0)
            prev = dp.copy()
            for s in range(up + 1):
                wl = max(s, lv)
                gain = prev[s, : width - wt] + value - 1.0 / (s + 1.0) + 1.0 / (wl + 1.0)
                target = dp[wl, wt:]
                better = gain > target + _EPS
                target[better] = gain[better]
                pred[idx, wl, wt:][better] = s
        best, state, total = -math.inf, 0, -1
        for s in range(up + 1):
            if dp[s, g] > best + _EPS:
                best, state, total = dp[s, g], s, g
        if total < 0 or (links == 0).any():
            for s in range(up + 1):
                for t in range(g + 1, width):
                    if dp[s, t] > best + _EPS:
                        best, state, total = dp[s, t], s, t
        parts: dict[int, int] = {}
        t, s = total, state
        for idx in range(len(cand) - 1, -1, -1):
            if t == 0:
                break
            prev_s = int(pred[idx, s, t])
            if prev_s >= 0:
                v = int(cand[idx])
                parts[v] = int(free[v])
                t -= parts[v]
                s = prev_s
        excess = total - g
        if excess:
            for v in sorted(parts, key=lambda v: (-parts[v], -v)):  # ties: the later server
                if parts[v] >= excess:
                    parts[v] -= excess
                    if parts[v] == 0:
                        del parts[v]
                    break
        return parts


PLACEMENT_NAMES = ("netpack", *OrderedPlacement.KINDS)


def make_network_placement(name: str) -> NetPackPlacement | OrderedPlacement:
    """A network-aware placement by name (``netpack`` or one of the prototype's baselines)."""
    check_choice("netpack", "placement", name, PLACEMENT_NAMES)
    return NetPackPlacement() if name == "netpack" else OrderedPlacement(name)


# ----------------------------------------------------------------------------- scheduler
@register("netpack")
class NetPack:
    """NetPack-inspired FIFO batch placement with network-aware server choice.

    Args:
        placement: ``"netpack"`` or a prototype baseline (``"spread"``, ``"tetris"``,
            ``"gpu-balance"``, ``"link-balance"``, ``"least-fragment"``).
        ina_capacity: the switch aggregation capacity (reference links; 0 = no INA: pure PS) the
            scheduler assumes. None (default): the engine's ``network`` perf model's
            ``ina_capacity`` when it runs one, else :data:`DEFAULT_INA_CAPACITY` (PTA = 10).
        batch_seconds: placement happens at multiples of this period (0 = at every decision).
        waiting: NetPack's deferral: keep the head job queued when its placement raises the total
            estimated bandwidth by less than this (prototype ``WAITING`` = 0).

    Run it with the engine's ``network`` perf model (``Engine(..., perf="network")``) for job
    speeds that depend on the contention it plans for; with any other model it places the same
    way but the engine ignores link sharing.
    """

    round_seconds = None

    def __init__(self, placement: str = "netpack", ina_capacity: float | None = None,
                 batch_seconds: float = DEFAULT_BATCH_SECONDS, waiting: float = 0.0) -> None:
        self.strategy = make_network_placement(placement)
        self.name = "netpack" if placement == "netpack" else f"netpack-{placement}"
        self.ina_capacity = (None if ina_capacity is None else
                             check_positive("netpack", "ina_capacity", ina_capacity, allow_zero=True))
        self.batch_seconds = check_positive("netpack", "batch_seconds", batch_seconds, allow_zero=True)
        try:
            self.waiting = float(waiting)
        except (TypeError, ValueError):
            self.waiting = math.nan
        if not math.isfinite(self.waiting):
            raise ConfigError(f"scheduler 'netpack': parameter 'waiting' must be a finite number, "
                              f"got {waiting!r}")
        self._perf = None
        self._announce_ps = None

    def bind_perf(self, perf) -> None:
        """Engine hook (called before :meth:`reset`): the engine's perf model. A network model
        (:class:`~dlsched_gym.network.NetworkModel`) is told each PS server chosen here, so that
        its rates and this scheduler's estimates describe the same placement."""
        self._perf = perf
        self._announce_ps = getattr(perf, "set_parameter_server", None)

    def reset(self, spec, jobs, rng) -> None:
        """Bind to the cluster; clear the network state."""
        self._spec = spec
        self._jobs = jobs
        self._size = spec.node_gpus.astype(np.int64)
        self._capacity, _ = link_capacity(spec)
        if self.ina_capacity is not None:
            self._ina = self.ina_capacity
        else:
            self._ina = float(getattr(self._perf, "ina_capacity", DEFAULT_INA_CAPACITY))
        self._net = NetworkState(spec.num_nodes)
        self._wake: float | None = None
        self._changed = False

    def network_rates(self) -> dict[int, float]:
        """Estimated bandwidth (reference-link units) of every running distributed job."""
        ids, rates, _ = self._net.estimate(self._capacity, self._ina)
        return dict(zip(ids, rates.tolist()))

    def link_counts(self) -> np.ndarray:
        """Distributed jobs (workers or PS) using each server's link: the per-server link sharing
        an agent could observe."""
        return self._net.links.copy()

    def placements(self) -> dict[int, tuple[tuple[int, ...], int]]:
        """Running distributed jobs: ``job -> (worker servers, PS server)``."""
        return dict(self._net.jobs)

    def schedule(self, view):
        net = self._net
        for j in [j for j in net.jobs if j not in view.running]:
            net.remove(j)
        ops: list = []
        now = view.now
        due = self.batch_seconds == 0 or (self._wake is not None and now >= self._wake - _EPS)
        if due:
            self._wake = None
            ops.extend(self._place(view))
        # a blocked queue is retried at the first batch after something changed (an arrival or
        # a completion), not at every period
        self._changed |= bool(view.new_jobs or view.finished)
        if self.batch_seconds and view.queue and self._wake is None and self._changed:
            self._wake = (math.floor(now / self.batch_seconds + _EPS) + 1) * self.batch_seconds
            self._changed = False
            ops.append(Wake(self._wake))
        return ops

    def _place(self, view) -> list:
        plan = view.plan()
        net = self._net
        ops = []
        for j in list(view.queue):
            g = int(self._jobs.num_gpus[j])
            if g > plan.free_gpus:
                break
            free = plan.node_free
            mask = view.allowed_nodes(j)
            if mask is not None:
                free = np.where(mask, free, 0)
            choice = self.strategy.choose(g, free.astype(np.int64), self._size, net,
                                          self._capacity, self._ina)
            if choice is None:
                break
            parts, ps = choice
            if ps >= 0:
                before = self._total_rate()
                net.add(j, tuple(sorted(parts)), ps)
                if self.name == "netpack" and self._total_rate() - before < self.waiting - _EPS:
                    net.remove(j)
                    break
                if self._announce_ps is not None:
                    self._announce_ps(j, ps)
            gpus = np.concatenate([free_gpus_on(v, k, plan.gpu_load, view.spec)
                                   for v, k in sorted(parts.items())])
            plan.reserve(gpus)
            ops.append(Start(j, gpus))
        return ops

    def _total_rate(self) -> float:
        _, rates, _ = self._net.estimate(self._capacity, self._ina)
        return float(rates.sum())
