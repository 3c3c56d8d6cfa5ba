"""The scheduler API: the protocol every baseline and agent implements, the ops it returns, and
the read-only :class:`ClusterView` it decides from.

A scheduler is called at every decision point (after each batch of simultaneous events, and at
its periodic ``round_seconds`` wake-ups) and returns a sequence of ops, which the engine validates
and applies in order. To plan several ops at once (e.g. preempt two jobs, then start a third on
their GPUs), use :meth:`ClusterView.plan`, a scratch copy of the free-GPU state.

Example::

    class Fifo:
        name = "my-fifo"
        round_seconds = None

        def reset(self, spec, jobs, rng):
            pass

        def schedule(self, view):
            plan, ops = view.plan(), []
            for j in view.queue:
                gpus = plan.place(j)
                if gpus is None:
                    break
                ops.append(Start(j, gpus))
            return ops
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from dlsched_gym.cluster import ClusterSpec
    from dlsched_gym.engine import Engine, JobTable
    from dlsched_gym.placement import Placement


@dataclasses.dataclass(frozen=True, slots=True)
class Start:
    """Start queued job ``job`` on ``gpus`` (global GPU ids), or where the engine's placement
    strategy puts it when ``gpus`` is None. The allocation size must lie in the job's
    ``[min_gpus, max_gpus]`` (= ``num_gpus`` for rigid jobs)."""

    job: int
    gpus: Sequence[int] | np.ndarray | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Preempt:
    """Stop running job ``job`` and put it back in the queue (its progress is kept; restarting
    costs the engine's ``restart_overhead``)."""

    job: int


@dataclasses.dataclass(frozen=True, slots=True)
class Resize:
    """Move running job ``job`` to ``gpus`` (elastic jobs; size within ``[min_gpus, max_gpus]``).
    GPUs it already holds may be kept; it pays the engine's ``resize_overhead``."""

    job: int
    gpus: Sequence[int] | np.ndarray


@dataclasses.dataclass(frozen=True, slots=True)
class Share:
    """Start queued job ``job`` on ``gpus`` that other jobs may already use (GPU sharing), up to
    the cluster's ``gpu_share_limit`` jobs per GPU."""

    job: int
    gpus: Sequence[int] | np.ndarray


@dataclasses.dataclass(frozen=True, slots=True)
class Offload:
    """Run queued job ``job`` in the cluster's cloud pool (no capacity limit, reference GPU type,
    paid per GPU-hour; Starburst). Preempting it brings it back to the queue."""

    job: int


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    """Restrict queued job ``job`` to the nodes of ``region`` from now on (geo-distributed
    scheduling, MAST)."""

    job: int
    region: str


@dataclasses.dataclass(frozen=True, slots=True)
class Reject:
    """Refuse queued job ``job`` (admission control); it ends as rejected."""

    job: int


@dataclasses.dataclass(frozen=True, slots=True)
class Wake:
    """Ask for a decision point at absolute time ``time`` (>= now), e.g. a waiting timer."""

    time: float


@dataclasses.dataclass(frozen=True, slots=True)
class Replicate:
    """Start copying ``dataset`` to ``region`` (engines built with ``dataset_size_tb``; MAST).

    The copy takes the dataset's storage in ``region`` at once and is ready ``size_tb x 8e12 /
    (spec.replication_gbps x 1e9)`` seconds later, a decision point. Invalid when the region
    already holds or is copying the dataset, or its storage (``spec.region_storage_tb``) would
    overflow."""

    dataset: str
    region: str


@dataclasses.dataclass(frozen=True, slots=True)
class Evict:
    """Delete the ready replica of ``dataset`` in ``region``, freeing its storage. Invalid for a
    copy still in flight, for the dataset's last ready replica, and while a job running on GPUs
    of that region reads the dataset."""

    dataset: str
    region: str


#: Every op type the engine understands.
Op = Start | Preempt | Resize | Share | Offload | Route | Reject | Wake | Replicate | Evict


@runtime_checkable
class Scheduler(Protocol):
    """What the engine needs from a scheduler.

    Attributes:
        name: registry name, used in results.
        round_seconds: period of extra decision points, or None for purely event-driven.
    """

    name: str
    round_seconds: float | None

    def reset(self, spec: ClusterSpec, jobs: JobTable, rng: np.random.Generator) -> None:
        """Called once before a simulation with the cluster, the job table (without true
        durations: ask ``view.predict_duration``) and a seeded RNG."""

    def schedule(self, view: ClusterView) -> Sequence[Op]:
        """Return the ops to apply now, in order."""


class Plan:
    """A scratch copy of the free-GPU state, for planning several ops in one decision.

    Reservations change only the plan, never the engine: return the matching ops and the engine
    re-validates them. Copies are made lazily: changes are first noted as per-GPU and per-node
    differences, and the engine's arrays are copied only when the plan is read after a change (a
    decision that starts one job, the common case, then copies nothing).
    """

    __slots__ = ("_view", "_load", "_node_free", "free_gpus", "_copied", "_load_diff",
                 "_free_diff")

    def __init__(self, view: ClusterView) -> None:
        eng = view._engine
        self._view = view
        self._load = eng.gpu_load
        self._node_free = eng.node_free
        self.free_gpus = eng.free_gpus
        self._copied = False
        self._load_diff: dict[int, int] = {}  # GPU -> jobs added, until the arrays are copied
        self._free_diff: dict[int, int] = {}  # node -> free GPUs added, until then

    def _own(self) -> None:
        """Copy the engine's arrays and apply the changes noted so far; later changes go to the
        copies directly."""
        if not self._copied:
            load = self._load = self._load.copy()
            node_free = self._node_free = self._node_free.copy()
            for g, d in self._load_diff.items():
                load[g] += d
            for v, d in self._free_diff.items():
                node_free[v] += d
            self._copied = True

    def _current(self) -> None:
        """Make ``_load`` and ``_node_free`` show every change so far (before reading them)."""
        if not self._copied and self._load_diff:
            self._own()

    @property
    def node_free(self) -> np.ndarray:
        """Free GPUs per node in this plan (read-only use)."""
        self._current()
        return self._node_free

    @property
    def gpu_load(self) -> np.ndarray:
        """Jobs per GPU in this plan (read-only use)."""
        self._current()
        return self._load

    def place(self, job: int, num_gpus: int | None = None, placement: Placement | None = None,
              nodes: np.ndarray | None = None) -> np.ndarray | None:
        """Reserve GPUs for ``job`` (``num_gpus`` defaults to its request) with ``placement``
        (default: the engine's strategy), on the nodes the job may use (its GPU type and region)
        and, if given, only on the nodes where the boolean mask ``nodes`` is true. Returns the GPU
        ids, or None if it does not fit."""
        n = int(self._view.jobs.num_gpus[job]) if num_gpus is None else int(num_gpus)
        if n > self.free_gpus:
            return None
        self._current()
        eng = self._view._engine
        strategy = placement or eng.placement
        mask = eng.allowed_nodes(job)
        if nodes is not None:
            mask = nodes if mask is None else mask & nodes
        if mask is None:
            gpus = strategy.place(n, self._node_free, self._load, self._view.spec, job)
        else:
            gpus = strategy.place(n, np.where(mask, self._node_free, 0), self._load,
                                  self._view.spec, job, allowed=mask)
        if gpus is not None:
            self.reserve(gpus)
        return gpus

    def _change(self, gpus: np.ndarray, step: int) -> None:
        """Add ``step`` (+1 or -1) jobs to each of ``gpus``: a GPU whose load leaves 0 (step +1)
        stops being free, one whose load reaches 0 (step -1) becomes free."""
        gpu_node = self._view.spec.gpu_node_list
        # Gangs are small: Python loops beat numpy's per-call overhead.
        if self._copied:
            load, node_free = self._load, self._node_free
            for g in gpus.tolist():
                before = load[g]
                load[g] = before + step
                if (before if step > 0 else before + step) == 0:
                    node_free[gpu_node[g]] -= step
                    self.free_gpus -= step
        else:
            load, load_diff, free_diff = self._load, self._load_diff, self._free_diff
            for g in gpus.tolist():
                d = load_diff.get(g, 0)
                before = load[g] + d
                load_diff[g] = d + step
                if (before if step > 0 else before + step) == 0:
                    v = gpu_node[g]
                    free_diff[v] = free_diff.get(v, 0) - step
                    self.free_gpus -= step

    def reserve(self, gpus: np.ndarray) -> None:
        """Add one job to each of ``gpus`` in the plan (a free GPU becomes used; a used one becomes
        shared)."""
        self._change(gpus, 1)

    def release(self, gpus: np.ndarray) -> None:
        """Remove one job from each of ``gpus`` (e.g. when planning a preemption)."""
        self._change(gpus, -1)


class ClusterView:
    """A read-only window on the engine, valid during one ``schedule`` call.

    Array attributes are live views into the engine state: read them, never write them.
    """

    __slots__ = ("_engine", "new_jobs", "finished")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        #: jobs that entered the queue for the first time since the previous call
        self.new_jobs: list[int] = []
        #: jobs that finished since the previous call
        self.finished: list[int] = []

    # -- clock and cluster ---------------------------------------------------------------
    @property
    def now(self) -> float:
        """Simulated time (s)."""
        return self._engine.now

    @property
    def spec(self) -> ClusterSpec:
        """The cluster."""
        return self._engine.spec

    @property
    def jobs(self) -> JobTable:
        """Static per-job attributes (no true durations)."""
        return self._engine.jobs

    @property
    def free_gpus(self) -> int:
        """GPUs running no job."""
        return self._engine.free_gpus

    @property
    def node_free(self) -> np.ndarray:
        """Free GPUs per node."""
        return self._engine.node_free

    @property
    def gpu_load(self) -> np.ndarray:
        """Jobs on each GPU."""
        return self._engine.gpu_load

    # -- jobs ----------------------------------------------------------------------------
    @property
    def queue(self):
        """Queued job ids in queue order (arrival order; a preempted job rejoins at the end).
        A live keys view: copy it (``list(view.queue)``) before issuing ops if you need a
        snapshot."""
        return self._engine.queue.keys()

    @property
    def running(self):
        """Job ids running on the cluster's GPUs (a live keys view)."""
        return self._engine.alloc.keys()

    @property
    def in_cloud(self):
        """Job ids running in the cloud pool (a live keys view)."""
        return self._engine.cloud.keys()

    @property
    def node_online(self) -> np.ndarray:
        """Per node: False while it is an inference-pool node not lent to training."""
        return self._engine.node_online

    @property
    def online_gpus(self) -> int:
        """GPUs usable now (the inference pool's reclaimed nodes excluded)."""
        return self._engine.online_gpus

    def allowed_nodes(self, job: int) -> np.ndarray | None:
        """Mask of the nodes the job may use (GPU type, region), or None for any node."""
        return self._engine.allowed_nodes(job)

    def allocation(self, job: int) -> np.ndarray:
        """GPU ids held by a running job."""
        return self._engine.alloc[job]

    def attained_service(self, job: int) -> float:
        """GPU-seconds the job has received so far."""
        return self._engine.attained_service(job)

    def executed_time(self, job: int) -> float:
        """Seconds the job has spent running (on any number of GPUs) so far."""
        return self._engine.executed_time(job)

    def progress(self, job: int) -> float:
        """Fraction of the job's work done, in [0, 1]."""
        return self._engine.progress(job)

    def rate(self, job: int) -> float:
        """Current progress rate of a running job (1 = as fast as in the trace)."""
        return float(self._engine.rate[job])

    def preemptions(self, job: int) -> int:
        """How often the job has been preempted."""
        return int(self._engine.preemptions[job])

    def running_since(self, job: int) -> float:
        """When a running job last (re)started."""
        return float(self._engine.run_since[job])

    def last_queued(self, job: int) -> float:
        """When the job last entered the queue (arrival or preemption)."""
        return float(self._engine.queued_since[job])

    # -- data placement (engines built with dataset_size_tb) ------------------------------
    @property
    def datasets_modelled(self) -> bool:
        """True when the engine models datasets, replicas and storage (``dataset_size_tb``);
        otherwise the ``dataset`` column is a label and jobs may run in any region."""
        return self._engine.data_enabled

    def replicas(self, dataset: str) -> dict[str, float]:
        """``{region: ready time}`` of every replica of ``dataset``: ready when the time is
        ``<= now`` (initial replicas: 0), still being copied otherwise. A fresh dict."""
        eng = self._engine
        d = eng.dataset_code(dataset, "replicas")
        names = eng.spec.regions
        return {names[r]: t for r, t in sorted(eng.replicas[d].items())}

    def dataset_size_tb(self, dataset: str) -> float:
        """Size of ``dataset`` in TB."""
        eng = self._engine
        return eng.dataset_tb[eng.dataset_code(dataset, "dataset_size_tb")]

    def storage_used_tb(self, region: str) -> float:
        """TB of ``region``'s storage held by its replicas (copies in flight included)."""
        eng = self._engine
        return eng.storage_used[eng.region_code(region, "storage_used_tb")]

    def storage_free_tb(self, region: str) -> float:
        """TB ``region`` can still take (``inf`` when its storage has no limit)."""
        eng = self._engine
        r = eng.region_code(region, "storage_free_tb")
        return eng.storage_cap[r] - eng.storage_used[r]

    # -- predictions ---------------------------------------------------------------------
    def predict_duration(self, job: int) -> float:
        """Predicted run time (s) of the job on its requested allocation, from the experiment's
        predictor (oracle, noisy oracle, or history)."""
        return self._engine.predictor.duration(job)

    def predict_remaining(self, job: int) -> float:
        """Predicted remaining run time (s) on the requested allocation."""
        return max(self.predict_duration(job) * (1.0 - self._engine.progress(job)), 0.0)

    def rate_with(self, job: int, gpus: np.ndarray) -> float:
        """The rate the perf model would give ``job`` on ``gpus`` (exclusive), for planners that
        compare allocations (elastic and heterogeneity-aware schedulers)."""
        return float(self._engine.perf.rate(job, np.asarray(gpus, dtype=np.int64), 1))

    def annotate(self, job: int, name: str, value: float) -> None:
        """Record a per-job number (e.g. ``"predicted_jct"``) that the result reports as a column
        of the jobs table; metrics use known names (see :mod:`dlsched_gym.metrics`)."""
        self._engine.annotate(job, name, value)

    def what_if(self, *, arrivals: bool = False, work: str = "predicted") -> Engine:
        """An independent copy of the engine's current state for forward simulation
        (:meth:`Engine.clone`): by default without future arrivals and with every unfinished job's
        work taken from the predictor, so a forecast knows what the scheduler may know."""
        return self._engine.clone(arrivals=arrivals, work=work)

    # -- planning ------------------------------------------------------------------------
    def plan(self) -> Plan:
        """A scratch copy of the free-GPU state for planning several ops."""
        return Plan(self)
