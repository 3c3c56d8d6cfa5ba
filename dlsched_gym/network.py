"""Network contention: steady-state bandwidth of distributed jobs, and the ``network`` perf model.

A job whose GPUs span servers (a *distributed* job) exchanges gradients over its servers' links
every iteration, through the switch's in-network aggregation (INA) or a parameter server (PS).
Jobs whose links are shared get a share of the bandwidth, so a job starting or ending elsewhere
changes their speed. This module holds the one implementation of that model, used both by the
engine (through :class:`NetworkModel`, perf model name ``"network"``) and by schedulers that
estimate it before placing (NetPack, ``dlsched_gym.baselines.netpack``).

- :func:`steady_state`: max-min fair bandwidth by progressive filling over the server links and
  the switch's shared INA capacity (NetPack's *steady-state estimation*, from its prototype
  controller ``ZeBraHack0/ATP-Controller`` as the project's spec summarises it, Sec. 1.2 of
  ``shared/specs/published-schedulers-a.md``). While INA capacity is left a job's PS link carries
  one flow; once it is used up the PS link carries one flow per worker server (PS fallback).
- :class:`NetworkState`: the running distributed jobs (worker servers, PS server) and the number
  of them using each server's link.
- :func:`link_capacity`: link capacities in units of the cluster's median node link
  (``Node.bandwidth_gbps``), the unit of every share and of the INA capacity.
- :func:`default_ps`: where a job's PS goes when nobody says: the server with the fewest links
  counting the job's own workers (ties: the lowest index) -- the rule of the NetPack prototype's
  placement baselines.
- :class:`NetworkModel`: a perf model. Single-server jobs run at the base model's rate;
  a distributed job's rate is the base model's rate without a locality penalty, with
  ``grad_bits / (b x median Gbit/s)`` seconds of gradient exchange added to every iteration,
  ``b`` its steady-state share (each worker sends and receives its local-aggregated gradient once
  per iteration through the switch or the PS; see ``ThroughputModel.rate_with_bandwidth``, whose
  ring-all-reduce term is converted to this one). It implements the engine's coupled-rate hooks
  (:class:`dlsched_gym.perf.PerfModel`): ``placed``/``removed`` keep the state and return the
  other jobs whose share changed, which the engine re-rates.

Assumptions ([I] our choice): one non-blocking switch (racks are ignored, as in NetPack's
single-rack prototype); a job loads its links from the moment it holds its GPUs (also during a
restart overhead) until it releases them; the PS of a job is placed when it starts (a hint from
the scheduler through :meth:`NetworkModel.set_parameter_server`, else :func:`default_ps`) and
stays there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dlsched_gym.errors import ConfigError

if TYPE_CHECKING:
    from dlsched_gym.cluster import ClusterSpec

#: Switch INA capacity of the NetPack prototype, in server links (``PTA = 10``).
DEFAULT_INA_CAPACITY = 10.0
_EPS = 1e-9


def steady_state(capacity: np.ndarray, workers: Sequence[Sequence[int]], ps: Sequence[int],
                 ina_capacity: float) -> tuple[np.ndarray, np.ndarray]:
    """Max-min fair bandwidth of distributed jobs by progressive filling (water-filling).

    Args:
        capacity: link capacity per server (reference-link units).
        workers: per job, the servers holding its workers (each link is crossed once per job).
        ps: per job, the server of its parameter server, or -1 for none (a candidate job).
        ina_capacity: the switch's aggregation capacity in the same units, shared by all jobs.

    All unfrozen jobs grow at the same pace. While INA capacity is left a PS link carries one
    flow per job; the INA capacity is a shared bottleneck that, once used up, turns every later
    increment into PS traffic whose PS link carries one flow per worker server. Jobs crossing a
    saturated link freeze.

    Returns:
        (rate per job, residual capacity per server).
    """
    m, n = len(workers), len(capacity)
    rates = np.zeros(m)
    residual = np.asarray(capacity, dtype=float).copy()
    if m == 0:
        return rates, residual
    w = np.zeros((m, n))
    p = np.zeros((m, n))
    for j, servers in enumerate(workers):
        w[j, list(servers)] = 1.0
        if ps[j] >= 0:
            p[j, ps[j]] += 1.0
    per_worker_ps = p * w.sum(axis=1)[:, None]
    pta = float(ina_capacity)
    active = np.ones(m, dtype=bool)
    while active.any():
        ina = pta > _EPS
        weight = w + (p if ina else per_worker_ps)
        load = active.astype(float) @ weight
        crossed = load > 0
        share = np.full(n, math.inf)
        share[crossed] = np.maximum(residual[crossed], 0.0) / load[crossed]
        inc = float(share.min())
        k = int(active.sum())
        ina_bound = ina and pta / k < inc
        if ina_bound:
            inc = pta / k
        rates[active] += inc
        residual -= inc * load
        if ina:
            pta = 0.0 if ina_bound else pta - inc * k
        if not ina_bound:
            bottleneck = crossed & (share <= inc + _EPS)
            active &= ~(weight[:, bottleneck] > 0).any(axis=1)
    return rates, np.maximum(residual, 0.0)


def link_capacity(spec: ClusterSpec) -> tuple[np.ndarray, float]:
    """``(capacity per server, reference Gbit/s)``: each node's link bandwidth over the cluster's
    median node link (the reference), so a homogeneous cluster has capacity 1 per link."""
    bw = np.array([node.bandwidth_gbps for node in spec.nodes], dtype=float)
    ref = float(np.median(bw))
    return bw / ref, ref


def default_ps(links: np.ndarray, workers: Iterable[int]) -> int:
    """The server with the fewest links once the job's own ``workers`` are counted (ties: the
    lowest index): the PS rule of the NetPack prototype's placement baselines."""
    after = np.array(links, dtype=np.int64)
    after[list(workers)] += 1
    return int(np.argmin(after))


class NetworkState:
    """Running distributed jobs (worker servers, PS server) and the link count per server."""

    def __init__(self, num_nodes: int) -> None:
        self.links = np.zeros(num_nodes, dtype=np.int64)
        #: job -> (worker servers, PS server)
        self.jobs: dict[int, tuple[tuple[int, ...], int]] = {}

    def add(self, job: int, workers: tuple[int, ...], ps: int) -> None:
        """Record a distributed job."""
        self.jobs[job] = (workers, ps)
        self.links[list(workers)] += 1
        self.links[ps] += 1

    def remove(self, job: int) -> None:
        """Forget a job that ended."""
        workers, ps = self.jobs.pop(job)
        self.links[list(workers)] -= 1
        self.links[ps] -= 1

    def copy(self) -> NetworkState:
        """An independent copy."""
        new = NetworkState(len(self.links))
        new.links = self.links.copy()
        new.jobs = dict(self.jobs)
        return new

    def estimate(self, capacity: np.ndarray, ina: float, candidate: tuple[int, ...] = (),
                 candidate_ps: int = -1, without: int | None = None
                 ) -> tuple[list[int], np.ndarray, np.ndarray]:
        """:func:`steady_state` of the running jobs (less ``without``) plus an optional
        ``candidate`` (worker servers; PS server ``candidate_ps``, -1 for none); returns (job ids,
        rates, residual per server); the candidate, if any, is last."""
        ids = [j for j in self.jobs if j != without]
        workers = [self.jobs[j][0] for j in ids]
        ps = [self.jobs[j][1] for j in ids]
        if candidate:
            workers.append(candidate)
            ps.append(candidate_ps)
        rates, residual = steady_state(capacity, workers, ps, ina)
        return ids, rates, residual


def _default_base(**options: Any):
    from dlsched_gym.perf import ThroughputModel  # perf imports this module

    return ThroughputModel(locality="bandwidth", **options)


class NetworkModel:
    """Perf model ``"network"``: the base model's rate, with each distributed job's gradient
    exchange at its steady-state bandwidth share (see the module docstring).

    Args:
        ina_capacity: the switch's aggregation capacity in median links (NetPack's PTA = 10;
            0 = no INA, every job uses its PS).
        base: the rate model to build on; it needs ``rate`` and
            ``rate_with_bandwidth(job, gpus, {node: Gbit/s}, sharers)`` (a
            :class:`~dlsched_gym.perf.ThroughputModel`). Default: the throughput model with the
            factors below, so that with the defaults a single-server job runs its trace duration.
        gpu_type, scaling, variability, sharing, type_aliases, execution: options of the default
            base :class:`~dlsched_gym.perf.ThroughputModel` (all factors off by default); not
            allowed together with ``base``.

    Coupled rates: the engine calls :meth:`placed` and :meth:`removed` whenever a job's GPU set
    changes and re-rates the jobs they return. A scheduler that chooses parameter-server servers
    (NetPack) announces its choice with :meth:`set_parameter_server` before the job starts; other
    jobs get :func:`default_ps`. :meth:`rate` for an allocation a job does not hold (a planner's
    what-if, ``view.rate_with``) estimates the share the job would get there.
    """

    name = "network"

    def __init__(self, *, ina_capacity: float = DEFAULT_INA_CAPACITY, base: Any = None,
                 gpu_type: bool = False, scaling: bool = False, variability: str | None = None,
                 sharing: bool = False, type_aliases: dict[str, str] | None = None,
                 execution: str = "ddp") -> None:
        try:
            ina = float(ina_capacity)
        except (TypeError, ValueError):
            ina = math.nan
        if not (ina >= 0 and math.isfinite(ina)):
            raise ConfigError(f"perf model 'network': ina_capacity must be a finite number >= 0, "
                              f"got {ina_capacity!r}")
        self.ina_capacity = ina
        options = dict(gpu_type=gpu_type, scaling=scaling, variability=variability, sharing=sharing,
                       type_aliases=type_aliases, execution=execution)
        if base is None:
            base = _default_base(**options)
        else:
            defaults = dict(gpu_type=False, scaling=False, variability=None, sharing=False,
                            type_aliases=None, execution="ddp")
            given = sorted(k for k, v in options.items() if v != defaults[k])
            if given:
                raise ConfigError(f"perf model 'network': options {given} configure the default "
                                  "base model; configure the given base instead")
            if not (callable(getattr(base, "rate", None))
                    and callable(getattr(base, "rate_with_bandwidth", None))):
                raise ConfigError("perf model 'network': base must provide rate and "
                                  "rate_with_bandwidth (e.g. dlsched_gym.perf.ThroughputModel)")
        self.base = base
        self._reset_state(0)

    def _reset_state(self, num_nodes: int) -> None:
        self.state = NetworkState(num_nodes)
        self._share: dict[int, float] = {}
        self._hint: dict[int, int] = {}

    def __copy__(self) -> NetworkModel:
        """A copy with its own network state and the same (read-only) base model; the engine's
        ``clone`` uses it so that a what-if run does not move the original's state."""
        new = object.__new__(NetworkModel)
        new.__dict__.update(self.__dict__)
        new.state = self.state.copy()
        new._share = dict(self._share)
        new._hint = dict(self._hint)
        return new

    # ------------------------------------------------------------------ binding
    def reset(self, spec: ClusterSpec, jobs, rng) -> None:
        """Bind the base model and the cluster's links; forget every running job."""
        self.base.reset(spec, jobs, rng)
        self.capacity, self.ref_gbps = link_capacity(spec)
        self._gpu_node = spec.gpu_node_list
        self._reset_state(spec.num_nodes)

    # ------------------------------------------------------------------ queries
    def share(self, job: int) -> float | None:
        """The running distributed job's bandwidth share (median-link units), or None."""
        return self._share.get(job)

    def shares(self) -> dict[int, float]:
        """Bandwidth share of every running distributed job (median-link units)."""
        return dict(self._share)

    def placements(self) -> dict[int, tuple[tuple[int, ...], int]]:
        """Running distributed jobs: ``job -> (worker servers, PS server)``."""
        return dict(self.state.jobs)

    def link_counts(self) -> np.ndarray:
        """Distributed jobs (workers or PS) using each server's link."""
        return self.state.links.copy()

    # ------------------------------------------------------------------ coupled-rate hooks
    def set_parameter_server(self, job: int, server: int) -> None:
        """Put ``job``'s PS on ``server`` when the job next starts spanning servers (a scheduler
        that places PSs calls this before its ``Start``; without it :func:`default_ps`)."""
        n = len(self.state.links)
        if not (isinstance(server, (int, np.integer)) and 0 <= server < n):
            raise ConfigError(f"perf model 'network': job {job}: PS server must be a node index "
                              f"0..{n - 1}, got {server!r}")
        self._hint[job] = int(server)

    def placed(self, job: int, gpus: np.ndarray) -> list[int]:
        """``job`` now holds ``gpus``: record it if it spans servers; return the other jobs whose
        share changed."""
        ps = self._hint.pop(job, None)
        gn = self._gpu_node
        nodes = tuple(sorted({gn[g] for g in gpus.tolist()}))
        if job in self.state.jobs:  # not released first (the engine always releases first)
            self.state.remove(job)
            self._share.pop(job, None)
        if len(nodes) <= 1:
            return []
        self.state.add(job, nodes, default_ps(self.state.links, nodes) if ps is None else ps)
        return self._refresh(job)

    def removed(self, job: int) -> list[int]:
        """``job`` released its GPUs: forget it; return the other jobs whose share changed."""
        if job not in self.state.jobs:
            return []
        self.state.remove(job)
        del self._share[job]
        return self._refresh(job)

    def _refresh(self, job: int) -> list[int]:
        ids, rates, _ = self.state.estimate(self.capacity, self.ina_capacity)
        old = self._share
        new = dict(zip(ids, rates.tolist()))
        self._share = new
        changed = []
        for k, b in new.items():
            if k != job:
                before = old.get(k)
                if before is None or abs(before - b) > _EPS:
                    changed.append(k)
        return changed

    # ------------------------------------------------------------------ rate
    def rate(self, job: int, gpus: np.ndarray, sharers: int) -> float:
        """The base rate on one server; for a distributed job, the rate at its share (estimated
        with the job added where it does not hold ``gpus``)."""
        gn = self._gpu_node
        g = gpus.tolist()
        first = gn[g[0]] if g else -1
        if all(gn[x] == first for x in g):
            return self.base.rate(job, gpus, sharers)
        nodes = tuple(sorted({gn[x] for x in g}))
        b = self._share.get(job)
        if b is None or self.state.jobs[job][0] != nodes:
            links = self.state.links.copy()
            if job in self.state.jobs:
                held, held_ps = self.state.jobs[job]
                links[list(held)] -= 1
                links[held_ps] -= 1
            _, rates, _ = self.state.estimate(self.capacity, self.ina_capacity, nodes,
                                              default_ps(links, nodes), without=job)
            b = float(rates[-1])
        return self.rate_at(job, gpus, b, sharers)

    def rate_at(self, job: int, gpus: np.ndarray, share: float, sharers: int = 1) -> float:
        """The rate of ``job`` on ``gpus`` (spanning servers) at bandwidth ``share`` (median-link
        units): the base model's ``rate_with_bandwidth`` at the ring-equivalent bandwidth
        ``share x ref x 2 (n-1)/n``, so that its ring term ``2 (n-1)/n x bits / bandwidth``
        becomes ``bits / (share x ref)``."""
        n = len(gpus)
        gbps = max(share * self.ref_gbps * 2.0 * (n - 1) / n, _EPS)
        nodes = {self._gpu_node[x] for x in gpus.tolist()}
        return float(self.base.rate_with_bandwidth(job, gpus, dict.fromkeys(nodes, gbps), sharers))
