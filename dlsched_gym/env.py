"""``DLCluster-v0``: the cluster simulator as a Gymnasium environment.

An episode is a window of consecutive jobs from a trace (sampled with the env's seeded RNG),
replayed on a cluster by the :class:`~dlsched_gym.engine.Engine`. The agent makes the engine's
start decisions; everything else (arrivals, completions, placement) is the engine's.

**Decision** (``action_mode="discrete"``, the default): ``Discrete(K + 1)``. Action ``i < K`` starts
the ``i``-th visible queued job (the first ``K`` jobs of the queue in arrival order) where the
configured placement strategy puts it; action ``K`` is WAIT, which advances the engine to its next
decision point (the next arrival or completion). Several jobs can start at one instant; the clock
only moves on WAIT, or by itself while no visible job fits (the agent is only asked when it has a
real choice). :meth:`DLClusterEnv.action_masks` says which actions are valid: a slot is valid when
it holds a job that fits now; WAIT always is.

With ``action_mode="priority"`` the action is a ``Box(-1, 1, (K,))`` of scores; at each decision
point the env tries the visible jobs in descending score order (ties: queue order) and starts every
one that fits, then advances to the next decision point.

**Preemption** (``preemption=True``, discrete mode): ``Discrete(K + 1 + R)``. Actions ``0..K-1``
and ``K`` (WAIT) are as above; action ``K + 1 + r`` preempts the job in running slot ``r`` (the
``R = running_window`` running jobs with the most attained GPU-seconds, ties: lower job id), which
rejoins the end of the queue (the engine's restart overhead applies when it restarts). The clock
also stops at multiples of ``round_seconds`` while jobs run, and the agent is asked whenever a
visible job fits or, while jobs wait, a running job may be preempted. A job preempted at an
instant cannot start again, and one started cannot be preempted, until the clock moves (so every
instant ends). The observation gains ``running_jobs`` and a ninth queue feature (below).

**Observation** (``Dict``, float32, every entry in [0, 1]):

- ``queue`` (K x 8), one row per visible slot: valid bit, fits-now bit, GPUs requested
  (``log2(1+g) / log2(1+total GPUs)``), waiting time, predicted duration, predicted GPU-time (times
  through :func:`squash_seconds`), the slot's rank ``i / K``, and the share of free GPUs the job
  would take (1 when none are free). Empty slots are all zeros.
- ``cluster`` (11): fraction of nodes in each of 9 free-GPU buckets (bucket ``b`` holds nodes with
  ``ceil(8 x free / max node size) = b``), GPU utilization, largest free block / largest node.
- ``running`` (4): running jobs / total GPUs, smallest and mean predicted remaining time of the
  running jobs, and their predicted remaining GPU-seconds over ``total GPUs x 30 days``.
- ``overflow`` (4): queued jobs beyond the window (``log1p(n) / log1p(1000)``), their GPUs / total
  GPUs, jobs not yet arrived / jobs in the episode, queue length (``log1p(n) / log1p(1000)``).
- with ``preemption``: ``queue`` rows end with the job's attained GPU-seconds (squashed), and
  ``running_jobs`` (R x 8) has one row per running slot: valid bit, preemptable-now bit, GPUs,
  attained GPU-seconds, executed seconds, predicted remaining seconds (predicted duration minus
  executed), seconds since it (re)started (all squashed), and the slot's rank ``r / R``.

Durations come from the configured ``predictor`` (``oracle`` by default, like the engine's: say so
when comparing with schedulers that do not know durations). :class:`FlattenObservation` gives a
plain ``Box`` for ``MlpPolicy``.

**Reward**, paid whenever the clock moves (a step that only starts jobs earns 0):
``-(jobs in system) x dt / scale + util_weight x (busy GPUs / total GPUs) x dt / scale``, from the
engine's integrals (:func:`dlsched_gym.metrics.reward_terms`). Over a whole episode the first term
sums to minus the total JCT over ``scale``, so maximizing return minimizes average JCT. ``info``
carries both terms of the step (``reward_jct``, ``reward_util``), the clock and running counts, and
the next step's ``action_mask`` (the same as :meth:`DLClusterEnv.action_masks`, so that vectorized
envs can pass it back with the step instead of in a second round trip to every worker); at
the end of an episode ``info["episode_summary"]`` holds :func:`dlsched_gym.metrics.summarize` of the
episode, and ``info["avg_jct"]``/``info["gpu_utilization"]`` its two main numbers.

**Stalls.** If the agent WAITs while nothing runs and no job is left to arrive, no event would ever
come. The env then starts the first visible job that fits instead (a *forced start*, counted in
``info["forced_starts"]``) so that an agent can never end an episode early by idling (which would
also dodge the JCT penalty). If no queued job could ever fit (an elastic job larger than the
cluster), the episode ends with ``truncated=True`` and ``info["stalled"] = True``.

Invalid actions raise :class:`InvalidActionError` (``invalid_action="raise"``, the default) or
become WAIT, counted in ``info["invalid_actions"]`` (``invalid_action="wait"``).

**Backends.** Without preemption, with the ``duration`` perf model, ``consolidated`` or
``first-fit`` placement, a fixed predictor and a plain cluster, the transitions run in
:mod:`dlsched_gym.kernel` (numba), one compiled call per step, bit-identical to the Python
:class:`~dlsched_gym.engine.Engine` and :class:`ObservationBuilder` that run everything else
(``backend`` option).
"""

from __future__ import annotations

import math
import re
import warnings
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from itertools import islice
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from dlsched_gym.cluster import ClusterSpec, make_cluster
from dlsched_gym.engine import Engine, JobTable
from dlsched_gym.errors import ConfigError, DLSchedError, SchedulerError
from dlsched_gym.metrics import reward_terms, summarize
from dlsched_gym.placement import Placement, make_placement
from dlsched_gym.scheduler import Preempt, Start
from dlsched_gym.workload import Workload

#: Default trace and cluster: Philly VC 103959 (64 GPUs; the VC ElasticFlow's Philly trace uses).
#: At its recorded size the VC's arrivals (long-run load 0.31) rarely queue; at 4x the arrival rate
#: 256-job windows reach ~0.7 GPU utilization and FIFO's queueing delay dominates JCT (FIFO ~58 ks,
#: shortest-job-first ~35 ks average JCT), so ordering decisions matter.
DEFAULT_TRACE = "philly-vc/103959"
DEFAULT_LOAD = 4.0
DEFAULT_EPISODE_JOBS = 256

#: Number of per-slot job features in the ``queue`` observation.
JOB_FEATURES = 8
#: Free-GPU histogram buckets in the ``cluster`` observation.
FREE_BUCKETS = 9
CLUSTER_FEATURES = FREE_BUCKETS + 2
RUNNING_FEATURES = 4
OVERFLOW_FEATURES = 4
#: Per-slot features of the ``running_jobs`` observation (``preemption=True``).
RUNNING_JOB_FEATURES = 8
#: Default seconds between the extra decision points of ``preemption=True`` (Tiresias-scale rounds).
DEFAULT_ROUND_SECONDS = 300.0
#: Times are squashed with ``log1p(t / 60) / log1p(TIME_CAP / 60)``, clipped to 1.
TIME_CAP = 30 * 86400.0
_LOG_TIME_CAP = math.log1p(TIME_CAP / 60.0)
_LOG_COUNT_CAP = math.log1p(1000.0)

#: ``backend`` choices (see :class:`DLClusterEnv`).
BACKENDS = ("auto", "python", "compiled")

#: How the visible window is chosen from the queue.
WINDOW_ORDERS = ("arrival", "duration")

#: Fraction of a trace (by job index) whose windows ``split="train"`` draws from; ``"test"``
#: windows start after it, so the two never share a job.
TRAIN_FRACTION = 0.8


class InvalidActionError(DLSchedError, ValueError):
    """The agent chose an action the mask forbids (empty slot, or a job that does not fit)."""


def squash_seconds(t: np.ndarray | float) -> np.ndarray | float:
    """Map seconds to [0, 1]: ``log1p(t/60) / log1p(30 days / 60)``, clipped (negative -> 0)."""
    return np.minimum(np.log1p(np.maximum(t, 0.0) / 60.0) / _LOG_TIME_CAP, 1.0)


def _squash(t: float) -> float:
    """:func:`squash_seconds` of one number."""
    return min(math.log1p(t / 60.0) / _LOG_TIME_CAP, 1.0) if t > 0 else 0.0


class ObservationBuilder:
    """Builds observations and masks from a cluster state.

    Used by :class:`DLClusterEnv` on the engine's live state and by
    :class:`dlsched_gym.agents.PolicyScheduler` on a :class:`~dlsched_gym.scheduler.Plan`, so an agent
    sees the same numbers in both. Buffers are preallocated; :meth:`observe` returns fresh copies.

    Args:
        spec: the cluster.
        placement: the strategy that places started jobs (decides what "fits" means).
        window: K, the number of visible queue slots.
        window_order: ``"arrival"``: the first K queued jobs in queue order; ``"duration"``: the K
            queued jobs with the shortest predicted duration (ties: queue order), shortest first.
        preempt_window: R > 0 adds the running-job slots of ``preemption=True`` (the R running
            jobs with the most attained service); the owner then sets :attr:`service`.
    """

    def __init__(self, spec: ClusterSpec, placement: Placement, window: int,
                 window_order: str = "arrival", preempt_window: int = 0) -> None:
        if window_order not in WINDOW_ORDERS:
            raise ConfigError(f"window_order must be one of {WINDOW_ORDERS}, got {window_order!r}")
        self.by_duration = window_order == "duration"
        self.spec = spec
        self.placement = placement
        self.K = int(window)
        self.num_gpus = spec.num_gpus
        self.max_node = spec.max_node_gpus
        self.num_nodes = spec.num_nodes
        self._log_gpus = math.log2(1 + self.num_gpus)
        # Fast "fits" rules for the bundled strategies; anything else is asked per slot.
        self._fit_rule = {"consolidated": "node", "first-fit": "total", "spread": "total",
                          "random": "total"}.get(getattr(placement, "name", ""), "ask")
        K = self.K
        R = self.R = int(preempt_window)
        #: features per queue slot: JOB_FEATURES, plus attained service with preemption
        self.F = JOB_FEATURES + (1 if R else 0)
        #: ``service(job) -> (attained GPU-seconds, executed seconds, seconds since it (re)started,
        #: 0 when queued)``, given by the owner when ``preempt_window > 0``
        self.service: Callable[[int], tuple[float, float, float]] | None = None
        # One buffer holds every part (queue, cluster, running, overflow, running_jobs), so that
        # the compiled backend fills them through one argument.
        qn = K * self.F
        cuts = np.cumsum([qn, CLUSTER_FEATURES, RUNNING_FEATURES, OVERFLOW_FEATURES])
        self.flat = np.zeros(int(cuts[-1]) + R * RUNNING_JOB_FEATURES, dtype=np.float32)
        self._queue_flat = self.flat[:qn]  # a view: rows are written through it
        self.queue = self._queue_flat.reshape(K, self.F)
        self.cluster = self.flat[cuts[0]:cuts[1]]
        self.running = self.flat[cuts[1]:cuts[2]]
        self.overflow = self.flat[cuts[2]:cuts[3]]
        self._run_flat = self.flat[cuts[3]:]
        self.running_jobs = self._run_flat.reshape(R, RUNNING_JOB_FEATURES)
        #: job ids in the running slots, slot order (``preemption=True``)
        self.run_slot_list: list[int] = []
        self._run_rank = (np.arange(R, dtype=np.float32) / max(R, 1)).tolist()
        self._run_filled = 0
        self.mask = np.zeros(K + 1 + R, dtype=bool)  # starts, WAIT, preemptions
        self.mask[K] = True  # WAIT
        #: job ids in the visible slots, slot order (a list; :attr:`slots` is the same as an array)
        self.slot_list: list[int] = []
        self._rank = (np.arange(K, dtype=np.float32) / K).tolist()
        self._bucket_of = np.ceil(np.arange(self.max_node + 1) * 8 / self.max_node).astype(np.int64)
        self._bucket_list = self._bucket_of.tolist()
        # the free-GPU histogram of a few dozen nodes is cheaper in Python than in numpy
        self._small_cluster = self.num_nodes <= 64

    def bind(self, num_gpus_req: np.ndarray, submit_time: np.ndarray) -> None:
        """Attach an episode's static job arrays (GPUs requested, submit times)."""
        self.req = np.asarray(num_gpus_req, dtype=np.int64)
        self.submit = np.asarray(submit_time, dtype=np.float64)
        n = len(self.req)
        self.num_jobs = max(n, 1)
        self.pred = np.zeros(n, dtype=np.float64)
        # Per-job numbers as Python lists: the window holds a few dozen jobs, for which list
        # indexing and float arithmetic beat numpy's per-call overhead several-fold.
        self._req = self.req.tolist()
        self._submit = self.submit.tolist()
        # (an elastic job may ask for more GPUs than the cluster has: clip into the space)
        self._gpus_feat = np.minimum(np.log2(1.0 + self.req) / self._log_gpus, 1.0).tolist()
        self._pred = [0.0] * n
        self._pred_feat = [0.0] * n
        self._work_feat = [0.0] * n
        self._pred_end = [0.0] * n
        self.slot_list = []
        self._fit: list[bool] = []
        self._largest: int | None = None
        self.queue[:] = 0.0
        self._filled = 0
        self.running_jobs[:] = 0.0
        self._run_filled = 0
        self.run_slot_list = []
        self._all_small = n == 0 or int(self.req.max()) <= self.max_node

    def predict(self, jobs: Sequence[int], predict_duration) -> None:
        """Store ``predict_duration(j)`` for ``jobs`` (all jobs once for a fixed predictor, else the
        visible window before each :meth:`update`)."""
        idx = list(jobs)
        if not idx:
            return
        p = np.fromiter((predict_duration(j) for j in idx), dtype=np.float64, count=len(idx))
        ids = np.asarray(idx, dtype=np.int64)
        self.pred[ids] = p
        pred, pred_feat, work_feat = self._pred, self._pred_feat, self._work_feat
        for j, d, f, w in zip(idx, p.tolist(), squash_seconds(p).tolist(),
                              squash_seconds(p * self.req[ids]).tolist()):
            pred[j], pred_feat[j], work_feat[j] = d, f, w

    def started(self, job: int, now: float) -> None:
        """Record that ``job`` starts at ``now`` (for the running-jobs summary)."""
        self._pred_end[job] = now + self._pred[job]

    def fits(self, jobs: np.ndarray, node_free: np.ndarray, free_gpus: int,
             gpu_load: np.ndarray) -> np.ndarray:
        """Bool array: does each job fit on the given free-GPU state with the placement?"""
        g = self.req[jobs]
        if self._fit_rule == "total":
            return g <= free_gpus
        if self._fit_rule == "node":
            largest = node_free.max()
            if self._all_small:
                return g <= largest
            return np.where(g <= self.max_node, g <= largest, g <= free_gpus)
        return np.array([g_ <= free_gpus and self.placement.place(int(g_), node_free, gpu_load,
                                                                  self.spec, int(j)) is not None
                         for j, g_ in zip(jobs.tolist(), g.tolist())], dtype=bool)

    def _fit_list(self, slots: list[int], node_free: np.ndarray, free_gpus: int,
                  gpu_load: np.ndarray) -> list[bool]:
        """:meth:`fits` for a short list of jobs, in Python (same rules)."""
        req = self._req
        rule = self._fit_rule
        if rule == "total":
            return [req[j] <= free_gpus for j in slots]
        if rule == "node":
            largest = self._largest = int(node_free.max())
            if self._all_small:
                return [req[j] <= largest for j in slots]
            big = self.max_node
            return [req[j] <= (largest if req[j] <= big else free_gpus) for j in slots]
        return self.fits(np.asarray(slots, dtype=np.int64), node_free, free_gpus, gpu_load).tolist()

    def update_mask(self, queue: Iterable[int], node_free: np.ndarray, free_gpus: int,
                    gpu_load: np.ndarray, queue_len: int, running: Iterable[int] = (),
                    no_start: Collection[int] = (), no_preempt: Collection[int] = ()) -> bool:
        """Choose the visible window from ``queue`` (queue order, ``queue_len`` jobs) and compute
        the action mask on the given free-GPU state. Returns whether the agent has a choice: a
        visible job fits (or, with running slots, a job waits and a running one may be preempted).

        With running slots (``preempt_window > 0``): ``running`` are the running job ids,
        ``no_start`` jobs preempted at this instant (not startable until the clock moves) and
        ``no_preempt`` jobs started at this instant (not preemptable until it moves)."""
        if self.by_duration and queue_len > 1:
            ids = np.fromiter(queue, dtype=np.int64, count=queue_len)
            order = np.argsort(self.pred[ids], kind="stable")
            slot_list = ids[order[:self.K]].tolist()
            self.rest = ids[order[self.K:]]
        else:
            slot_list = list(islice(queue, self.K))
            self.rest = None
        self.slot_list = slot_list
        self._largest = None
        n = len(slot_list)
        mask = self.mask  # mask[K] (WAIT) is always True
        if n == 0 or free_gpus == 0:
            mask[:self.K] = False
            fit = self._fit = [False] * n
        else:
            fit = self._fit = self._fit_list(slot_list, node_free, free_gpus, gpu_load)
            if no_start:
                fit = self._fit = [f and j not in no_start for f, j in zip(fit, slot_list)]
            mask[:n] = fit
            mask[n:self.K] = False
        if not self.R:
            return any(fit)
        return self._update_running(running, no_preempt, queue_len) or any(fit)

    def _update_running(self, running: Iterable[int], no_preempt: Collection[int],
                        queue_len: int) -> bool:
        """Fill the running slots (most attained service first, ties: lower job id) and their mask
        bits; whether some running job may be preempted while jobs wait."""
        service = self.service
        svc = self._svc = {j: service(j) for j in running}
        ids = sorted(svc, key=lambda j: (-svc[j][0], j))[:self.R]
        self.run_slot_list = ids
        bits = [j not in no_preempt for j in ids]
        lo = self.K + 1
        m = len(ids)
        self.mask[lo:lo + m] = bits
        self.mask[lo + m:] = False
        return queue_len > 0 and any(bits)

    def update_features(self, now: float, queue: Iterable[int], queue_len: int, node_free: np.ndarray,
                        free_gpus: int, running: Iterable[int], num_running: int,
                        arrivals_left: int) -> None:
        """Fill the observation buffers (after :meth:`update_mask` on the same state).

        Args:
            now: the clock.
            queue: queued job ids in queue order (read beyond the window for the overflow counts).
            queue_len: its length.
            node_free, free_gpus: the free-GPU state the jobs would start on.
            running: running job ids; num_running their count.
            arrivals_left: jobs of the episode not yet submitted.
        """
        slot_list = self.slot_list
        n = len(slot_list)
        req = self._req
        if n:
            submit, gpus_feat, pred_feat, work_feat = (self._submit, self._gpus_feat, self._pred_feat,
                                                       self._work_feat)
            log1p = math.log1p
            inv_free = 1.0 / free_gpus if free_gpus > 0 else math.inf
            row: list[float] = []
            for i, (j, fit) in enumerate(zip(slot_list, self._fit)):
                wait = log1p((now - submit[j]) * (1 / 60.0)) * (1.0 / _LOG_TIME_CAP)
                share = req[j] * inv_free
                row += (1.0, fit, gpus_feat[j], wait if wait < 1.0 else 1.0, pred_feat[j],
                        work_feat[j], self._rank[i], share if share < 1.0 else 1.0)
                if self.R:
                    row.append(_squash(self.service(j)[0]))
            self._queue_flat[:n * self.F] = row
        if n < self._filled:
            self._queue_flat[n * self.F:self._filled * self.F] = 0.0
        self._filled = n
        if self.R:
            self._fill_running_slots()
        largest = self._largest if self._largest is not None else int(node_free.max())
        c = self.cluster
        if self._small_cluster:
            counts = [0] * FREE_BUCKETS
            bucket_of = self._bucket_list
            for f in node_free.tolist():
                counts[bucket_of[f]] += 1
            inv_nodes = 1.0 / self.num_nodes
            c[:] = (*[k * inv_nodes for k in counts], 1.0 - free_gpus / self.num_gpus,
                    largest / self.max_node)
        else:
            c[:FREE_BUCKETS] = np.bincount(self._bucket_of[node_free], minlength=FREE_BUCKETS)
            c[:FREE_BUCKETS] *= 1.0 / self.num_nodes
            c[FREE_BUCKETS] = 1.0 - free_gpus / self.num_gpus
            c[FREE_BUCKETS + 1] = largest / self.max_node
        r = self.running
        if num_running:
            pred_end = self._pred_end
            first = math.inf
            total = 0.0
            work = 0.0
            for j in running:
                e = pred_end[j]
                total += e
                work += e * req[j]
                if e < first:
                    first = e
            work -= now * (self.num_gpus - free_gpus)
            r[:] = (num_running / self.num_gpus, _squash(first - now), _squash(total / num_running - now),
                    min(max(work, 0.0) / (self.num_gpus * TIME_CAP), 1.0))
        else:
            r[:] = 0.0
        extra = queue_len - n
        if extra > 0:
            rest = self.rest.tolist() if self.rest is not None else islice(queue, self.K, None)
            beyond = (min(math.log1p(extra) / _LOG_COUNT_CAP, 1.0),
                      min(sum(req[j] for j in rest) / self.num_gpus, 1.0))
        else:
            beyond = (0.0, 0.0)
        self.overflow[:] = (*beyond, arrivals_left / self.num_jobs,
                            min(math.log1p(queue_len) / _LOG_COUNT_CAP, 1.0))

    def _fill_running_slots(self) -> None:
        """The ``running_jobs`` rows: valid, preemptable, GPUs, attained GPU-seconds, executed
        seconds, predicted remaining seconds, seconds since it (re)started, rank."""
        ids = self.run_slot_list
        lo = self.K + 1
        row: list[float] = []
        for r, j in enumerate(ids):
            attained, executed, since = self._svc[j]
            row += (1.0, self.mask[lo + r], self._gpus_feat[j], _squash(attained), _squash(executed),
                    _squash(self._pred[j] - executed), _squash(since), self._run_rank[r])
        m = len(ids)
        self._run_flat[:m * RUNNING_JOB_FEATURES] = row
        if m < self._run_filled:
            self._run_flat[m * RUNNING_JOB_FEATURES:self._run_filled * RUNNING_JOB_FEATURES] = 0.0
        self._run_filled = m

    def observe(self) -> dict[str, np.ndarray]:
        """The current observation (copies of the buffers)."""
        obs = {"queue": self.queue.copy(), "cluster": self.cluster.copy(),
               "running": self.running.copy(), "overflow": self.overflow.copy()}
        if self.R:
            obs["running_jobs"] = self.running_jobs.copy()
        return obs

    def observation_space(self) -> spaces.Dict:
        """The ``Dict`` space of :meth:`observe`."""
        def box(*shape):
            return spaces.Box(0.0, 1.0, shape=shape, dtype=np.float32)
        space = {"queue": box(self.K, self.F), "cluster": box(CLUSTER_FEATURES),
                 "running": box(RUNNING_FEATURES), "overflow": box(OVERFLOW_FEATURES)}
        if self.R:
            space["running_jobs"] = box(self.R, RUNNING_JOB_FEATURES)
        return spaces.Dict(space)

    @property
    def slots(self) -> np.ndarray:
        """Job ids in the visible slots, slot order (int64 array)."""
        return np.array(self.slot_list, dtype=np.int64)

    def priority_order(self, scores: np.ndarray) -> list[int]:
        """Visible slots in descending score order (stable: ties keep queue order)."""
        n = len(self.slot_list)
        return np.argsort(-np.asarray(scores, dtype=np.float64)[:n], kind="stable").tolist()


def _resolve_trace(trace: str | Workload) -> Workload:
    if isinstance(trace, Workload):
        return trace
    if not isinstance(trace, str):
        raise ConfigError(f"trace must be a trace name or a Workload, got {type(trace).__name__}")
    from dlsched_gym import traces

    loader = getattr(traces, "load", None)
    if loader is None:
        raise ConfigError(f"trace {trace!r}: the trace catalogue (dlsched_gym.traces.load) is not "
                          "available in this installation; pass trace=<Workload>")
    return loader(trace)


class DLClusterEnv(gym.Env):
    """The GPU-cluster scheduling environment (see the module docstring for the MDP).

    Every option is a keyword (``gym.make("DLCluster-v0", load=6, window=16)``):

    Args:
        trace: trace name for ``dlsched_gym.traces.load`` or a :class:`Workload`.
        cluster: cluster preset, ``NxG`` string, TOML path or :class:`ClusterSpec`; default: the
            trace's Philly VC preset when the trace is ``philly-vc/<vc>``.
        episode_jobs: jobs per episode (default 256), or
        episode_seconds: episodes are all jobs submitted within this many (load-scaled) seconds of
            the window's first job.
        load: arrival-rate scaling (:meth:`Workload.scale_load`); 1 replays the trace's rate.
        window: K, visible queue slots.
        reward: ``{"scale": seconds, "util_weight": w}``; default scale 3600 (rewards in
            job-hours), util_weight 0 (pure JCT objective).
        predictor: duration predictor of the engine (``oracle``, ``noisy``, ``history``).
        placement: placement strategy of started jobs.
        action_mode: ``"discrete"`` or ``"priority"``.
        invalid_action: ``"raise"`` or ``"wait"``.
        perf: the engine's rate model.
        split: ``"all"``, ``"train"`` (windows inside the first 80% of the trace's jobs) or
            ``"test"`` (windows inside the last 20%): held-out evaluation never sees training jobs.
        windows: fixed window start indices to draw from (pinned benchmarks); overrides ``split``.
        window_order: which queued jobs are visible: ``"arrival"`` (the first K in queue order) or
            ``"duration"`` (the K with the shortest predicted duration, so that short jobs deep in a
            long queue are not hidden).
        preemption: let the agent preempt running jobs (discrete action mode; see the module
            docstring).
        round_seconds: with ``preemption``, the clock also stops at multiples of this many seconds
            (default 300) while jobs run, so that the agent can preempt between events.
        running_window: R, the running-job slots with ``preemption`` (default: K).
        backend: ``"auto"`` (default: ``"compiled"`` when the configuration allows it, else
            ``"python"``), ``"python"`` (the :class:`~dlsched_gym.engine.Engine` and
            :class:`ObservationBuilder` step by step) or ``"compiled"`` (the same transitions in
            one numba-compiled call per step, :mod:`dlsched_gym.kernel`; several times faster,
            bit-identical; an error names what the configuration lacks). With ``"compiled"``,
            :attr:`engine` and :attr:`builder` are brought up to date when read (a copy of the
            whole state: read them sparingly mid-episode, and never change them).

    ``reset(seed=..., options={"start": i})`` replays the window starting at job ``i``.
    """

    metadata = {"render_modes": []}

    OPTIONS = ("trace", "cluster", "episode_jobs", "episode_seconds", "load", "window", "reward",
               "predictor", "placement", "action_mode", "invalid_action", "perf", "split",
               "windows", "window_order", "preemption", "round_seconds", "running_window", "backend")

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(self.OPTIONS))
        if unknown:
            raise ConfigError(f"DLCluster: unknown option(s) {unknown}; valid options: "
                              f"{', '.join(self.OPTIONS)}")
        self._configure(**kwargs)

    def _configure(self, trace: str | Workload = DEFAULT_TRACE, cluster: str | ClusterSpec | None = None,
                   episode_jobs: int | None = None, episode_seconds: float | None = None,
                   load: float = DEFAULT_LOAD, window: int = 32, reward: Mapping[str, float] | None = None,
                   predictor: str = "oracle", placement: str | Placement = "consolidated",
                   action_mode: str = "discrete", invalid_action: str = "raise", perf: str = "duration",
                   split: str = "all", windows: Sequence[int] | None = None,
                   window_order: str = "arrival", preemption: bool = False,
                   round_seconds: float = DEFAULT_ROUND_SECONDS, running_window: int | None = None,
                   backend: str = "auto") -> None:
        if action_mode not in ("discrete", "priority"):
            raise ConfigError(f"action_mode must be 'discrete' or 'priority', got {action_mode!r}")
        if not isinstance(preemption, (bool, np.bool_)):
            raise ConfigError(f"preemption must be True or False, got {preemption!r}")
        if preemption and action_mode != "discrete":
            raise ConfigError("preemption=True needs action_mode='discrete'")
        if not (isinstance(round_seconds, (int, float, np.integer, np.floating))
                and not isinstance(round_seconds, bool) and 0 < round_seconds < math.inf):
            raise ConfigError(f"round_seconds must be a positive number of seconds, got {round_seconds!r}")
        if running_window is not None and not (isinstance(running_window, (int, np.integer))
                                               and not isinstance(running_window, bool)
                                               and running_window >= 1):
            raise ConfigError(f"running_window must be an integer >= 1, got {running_window!r}")
        self.preemption = bool(preemption)
        self.round_seconds = float(round_seconds)
        if invalid_action not in ("raise", "wait"):
            raise ConfigError(f"invalid_action must be 'raise' or 'wait', got {invalid_action!r}")
        if not (isinstance(window, (int, np.integer)) and window >= 1):
            raise ConfigError(f"window must be an integer >= 1, got {window!r}")
        if split not in ("all", "train", "test"):
            raise ConfigError(f"split must be 'all', 'train' or 'test', got {split!r}")
        if episode_jobs is not None and episode_seconds is not None:
            raise ConfigError("give episode_jobs or episode_seconds, not both")
        rw = {"scale": 3600.0, "util_weight": 0.0}
        if reward is not None:
            bad = sorted(set(reward) - set(rw))
            if bad:
                raise ConfigError(f"reward: unknown key(s) {bad}; valid keys: scale, util_weight")
            rw.update({k: float(v) for k, v in reward.items()})
        if not (rw["scale"] > 0 and math.isfinite(rw["scale"])):
            raise ConfigError(f"reward scale must be a positive number, got {rw['scale']!r}")
        self.reward_scale, self.util_weight = rw["scale"], rw["util_weight"]
        self.action_mode, self.invalid_action = action_mode, invalid_action
        self.K = int(window)

        workload = _resolve_trace(trace)
        if cluster is None:
            name = trace if isinstance(trace, str) else workload.name
            vc = re.fullmatch(r"philly(?:-vc/|/vc=)(\w+)", name)
            if vc is None:
                raise ConfigError(f"trace {name!r}: no default cluster (only philly-vc/<vc> traces have "
                                  "one); pass cluster=...")
            cluster = f"philly-vc/{vc.group(1)}"
        self.cluster_spec = make_cluster(cluster)
        if load != 1:
            workload = workload.scale_load(load)
        self.workload = workload
        self.load = float(load)
        table = workload.table
        self._table = table
        self._submit_all = table["submit_time"].to_numpy(dtype=np.float64)
        self._jobs_all = JobTable(table)  # sliced per episode (factorizing per window costs ms)
        n = len(table)
        if n == 0:
            raise ConfigError(f"trace {workload.name!r} has no jobs")
        if episode_seconds is not None:
            if not (episode_seconds > 0):
                raise ConfigError(f"episode_seconds must be > 0, got {episode_seconds!r}")
            self.episode_jobs, self.episode_seconds = None, float(episode_seconds)
        else:
            ej = DEFAULT_EPISODE_JOBS if episode_jobs is None else episode_jobs
            if not (isinstance(ej, (int, np.integer)) and ej >= 1):
                raise ConfigError(f"episode_jobs must be an integer >= 1, got {ej!r}")
            self.episode_jobs, self.episode_seconds = min(int(ej), n), None
        span = self.episode_jobs or 1
        if windows is not None:
            starts = np.asarray(list(windows), dtype=np.int64)
            if starts.size == 0 or starts.min() < 0 or starts.max() > n - span:
                raise ConfigError(f"windows must be start indices in 0..{n - span}, got {list(windows)}")
        else:
            cut = int(n * TRAIN_FRACTION)
            lo, hi = {"all": (0, n - span), "train": (0, cut - span), "test": (cut, n - span)}[split]
            if hi < lo:
                raise ConfigError(f"split {split!r}: trace {workload.name!r} ({n} jobs) is too short for "
                                  f"episodes of {span} jobs")
            starts = np.arange(lo, hi + 1, dtype=np.int64)
        self.starts = starts
        self.predictor_name = predictor
        self.placement_option = placement
        self.perf = perf
        self._placement = make_placement(placement, 0)
        self.window_order = window_order
        #: R, the running-job slots (0 without preemption)
        self.R = (int(running_window) if running_window is not None else self.K) if self.preemption else 0
        self._builder = ObservationBuilder(self.cluster_spec, self._placement, self.K, window_order,
                                          preempt_window=self.R)
        self._builder.service = self._service
        if backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self._kernel = kernel = None
        if backend != "python":
            try:  # imports numba; compiles (or loads its cache) on first use
                from dlsched_gym import kernel
            except (ImportError, RuntimeError) as exc:  # no numba, or no writable cache location
                if backend == "compiled":
                    raise ConfigError(f"backend='compiled' is unavailable here: {exc}") from exc
                warnings.warn(f"DLCluster: the compiled backend is unavailable ({exc}); using the "
                              "slower Python backend", RuntimeWarning, stacklevel=3)
        if kernel is not None:
            why = kernel.unsupported(preemption=self.preemption, perf=perf,
                                     placement=placement, predictor=predictor, spec=self.cluster_spec,
                                     workload_table=table)
            if why and backend == "compiled":
                raise ConfigError(f"backend='compiled' cannot run this configuration: {'; '.join(why)}; "
                                  "use backend='python' (or 'auto')")
            if not why:
                b = self._builder
                self._kernel = kernel.CompiledEpisode(self.cluster_spec, placement, self.K, b._rank,
                                                      b._bucket_of)
        #: the backend in use: ``"python"`` or ``"compiled"``
        self.backend = "python" if self._kernel is None else "compiled"
        self._stale = False  # engine/builder behind the kernel's state
        self._started_now: set[int] = set()
        self._preempted_now: set[int] = set()
        self.observation_space = self._builder.observation_space()
        if action_mode == "discrete":
            self.action_space = spaces.Discrete(self.K + 1 + self.R)
        else:
            self.action_space = spaces.Box(-1.0, 1.0, shape=(self.K,), dtype=np.float32)
        self._engines: OrderedDict[tuple[int, int], Engine] = OrderedDict()
        self._engine: Engine | None = None
        self.episode = 0

    # ------------------------------------------------------------------ episodes
    def _window(self, start: int) -> tuple[int, int]:
        if self.episode_jobs is not None:
            return start, start + self.episode_jobs
        t0 = self._submit_all[start]
        end = int(np.searchsorted(self._submit_all, t0 + self.episode_seconds, side="left"))
        return start, max(end, start + 1)

    def _engine_for(self, lo: int, hi: int, seed: int) -> tuple[Engine, bool]:
        """An engine on jobs ``lo..hi-1``, and whether it was just built (and reset); cached (a
        few dozen) because building one costs ms."""
        key = (lo, hi)
        eng = self._engines.get(key)
        fresh = eng is None
        if fresh:
            jobs = self._jobs_all.window(lo, hi)  # submit times and deadlines shifted to 0
            sub = self._table.iloc[lo:hi].reset_index(drop=True).assign(
                submit_time=np.array(jobs.submit_time), deadline=np.array(jobs.deadline))
            wl = Workload(table=sub, name=f"{self.workload.name}[{lo}:{hi}]",
                          source=self.workload.source, license=self.workload.license,
                          citation=self.workload.citation,
                          attrs={**self.workload.attrs, "window": {"start": lo, "num_jobs": hi - lo}})
            eng = Engine(wl, self.cluster_spec, placement=self._placement, perf=self.perf,
                         predictor=self.predictor_name, seed=seed, timeline_interval=None,
                         jobs=jobs)
            self._engines[key] = eng
            if len(self._engines) > 64:
                self._engines.popitem(last=False)
        else:
            self._engines.move_to_end(key)
        eng.seed = seed
        if isinstance(self.placement_option, str) and self.placement_option == "random":
            eng.placement = make_placement("random", seed)
            self._placement = self._builder.placement = eng.placement
        return eng, fresh

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode on a window drawn with ``self.np_random`` (or ``options["start"]``)."""
        super().reset(seed=seed)
        options = options or {}
        bad = sorted(set(options) - {"start"})
        if bad:
            raise ConfigError(f"reset: unknown option(s) {bad}; valid: start")
        if "start" in options:
            start = int(options["start"])
            last = len(self._table) - (self.episode_jobs or 1)
            if not 0 <= start <= last:
                raise ConfigError(f"reset: start must lie in 0..{last}, got {start}")
        else:
            start = int(self.starts[self.np_random.integers(len(self.starts))])
        eng_seed = int(self.np_random.integers(2**31 - 1))
        lo, hi = self._window(start)
        eng, fresh = self._engine_for(lo, hi, eng_seed)
        if not fresh:
            eng.reset()
        if self.preemption:
            eng.round_seconds = self.round_seconds  # the env's own rounds (reset unbinds any)
        self._engine = eng
        self.episode += 1
        self.window_start = start
        jobs = eng.jobs
        self._builder.bind(jobs.num_gpus, jobs.submit_time)
        view = eng.view
        # Oracle and noisy predictions never change during an episode: ask once for every job.
        self._static_pred = eng.predictor.name in ("oracle", "noisy")
        if self._static_pred:
            self._builder.predict(range(jobs.n), view.predict_duration)
        self._last_jis = 0.0
        self._last_busy = 0.0
        self.invalid_actions = 0
        self.forced_starts = 0
        self._stalled = False
        self._started_now.clear()
        self._preempted_now.clear()
        if self._kernel is not None:
            b = self._builder
            self._kernel.bind(jobs.submit_time, eng.work, jobs.num_gpus, b.pred, b.by_duration,
                              b._gpus_feat, b._pred_feat, b._work_feat)
            self._ended = self._transition(0, 0)
        elif eng.next_decision():
            self._ended = self._settle()
        else:
            self._fill()
            self._ended = True
        return self._builder.observe(), self._info(self._ended, 0.0, 0.0)

    # ------------------------------------------------------------------ compiled backend
    def _transition(self, op: int, slot: int) -> bool:
        """One kernel call (see :func:`dlsched_gym.kernel._episode`); whether the episode ended."""
        k = self._kernel
        r = k.transition(op, slot, self._builder.mask, self._builder.flat)
        self._stale = True
        if r < 0:  # the mask and the placement disagree: a bug, not an agent's mistake
            raise SchedulerError(f"compiled backend: slot {slot} was valid but its job does not fit")
        self._status = status = k.status()
        self.forced_starts, self._stalled = status.forced_starts, status.stalled
        return r == 1

    def _compiled_outcome(self, ended: bool):
        """``step``'s return after a kernel transition."""
        st = self._status
        return self._outcome(ended, st.jobs_in_system_seconds, st.busy_gpu_seconds)

    def _sync(self) -> None:
        """Bring the Python engine and builder up to the kernel's state."""
        if self._stale:
            self._kernel.write_back(self._engine, self._builder)
            self._stale = False

    @property
    def engine(self) -> Engine | None:
        """The episode's :class:`~dlsched_gym.engine.Engine` (None before the first reset); read
        only: the env drives it."""
        self._sync()
        return self._engine

    @property
    def builder(self) -> ObservationBuilder:
        """The :class:`ObservationBuilder` holding the current observation, mask and window."""
        self._sync()
        return self._builder

    # ------------------------------------------------------------------ dynamics
    def _settle(self) -> bool:
        """Advance while no visible job fits, then fill the observation; True when the episode
        is over."""
        eng = self._engine
        b = self._builder
        while True:
            if eng.free_gpus == 0 and eng.alloc and not (self.preemption and eng.queue):
                # nothing can fit and a completion is pending: skip the window altogether
                if not self._advance():
                    self._fill()
                    return True
                continue
            q = eng.queue
            if not self._static_pred:
                b.predict(list(q) if b.by_duration else list(islice(q, self.K)), eng.view.predict_duration)
            if b.update_mask(q, eng.node_free, eng.free_gpus, eng.gpu_load, len(q), eng.alloc,
                             self._preempted_now, self._started_now):
                break
            if not self._advance():
                self._fill()
                return True
        alloc = eng.alloc
        b.update_features(eng.now, q, len(q), eng.node_free, eng.free_gpus, alloc, len(alloc),
                          eng.arrivals_left)
        return False

    def _fill(self) -> None:
        """Observation and mask of the current state, without advancing."""
        eng = self._engine
        q = eng.queue
        self._builder.update_mask(q, eng.node_free, eng.free_gpus, eng.gpu_load, len(q), eng.alloc,
                                 self._preempted_now, self._started_now)
        self._builder.update_features(eng.now, q, len(q), eng.node_free, eng.free_gpus, eng.alloc,
                                     len(eng.alloc), eng.arrivals_left)

    def _advance(self) -> bool:
        """Move to the next decision point; False when the episode is over (all jobs ended, or a
        stall: queued jobs, nothing running, nothing left to arrive)."""
        eng = self._engine
        if eng.finished_count + eng.rejected_count == eng.jobs.n:
            return False
        if not eng.alloc and eng.arrivals_left == 0 and not (self.preemption and eng.queue):
            self._stalled = True
            return False
        if self.preemption:
            self._started_now.clear()
            self._preempted_now.clear()
        return eng.next_decision()

    def _start(self, job: int) -> None:
        eng = self._engine
        eng.apply((Start(job),))
        self._builder.started(job, eng.now)
        if self.preemption:
            self._started_now.add(job)

    def _service(self, job: int) -> tuple[float, float, float]:
        """The builder's ``service``: attained GPU-seconds, executed seconds and seconds since the
        job (re)started (0 when queued), from the engine."""
        eng = self._engine
        since = eng.now - eng.run_since[job] if job in eng.alloc else 0.0
        return eng.attained_service(job), eng.executed_time(job), since

    def action_masks(self) -> np.ndarray:
        """Valid actions (bool, K+1): slots holding a job that fits now, and WAIT (always)."""
        return self._builder.mask.copy()

    def step(self, action):
        """Apply one action; see the module docstring for the semantics."""
        if self._engine is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self._ended:
            raise gym.error.ResetNeeded("the episode is over; call reset()")
        b = self._builder
        eng = self._engine
        if self.action_mode == "discrete":
            if type(action) is int or isinstance(action, np.integer):
                a = int(action)  # fast path: a plain or numpy integer scalar
            else:
                arr = np.asarray(action)
                if arr.size != 1 or arr.dtype.kind not in "iu":
                    raise InvalidActionError(f"action {action!r}: expected one integer in 0..{self.K}")
                a = int(arr.reshape(()))
            K = self.K
            top = K + self.R
            if not 0 <= a <= top:
                raise InvalidActionError(f"action {action!r} is outside 0..{top}")
            if a != K and not b.mask[a]:
                if self.invalid_action == "raise":
                    raise InvalidActionError(f"invalid action {a}: {self._why_invalid(a)}; use "
                                             "env.action_masks() or invalid_action='wait'")
                self.invalid_actions += 1
                a = K
            if self._kernel is not None:
                return self._compiled_outcome(self._transition(1, a))
            if a < K:
                self._start(b.slot_list[a])
                ended = False
            elif a > K:
                job = b.run_slot_list[a - K - 1]
                eng.apply((Preempt(job),))
                self._preempted_now.add(job)
                ended = False
            elif not eng.alloc and eng.arrivals_left == 0 and b.mask[:K].any():
                # WAIT would stall forever: start the first visible job that fits instead.
                self.forced_starts += 1
                self._start(b.slot_list[int(np.flatnonzero(b.mask[:K])[0])])
                ended = False
            else:
                ended = not self._advance()
        else:
            try:
                scores = np.asarray(action, dtype=np.float64)
            except (TypeError, ValueError):
                scores = None
            if scores is None or scores.shape != (self.K,) or not np.isfinite(scores).all():
                raise InvalidActionError(f"action {action!r}: expected {self.K} finite scores")
            if self._kernel is not None:
                n = self._kernel.num_slots
                self._kernel.order[:n] = np.argsort(-scores[:n], kind="stable")
                return self._compiled_outcome(self._transition(2, n))
            slots = b.slots
            for slot in b.priority_order(scores):
                if b.fits(slots[slot:slot + 1], eng.node_free, eng.free_gpus, eng.gpu_load)[0]:
                    self._start(int(slots[slot]))
            ended = not self._advance()
        if ended:
            self._fill()
        else:
            ended = self._settle()
        return self._outcome(ended, eng.jobs_in_system_seconds, eng.busy_gpu_seconds)

    def _outcome(self, ended: bool, jobs_in_system_seconds: float, busy_gpu_seconds: float):
        """``step``'s return, the reward from the engine's integrals (either backend's) since the
        previous step."""
        self._ended = ended
        jct_term, util_term = reward_terms(jobs_in_system_seconds - self._last_jis,
                                           busy_gpu_seconds - self._last_busy,
                                           self.cluster_spec.num_gpus, self.reward_scale,
                                           self.util_weight)
        self._last_jis = jobs_in_system_seconds
        self._last_busy = busy_gpu_seconds
        return (self._builder.observe(), jct_term + util_term, ended and not self._stalled,
                ended and self._stalled, self._info(ended, jct_term, util_term))

    def _why_invalid(self, a: int) -> str:
        """Why the mask forbids action ``a`` (for the error message)."""
        b, eng, K = self.builder, self.engine, self.K
        if a < K:
            if a >= len(b.slot_list):
                return f"slot {a} is empty"
            j = b.slot_list[a]
            if j in self._preempted_now:
                return f"slot {a} holds job {j}, preempted at this instant (startable once the clock moves)"
            return (f"slot {a} holds job {j} ({b._req[j]} GPUs), which does not fit now "
                    f"({eng.free_gpus} GPUs free)")
        r = a - K - 1
        if r >= len(b.run_slot_list):
            return f"running slot {r} is empty"
        return (f"running slot {r} holds job {b.run_slot_list[r]}, started at this instant "
                "(preemptable once the clock moves)")

    def _info(self, ended: bool, jct_term: float, util_term: float) -> dict[str, Any]:
        k = self._kernel
        if k is None:
            eng = self._engine
            now, queued, running, busy, finished = (eng.now, len(eng.queue), len(eng.alloc),
                                                    eng.busy_gpus, eng.finished_count)
        else:
            st = self._status
            now, queued, running, busy, finished = st.now, st.queued, st.running, st.busy_gpus, st.finished
        info = {"reward_jct": jct_term, "reward_util": util_term, "time": now,
                "action_mask": self._builder.mask.copy(),
                "queued": queued, "running": running, "busy_gpus": busy,
                "jobs_finished": finished, "invalid_actions": self.invalid_actions,
                "forced_starts": self.forced_starts, "stalled": self._stalled}
        if ended:
            summary = summarize(self.engine.result("agent"))
            info["episode_summary"] = summary
            info["avg_jct"] = summary["avg_jct"]
            info["gpu_utilization"] = summary["gpu_utilization"]
        return info

    def episode_result(self):
        """The engine's :class:`~dlsched_gym.engine.SimResult` for the current episode."""
        return self.engine.result("agent")


class FlattenObservation(gym.ObservationWrapper):
    """Concatenate the ``Dict`` observation into one float32 ``Box`` (for ``MlpPolicy``).

    Order: queue (row-major), cluster, running, overflow, and running_jobs (row-major) with
    preemption. ``action_masks`` is forwarded.
    """

    KEYS = ("queue", "cluster", "running", "overflow", "running_jobs")

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.keys = [k for k in self.KEYS if k in env.observation_space.spaces]
        size = sum(int(np.prod(env.observation_space[k].shape)) for k in self.keys)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(size,), dtype=np.float32)

    def observation(self, observation):
        """The flat vector."""
        return np.concatenate([observation[k].ravel() for k in self.keys])

    def action_masks(self) -> np.ndarray:
        """The wrapped env's mask."""
        return self.env.get_wrapper_attr("action_masks")()


#: Pinned benchmark windows: job start indices into the load-scaled trace (all in the last 20% of
#: the trace, the ``test`` split of ``DLCluster-v0``).
PHILLY_BENCHMARK_WINDOWS = (1560, 1580, 1600, 1620, 1640, 1660)

#: ``id -> kwargs`` of the registered environments. The pinned variants fix trace, cluster, load
#: and windows (checked: FIFO queues on every window; on Helios-like Venus queueing comes from
#: large gangs only, GPU utilization stays near 0.1 even at 16x load).
ENVIRONMENTS: dict[str, dict[str, Any]] = {
    "DLCluster-v0": {},
    "DLCluster-Philly-v0": {"trace": "philly-vc/103959", "cluster": "philly-vc/103959", "load": 4.0,
                            "episode_jobs": 256, "windows": PHILLY_BENCHMARK_WINDOWS},
    "DLCluster-Helios-v0": {"trace": "helios-venus-synth", "cluster": "helios-venus", "load": 16.0,
                            "episode_jobs": 1024, "windows": (0, 1024, 2048, 3072, 4096)},
    "DLCluster-ElasticFlow-v0": {"trace": "elasticflow-philly-103959", "cluster": "philly-vc/103959",
                                 "load": 4.0, "episode_jobs": 256, "windows": (0, 300, 600)},
}


def register_envs() -> None:
    """Register ``DLCluster-v0`` and the pinned benchmark variants with Gymnasium (idempotent)."""
    for env_id, kwargs in ENVIRONMENTS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point="dlsched_gym.env:DLClusterEnv", kwargs=dict(kwargs))
