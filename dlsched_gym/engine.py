"""The event-driven cluster simulator.

Time jumps from event to event (arrival, completion, a scheduler's round or wake-up); nothing
ticks. Each running job progresses at a rate given by the perf model; its completion event is
pushed on a heap and invalidated by a version number when its rate changes, so no event ever scans
all jobs. State is struct-of-arrays (numpy) indexed by the job's row in the workload, plus small
incremental indexes (free GPUs per node, jobs per GPU, the queue as an insertion-ordered dict).

Two ways to drive it:

- :meth:`Engine.run` with a :class:`~dlsched_gym.scheduler.Scheduler`: the whole simulation;
- :meth:`Engine.reset`, then :meth:`Engine.next_decision` / :meth:`Engine.apply` in a loop: one
  decision point at a time (how the Gymnasium environment drives it).

Invariants (tested): no GPU holds more jobs than the share limit; no job starts before it is
submitted; a job's completed work never exceeds its total work; every job ends exactly once
(finished, rejected, or unfinished at a truncation or stall, which the result records).
"""

from __future__ import annotations

import copy
import heapq
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dlsched_gym.cluster import ClusterSpec, make_cluster
from dlsched_gym.errors import ConfigError, SchedulerError, WorkloadError
from dlsched_gym.perf import PerfModel, make_perf
from dlsched_gym.placement import Placement, make_placement
from dlsched_gym.predictors import Predictor, make_predictor
from dlsched_gym.scheduler import (
    ClusterView,
    Evict,
    Offload,
    Preempt,
    Reject,
    Replicate,
    Resize,
    Route,
    Share,
    Start,
    Wake,
)

if TYPE_CHECKING:
    from dlsched_gym.scheduler import Scheduler
    from dlsched_gym.workload import Workload

#: Job states.
FUTURE, QUEUED, RUNNING, FINISHED, REJECTED = 0, 1, 2, 3, 4
STATE_NAMES = ("future", "queued", "running", "finished", "rejected")

_COMPLETION, _POOL, _WAKE, _ROUND, _REPLICA = 0, 1, 2, 3, 4
#: Bits per TB (decimal), for replication delays.
TB_BITS = 8e12
#: Python and numpy real-number types (for option checks).
_REAL = (int, float, np.integer, np.floating)
#: Tolerance (TB) of the storage check.
_STORAGE_EPS = 1e-9


class JobTable:
    """Static per-job attributes as numpy arrays (what schedulers may read; no durations).

    String columns (``user``, ``vc``, ``model``, ``gpu_type``, ``region``, ``dataset``) are integer
    codes; ``names[column][code]`` gives the string back.
    """

    CATEGORICAL = ("user", "vc", "model", "gpu_type", "region", "dataset", "status")
    NUMERIC = ("submit_time", "num_gpus", "min_gpus", "max_gpus", "deadline", "priority",
               "batch_size", "iterations")

    def __init__(self, table: pd.DataFrame) -> None:
        self.n = len(table)
        self.job_id = table["job_id"].to_numpy(dtype=object)
        self.names: dict[str, list[str]] = {}
        for col in self.NUMERIC:
            arr = table[col].to_numpy()
            arr.setflags(write=False)
            setattr(self, col, arr)
        for col in self.CATEGORICAL:
            codes, uniques = pd.factorize(table[col], sort=True)
            codes = codes.astype(np.int64)
            codes.setflags(write=False)
            setattr(self, col, codes)
            self.names[col] = [str(u) for u in uniques]

    def __len__(self) -> int:
        return self.n

    def window(self, lo: int, hi: int) -> JobTable:
        """Rows ``lo..hi-1`` as a table of their own, submit times and deadlines shifted so that
        the first job arrives at 0 (what ``JobTable`` of the shifted rows would hold, except that
        ``names`` stay this table's: codes index the same lists). Slicing beats factorizing the
        string columns again, which is most of an engine's construction."""
        if not 0 <= lo < hi <= self.n:
            raise ConfigError(f"JobTable.window: need 0 <= lo < hi <= {self.n}, got {lo}, {hi}")
        out = JobTable.__new__(JobTable)
        out.n = hi - lo
        out.job_id = self.job_id[lo:hi]
        out.names = self.names
        shift = self.submit_time[lo]
        for col in self.NUMERIC + self.CATEGORICAL:
            arr = getattr(self, col)[lo:hi]
            if col in ("submit_time", "deadline"):
                arr = arr - shift
                arr.setflags(write=False)
            setattr(out, col, arr)
        return out


def _overhead_fn(value: float | Callable[[int], float], what: str) -> Callable[[int], float]:
    if callable(value):
        return value
    v = float(value)
    if not (v >= 0 and math.isfinite(v)):
        raise WorkloadError(f"{what} must be a finite number of seconds >= 0, got {value!r}")
    return lambda gpus: v


def lucid_overhead(gpus: int) -> float:
    """Checkpoint/restart cost used by the Lucid artifact (Hu et al., ASPLOS'23): 40 s for jobs of
    at most 8 GPUs, 60 s above."""
    return 40.0 if gpus <= 8 else 60.0


class Engine:
    """The simulator.

    Args:
        workload: the jobs (a :class:`~dlsched_gym.workload.Workload`).
        cluster: a :class:`~dlsched_gym.cluster.ClusterSpec` or a spec string.
        placement: strategy for ``Start(job)`` ops without GPUs (name or object).
        perf: the rate model (name or object); ``"duration"`` reproduces trace durations;
            ``"network"`` adds link contention between jobs that span servers (coupled rates).
        predictor: what ``view.predict_duration`` answers (name or object).
        restart_overhead: seconds without progress after a preempted job restarts; a number or a
            function of the job's GPU count (e.g. :func:`lucid_overhead`). Default 0.
        resize_overhead: seconds without progress after a resize. Default 0.
        seed: seeds the scheduler's RNG, the predictor and random placement.
        max_time: stop at this simulated time; unfinished jobs are recorded.
        timeline_interval: sample queue length and utilization every this many simulated seconds
            (at the first decision point after each boundary); None turns sampling off.
        dataset_size_tb: model data placement (MAST): the size in TB of every dataset named in
            the workload's ``dataset`` column, one number or ``{dataset: TB}``. Jobs reading a
            dataset may then start only in regions holding a replica (``Replicate``/``Evict``
            ops, storage ``spec.region_storage_tb``, copy bandwidth ``spec.replication_gbps``);
            a job started where its copy is still in flight holds its GPUs without progress until
            the copy is ready. None (default): datasets are labels, jobs run anywhere.
        initial_replicas: ``{dataset: [region, ...]}``: where each dataset is stored at time 0
            (these copies count in storage; they may be evicted once another copy is ready).
            Default: the most common home region (``region`` column, names of the cluster's
            regions) of the jobs reading it, the lowest region index on a tie, or the region
            with the most GPUs when none of its jobs has one. Needs ``dataset_size_tb``.
        jobs: the workload's :class:`JobTable`, when the caller has it already (e.g. a
            :meth:`JobTable.window` of a whole trace's); built from ``workload.table`` otherwise.
    """

    def __init__(
        self,
        workload: Workload,
        cluster: ClusterSpec | str,
        *,
        placement: str | Placement = "consolidated",
        perf: str | PerfModel = "duration",
        predictor: str | Predictor = "oracle",
        restart_overhead: float | Callable[[int], float] = 0.0,
        resize_overhead: float | Callable[[int], float] = 0.0,
        seed: int = 0,
        max_time: float = math.inf,
        timeline_interval: float | None = 600.0,
        dataset_size_tb: float | Mapping[str, float] | None = None,
        initial_replicas: Mapping[str, Sequence[str]] | None = None,
        jobs: JobTable | None = None,
    ) -> None:
        self.workload = workload
        self.spec = make_cluster(cluster)
        self.seed = int(seed)
        self.placement = make_placement(placement, self.seed)
        self.perf = make_perf(perf)
        self.predictor = make_predictor(predictor)
        self.restart_overhead = _overhead_fn(restart_overhead, "restart_overhead")
        self.resize_overhead = _overhead_fn(resize_overhead, "resize_overhead")
        self.max_time = float(max_time)
        self.timeline_interval = timeline_interval
        table = workload.table
        too_big = table["min_gpus"].to_numpy() > self.spec.num_gpus
        if too_big.any():
            row = int(np.flatnonzero(too_big)[0])
            raise WorkloadError(
                f"workload {workload.name!r}: row {row} (job_id {table['job_id'].iloc[row]!r}) "
                f"needs {int(table['min_gpus'].iloc[row])} GPUs but cluster {self.spec.name!r} has "
                f"{self.spec.num_gpus}; drop such jobs explicitly (--drop-invalid) or use a larger "
                "cluster"
            )
        if jobs is not None and jobs.n != len(table):
            raise ConfigError(f"Engine: jobs has {jobs.n} rows but workload {workload.name!r} has "
                              f"{len(table)}")
        self.jobs = JobTable(table) if jobs is None else jobs
        known = set(self.spec.gpu_types)
        gpu_type_names = self.jobs.names["gpu_type"]
        for name in (gpu_type_names[c] for c in np.unique(self.jobs.gpu_type).tolist()):
            if name and name not in known:
                row = int(np.flatnonzero(table["gpu_type"].to_numpy() == name)[0])
                raise WorkloadError(
                    f"workload {workload.name!r}: row {row} requests GPU type {name!r}, but cluster "
                    f"{self.spec.name!r} has only {sorted(known)}"
                )
        self.work = table["duration"].to_numpy(dtype=np.float64).copy()
        self.work.setflags(write=False)
        self._setup_datasets(dataset_size_tb, initial_replicas)
        self.view = ClusterView(self)
        self.reset()

    def _setup_datasets(self, size_tb, initial) -> None:
        """Static data-placement tables: dataset sizes, initial replicas, region storage."""
        spec = self.spec
        self._region_index = {name: r for r, name in enumerate(spec.regions)}
        self.storage_cap = [spec.storage_tb(name) for name in spec.regions]
        names = self.jobs.names["dataset"]
        named = [x for x in names if x]
        #: whether datasets, replicas and storage are modelled
        self.data_enabled = size_tb is not None and bool(named)
        if size_tb is None:
            if initial is not None:
                raise ConfigError("Engine: initial_replicas needs dataset_size_tb (the sizes of "
                                  "the datasets)")
            self.dataset_tb, self._initial, self._job_dataset = [], [], []
            self._dataset_index = {}
            return
        sizes = size_tb if isinstance(size_tb, Mapping) else dict.fromkeys(named, size_tb)
        missing = [x for x in named if x not in sizes]
        if missing:
            raise ConfigError(f"Engine: dataset_size_tb has no size for datasets {missing[:5]}")
        for x in named:
            v = sizes[x]
            if isinstance(v, bool) or not isinstance(v, _REAL) or not (0 < v < math.inf):
                raise ConfigError(f"Engine: dataset_size_tb[{x!r}] must be a finite number of TB "
                                  f"> 0, got {v!r}")
        #: size (TB) per dataset code (0 for the empty name: no data)
        self.dataset_tb = [float(sizes[x]) if x else 0.0 for x in names]
        self._dataset_index = {x: d for d, x in enumerate(names) if x}
        no_data = names.index("") if "" in names else -1
        #: dataset code per job, -1 for none
        self._job_dataset = [-1 if d == no_data else d for d in self.jobs.dataset.tolist()]
        self._initial = self._initial_replicas(initial, names)
        used = [0.0] * len(spec.regions)
        for d, rs in enumerate(self._initial):
            for r in rs:
                used[r] += self.dataset_tb[d]
        for r, name in enumerate(spec.regions):
            if used[r] > self.storage_cap[r] + _STORAGE_EPS:
                raise ConfigError(f"Engine: the initial replicas need {used[r]:g} TB in region "
                                  f"{name!r}, whose storage is {self.storage_cap[r]:g} TB")

    def _initial_replicas(self, initial, names: list[str]) -> list[tuple[int, ...]]:
        """Region codes of each dataset's initial replicas (see ``initial_replicas``)."""
        regions = self._region_index
        if initial is not None:
            if not isinstance(initial, Mapping):
                raise ConfigError(f"Engine: initial_replicas must map datasets to region lists, "
                                  f"got {initial!r}")
            unknown = sorted(set(initial) - set(self._dataset_index))
            if unknown:
                raise ConfigError(f"Engine: initial_replicas names datasets {unknown[:5]} that no "
                                  "job reads")
            out = []
            for name in names:
                rs = initial.get(name, ()) if name else ()
                if name and (isinstance(rs, str) or not rs or any(x not in regions for x in rs)):
                    raise ConfigError(f"Engine: initial_replicas[{name!r}] must list regions of "
                                      f"{list(self.spec.regions)}, got {rs!r}")
                out.append(tuple(sorted({regions[x] for x in rs})))
            return out
        home_names = self.jobs.names["region"]
        home = np.array([regions.get(x, -1) for x in home_names], dtype=np.int64)[self.jobs.region]
        counts = np.zeros((len(names), len(regions)), dtype=np.int64)
        known = home >= 0
        np.add.at(counts, (self.jobs.dataset[known], home[known]), 1)
        biggest = int(np.argmax(self.spec.region_gpus))
        return [(int(counts[d].argmax()) if counts[d].any() else biggest,) if name else ()
                for d, name in enumerate(names)]

    def dataset_code(self, dataset: str, what: str) -> int:
        """The code of a modelled dataset name (SchedulerError naming ``what`` otherwise)."""
        if not self.data_enabled:
            raise SchedulerError(f"{what}: the engine does not model datasets (build it with "
                                 "dataset_size_tb)")
        d = self._dataset_index.get(dataset)
        if d is None:
            raise SchedulerError(f"{what}: unknown dataset {dataset!r}; the workload's datasets "
                                 f"are {sorted(self._dataset_index)[:10]}")
        return d

    def region_code(self, region: str, what: str) -> int:
        """The index of a region name (SchedulerError naming ``what`` otherwise)."""
        r = self._region_index.get(region)
        if r is None:
            raise SchedulerError(f"{what}: unknown region {region!r}; the cluster has "
                                 f"{list(self.spec.regions)}")
        return r

    # ------------------------------------------------------------------ state
    def reset(self, scheduler: Scheduler | None = None) -> None:
        """Clear all state; bind ``scheduler`` (its ``reset`` is called and its rounds armed)."""
        n = self.jobs.n
        rng = np.random.default_rng(self.seed)
        sched_rng, pred_rng, perf_rng = rng.spawn(3)
        self.now = 0.0
        # Per-job state: Python lists (scalar access in the event loop is several times faster
        # than on numpy arrays); SimResult converts them to arrays.
        self.state = [FUTURE] * n
        self.done_work = [0.0] * n
        self.t_last = [0.0] * n
        self.progress_from = [0.0] * n
        self.rate = [0.0] * n
        self.version = [0] * n
        self.first_start = [math.nan] * n
        self.end_time = [math.nan] * n
        self.queued_since = [math.nan] * n
        self.run_since = [0.0] * n
        self.exec_acc = [0.0] * n
        self.attained_acc = [0.0] * n
        self.preemptions = [0] * n
        self.restart_pending = [False] * n
        self.run_gpus = [0] * n
        self.job_region = [-1] * n
        # Region demand (multi-region clusters): GPUs requested by the queued and running jobs
        # counted in each region, and its time integral. A job counts in the region it was routed
        # to, or else, from its first start, in the region of its first GPU.
        self.demand_region = [-1] * n
        self._multi_region = len(self.spec.regions) > 1
        self.region_demand = [0] * len(self.spec.regions)
        self.region_demand_seconds = [0.0] * len(self.spec.regions)
        self._submit = self.jobs.submit_time.tolist()
        self._work = self.work.tolist()
        self._min_gpus = self.jobs.min_gpus.tolist()
        self._max_gpus = self.jobs.max_gpus.tolist()
        self.share_limit = self.spec.gpu_share_limit
        self.gpu_load = np.zeros(self.spec.num_gpus, dtype=np.int64)
        self.node_free = self.spec.node_gpus.copy()
        self.free_gpus = self.spec.num_gpus
        # Nodes of the lendable inference pool start offline: their GPUs are marked full so no
        # placement sees them, and they count neither as free nor as busy.
        self.node_online = np.ones(self.spec.num_nodes, dtype=bool)
        self.offline_gpus = 0
        for node in np.flatnonzero(self.spec.node_pool_inference):
            self._set_offline(int(node))
        self.gpu_jobs: list[set[int]] | None = (
            [set() for _ in range(self.spec.num_gpus)] if self.share_limit > 1 else None
        )
        self.queue: dict[int, None] = {}
        self.alloc: dict[int, np.ndarray] = {}
        self.cloud: dict[int, None] = {}
        self.heap: list[tuple[float, int, int, int, int]] = []
        self._seq = 0
        self._next_arrival = 0
        self._arrival_limit = n
        for t, lendable in self.spec.inference_schedule:
            self._push(float(t), _POOL, int(lendable), 0)
        self.busy_gpu_seconds = 0.0
        self.available_gpu_seconds = 0.0
        self.jobs_in_system_seconds = 0.0
        self.cloud_gpu_seconds = 0.0
        self.forced_preemptions = 0
        self._acted = False
        self.annotations: dict[str, np.ndarray] = {}
        self.finished_count = 0
        self.rejected_count = 0
        self.stalled = False
        self.truncated = False
        self.decisions = 0
        self._timeline: list[tuple[float, int, int, int]] = []
        self._next_sample = 0.0
        self.view.new_jobs = []
        self.view.finished = []
        self.perf.reset(self.spec, self.jobs, perf_rng)
        self._bind_perf_hooks()
        self.predictor.reset(self.jobs, np.asarray(self.work), pred_rng)
        self._type_masks = self._gpu_type_masks()
        self._job_gpu_type = self.jobs.gpu_type.tolist()  # scalar lookups per start: list is faster
        self._region_masks = [self.spec.node_region_index == r for r in range(len(self.spec.regions))]
        # Data placement: per dataset code, region -> time its copy is (or will be) ready.
        self.replicas: list[dict[int, float]] = [dict.fromkeys(rs, 0.0) for rs in self._initial]
        self.storage_used = [0.0] * len(self.spec.regions)
        for d, rs in enumerate(self._initial):
            for r in rs:
                self.storage_used[r] += self.dataset_tb[d]
        #: every copy started: (time, dataset, region, TB)
        self.replication_log: list[tuple[float, str, str, float]] = []
        self._bind(scheduler)
        if scheduler is not None:
            scheduler.reset(self.spec, self.jobs, sched_rng)

    def _bind_perf_hooks(self) -> None:
        # coupled-rate hooks of the perf model (see PerfModel): looked up once, None if absent
        self._perf_placed = getattr(self.perf, "placed", None)
        self._perf_removed = getattr(self.perf, "removed", None)

    def _bind(self, scheduler: Scheduler | None) -> None:
        """Bind ``scheduler``: arm its rounds; call its optional ``bind_perf(perf)`` hook with
        the engine's perf model (a channel for what ops cannot say, e.g. NetPack's PS server)."""
        self.scheduler = scheduler
        self.round_seconds = None
        self._round_armed = False
        bind_perf = getattr(scheduler, "bind_perf", None)
        if bind_perf is not None:
            bind_perf(self.perf)
        if scheduler is not None:
            rs = getattr(scheduler, "round_seconds", None)
            if rs is not None and not (rs > 0 and math.isfinite(rs)):
                raise SchedulerError(f"scheduler {scheduler.name!r}: round_seconds must be > 0")
            self.round_seconds = rs

    def _gpu_type_masks(self) -> dict[int, np.ndarray]:
        """Node mask per requested GPU type code ('' = any type: no mask)."""
        masks = {}
        node_types = np.array([n.gpu_type for n in self.spec.nodes], dtype=object)
        for code, name in enumerate(self.jobs.names["gpu_type"]):
            if name:
                masks[code] = node_types == name
        return masks

    def allowed_nodes(self, job: int) -> np.ndarray | None:
        """Boolean mask of the nodes ``job`` may run on (its requested GPU type and routed region),
        or None when any node will do."""
        mask = self._type_masks.get(self._job_gpu_type[job])
        r = self.job_region[job]
        if r >= 0:
            mask = self._region_masks[r] if mask is None else mask & self._region_masks[r]
        return mask

    @property
    def num_jobs(self) -> int:
        """Jobs in the workload."""
        return self.jobs.n

    @property
    def jobs_in_system(self) -> int:
        """Queued plus running jobs (in the cluster or offloaded to the cloud)."""
        return len(self.queue) + len(self.alloc) + len(self.cloud)

    @property
    def busy_gpus(self) -> int:
        """Online GPUs running at least one job."""
        return self.spec.num_gpus - self.free_gpus - self.offline_gpus

    @property
    def online_gpus(self) -> int:
        """GPUs that may be used now (all but the inference pool's reclaimed nodes)."""
        return self.spec.num_gpus - self.offline_gpus

    @property
    def arrivals_left(self) -> int:
        """Jobs not yet submitted."""
        return self._arrival_limit - self._next_arrival

    @property
    def done(self) -> bool:
        """True when no job can change state any more."""
        return self._finished_flag()

    def _finished_flag(self) -> bool:
        return (self.truncated or self.stalled or
                (not self.heap and not self.alloc and not self.cloud and not self.queue
                 and self._next_arrival >= self._arrival_limit))

    def attained_service(self, job: int) -> float:
        """GPU-seconds the job has held GPUs so far."""
        acc = self.attained_acc[job]
        if self.state[job] == RUNNING:
            acc += (self.now - self.run_since[job]) * self.run_gpus[job]
        return float(acc)

    def executed_time(self, job: int) -> float:
        """Seconds the job has been running so far."""
        acc = self.exec_acc[job]
        if self.state[job] == RUNNING:
            acc += self.now - self.run_since[job]
        return float(acc)

    def work_done(self, job: int) -> float:
        """Work units completed by ``job`` as of now."""
        done = self.done_work[job]
        if self.state[job] == RUNNING:
            start = max(self.t_last[job], self.progress_from[job])
            if self.now > start:
                done += (self.now - start) * self.rate[job]
        return float(min(done, self._work[job]))

    def progress(self, job: int) -> float:
        """Fraction of the job's work completed, in [0, 1]."""
        return self.work_done(job) / self._work[job]

    # ------------------------------------------------------------------ events
    def _push(self, time: float, kind: int, job: int, version: int) -> None:
        self._seq += 1
        heapq.heappush(self.heap, (time, kind, self._seq, job, version))

    def _advance_clock(self, t: float) -> None:
        dt = t - self.now
        if dt > 0:
            online = self.spec.num_gpus - self.offline_gpus
            self.busy_gpu_seconds += (online - self.free_gpus) * dt
            self.available_gpu_seconds += online * dt
            self.jobs_in_system_seconds += (len(self.queue) + len(self.alloc) + len(self.cloud)) * dt
            if self._multi_region:
                acc = self.region_demand_seconds
                for r, d in enumerate(self.region_demand):
                    acc[r] += d * dt
            self.now = t

    def _arm_round(self) -> None:
        rs = self.round_seconds
        if rs is None or self._round_armed:
            return
        nxt = (math.floor(self.now / rs) + 1) * rs
        self._push(nxt, _ROUND, -1, 0)
        self._round_armed = True

    def next_decision(self) -> bool:
        """Process the next batch of simultaneous events.

        Returns True at a decision point (the scheduler should be asked), False when the
        simulation is over (all jobs ended, ``max_time`` reached, or a stall: jobs queued,
        nothing running, nothing left to happen).
        """
        view = self.view
        # Rounds keep coming while jobs run, and while jobs wait as long as the last decision point
        # brought something new (an arrival, a completion, an op); a round-only scheduler that
        # leaves an idle cluster idle twice has stalled.
        progressed = self._acted or bool(view.new_jobs) or bool(view.finished)
        self._acted = False
        view.new_jobs = []
        view.finished = []
        if self.decisions and self.timeline_interval is not None and self.now >= self._next_sample:
            self._sample()  # the state the previous decision left, before time moves on
        if self.round_seconds is not None and (self.alloc or self.cloud or (self.queue and progressed)):
            self._arm_round()
        submit = self._submit
        n = self._arrival_limit
        heap = self.heap
        state = self.state
        queue = self.queue
        while True:
            nxt = self._next_arrival
            if nxt >= n and not (queue or self.alloc or self.cloud):
                return False  # every job has ended; later pool or wake events change nothing
            t_arr = submit[nxt] if nxt < n else math.inf
            t_evt = heap[0][0] if heap else math.inf
            t = t_arr if t_arr < t_evt else t_evt
            if t == math.inf:
                if self.queue:
                    self.stalled = True
                return False
            if t > self.max_time:
                self._advance_clock(self.max_time)
                self.truncated = True
                return False
            self._advance_clock(t)
            changed = False
            if t_arr <= t:  # submit the arrivals due now (locals: this runs once per job)
                queued_since, new_jobs = self.queued_since, view.new_jobs
                while nxt < n and submit[nxt] <= t:
                    state[nxt] = QUEUED
                    queue[nxt] = None
                    queued_since[nxt] = t
                    new_jobs.append(nxt)
                    nxt += 1
                self._next_arrival = nxt
                changed = True
            while heap and heap[0][0] <= t:
                _, kind, _, j, ver = heapq.heappop(heap)
                if kind == _COMPLETION:
                    if ver == self.version[j] and state[j] == RUNNING:
                        self._finish(j)
                        changed = True
                elif kind == _ROUND:
                    self._round_armed = False
                    if self.alloc or self.queue or self.cloud:  # an empty cluster decides nothing
                        changed = True
                elif kind == _POOL:
                    self._set_lendable(j)
                    changed = True
                else:
                    changed = True
            if changed:
                self.decisions += 1
                return True

    def _sample(self) -> None:
        self._timeline.append((self.now, len(self.queue), len(self.alloc) + len(self.cloud), self.busy_gpus))
        self._next_sample = (math.floor(self.now / self.timeline_interval) + 1) * self.timeline_interval

    def _finish(self, j: int) -> None:
        self._settle(j)
        self.done_work[j] = self._work[j]
        self._release(j)
        self.state[j] = FINISHED
        self.end_time[j] = self.now
        self.finished_count += 1
        if self._multi_region:
            self._count_demand(j, -1)
        self.view.finished.append(j)
        self.predictor.observe(j, self._work[j])

    # ------------------------------------------------------------------ accounting
    def _count_demand(self, j: int, region: int) -> None:
        """Move job ``j``'s GPU demand to ``region`` (-1: out of every region)."""
        old = self.demand_region[j]
        if old == region:
            return
        g = int(self.jobs.num_gpus[j])
        if old >= 0:
            self.region_demand[old] -= g
        if region >= 0:
            self.region_demand[region] += g
        self.demand_region[j] = region

    def _settle(self, j: int) -> None:
        """Bring the job's completed work up to now."""
        start = self.t_last[j] if self.t_last[j] > self.progress_from[j] else self.progress_from[j]
        if self.now > start:
            done = self.done_work[j] + (self.now - start) * self.rate[j]
            self.done_work[j] = done if done < self._work[j] else self._work[j]
        self.t_last[j] = self.now

    def _reschedule(self, j: int) -> None:
        """Recompute the job's rate and its completion event (old one invalidated by version)."""
        self._settle(j)
        if j in self.cloud:
            r = 1.0  # cloud GPUs are of the reference type, the job runs as in the trace
        else:
            gpus = self.alloc[j]
            sharers = int(self.gpu_load[gpus].max()) if self.gpu_jobs is not None else 1
            rate_shared = getattr(self.perf, "rate_shared", None) if sharers > 1 else None
            if rate_shared is not None:  # the slowdown depends on who the partners are
                partners = sorted(set().union(*(self.gpu_jobs[g] for g in gpus.tolist())) - {j})
                r = float(rate_shared(j, gpus, partners))
            else:
                r = float(self.perf.rate(j, gpus, sharers))
        if not (r >= 0 and r < math.inf):
            raise SchedulerError(f"perf model {self.perf.name!r} gave rate {r!r} for job {j}")
        self.rate[j] = r
        ver = self.version[j] + 1
        self.version[j] = ver
        if r > 0:
            pf = self.progress_from[j]
            begin = pf if pf > self.now else self.now
            self._seq += 1
            heapq.heappush(self.heap, (begin + (self._work[j] - self.done_work[j]) / r, _COMPLETION,
                                       self._seq, j, ver))

    def _occupy(self, j: int, gpus: np.ndarray) -> None:
        load = self.gpu_load
        node_free = self.node_free
        gpu_node = self.spec.gpu_node_list
        newly = 0
        for g in gpus.tolist():
            if load[g] == 0:
                node_free[gpu_node[g]] -= 1
                newly += 1
            load[g] += 1
        self.free_gpus -= newly
        self.alloc[j] = gpus
        self.run_gpus[j] = len(gpus)
        if self.gpu_jobs is not None:
            for g in gpus.tolist():
                self.gpu_jobs[g].add(j)

    def _release(self, j: int, recouple: bool = True) -> Iterable[int] | None:
        """Free the job's GPUs; with ``recouple=False`` return the jobs a coupled perf model
        reports as changed (re-rated by the caller) instead of re-rating them."""
        ran = self.now - self.run_since[j]
        self.exec_acc[j] += ran
        self.attained_acc[j] += ran * self.run_gpus[j]
        if j in self.cloud:
            del self.cloud[j]
            self.cloud_gpu_seconds += ran * self.run_gpus[j]
            return None
        gpus = self.alloc.pop(j)
        load = self.gpu_load
        node_free = self.node_free
        gpu_node = self.spec.gpu_node_list
        freed = 0
        for g in gpus.tolist():
            load[g] -= 1
            if load[g] == 0:
                node_free[gpu_node[g]] += 1
                freed += 1
        self.free_gpus += freed
        if self.gpu_jobs is not None:
            affected: set[int] = set()
            for g in gpus.tolist():
                self.gpu_jobs[g].discard(j)
                affected |= self.gpu_jobs[g]
            for k in sorted(affected):
                self._reschedule(k)
        if self._perf_removed is None:
            return None
        changed = self._perf_removed(j)
        if not recouple:
            return changed
        self._recouple(j, changed)
        return None

    def _recouple(self, j: int, changed: Iterable[int]) -> None:
        """Re-rate the running jobs (other than ``j``) a coupled perf model reported, in order."""
        alloc = self.alloc
        for k in sorted(set(changed)):
            if k != j and k in alloc:
                self._reschedule(k)

    def _neighbours_changed(self, j: int, gpus: np.ndarray) -> None:
        if self.gpu_jobs is None:
            return
        affected: set[int] = set()
        for g in gpus.tolist():
            affected |= self.gpu_jobs[g]
        affected.discard(j)
        for k in sorted(affected):
            self._reschedule(k)

    def annotate(self, job: int, name: str, value: float) -> None:
        """Store a per-job number reported as an extra column of the jobs table."""
        col = self.annotations.get(name)
        if col is None:
            col = self.annotations[name] = np.full(self.jobs.n, np.nan)
        col[job] = value

    # ------------------------------------------------------------------ inference pool
    def _set_offline(self, node: int) -> None:
        lo, hi = int(self.spec.node_first_gpu[node]), int(self.spec.node_first_gpu[node + 1])
        self.gpu_load[lo:hi] = self.share_limit  # marked full: no placement sees these GPUs
        self.node_free[node] = 0
        self.free_gpus -= hi - lo
        self.offline_gpus += hi - lo
        self.node_online[node] = False

    def _set_online(self, node: int) -> None:
        lo, hi = int(self.spec.node_first_gpu[node]), int(self.spec.node_first_gpu[node + 1])
        self.gpu_load[lo:hi] = 0
        self.node_free[node] = hi - lo
        self.free_gpus += hi - lo
        self.offline_gpus -= hi - lo
        self.node_online[node] = True

    def _set_lendable(self, lendable: int) -> None:
        """The inference pool now lends ``lendable`` nodes: lend more, or reclaim some.

        Reclaimed nodes are chosen by the scheduler's optional ``choose_reclaim(view, nodes, k)``
        hook, else those with the fewest busy GPUs (least preemption cost). The scheduler's
        optional ``before_reclaim(view, nodes) -> ops`` hook may then move jobs off them (e.g.
        shrink elastic jobs); jobs still on them are preempted (counted in
        ``forced_preemptions``).
        """
        pool = np.flatnonzero(self.spec.node_pool_inference)
        online = pool[self.node_online[pool]]
        if len(online) < lendable:
            for node in pool[~self.node_online[pool]][: lendable - len(online)]:
                self._set_online(int(node))
            return
        k = len(online) - lendable
        if k <= 0:
            return
        hook = getattr(self.scheduler, "choose_reclaim", None)
        if hook is not None:
            chosen = [int(x) for x in hook(self.view, online.copy(), k)]
            if len(set(chosen)) != k or not set(chosen) <= set(online.tolist()):
                raise SchedulerError(
                    f"choose_reclaim must return {k} distinct lent nodes out of {online.tolist()}, "
                    f"got {chosen}"
                )
        else:
            busy = self.spec.node_gpus[online] - self.node_free[online]
            order = np.lexsort((-online, busy))
            chosen = online[order[:k]].tolist()
        before = getattr(self.scheduler, "before_reclaim", None)
        if before is not None:
            self.apply(before(self.view, list(chosen)))
        doomed = set(chosen)
        gpu_node = self.spec.gpu_node_list
        victims = [j for j, gpus in self.alloc.items() if any(gpu_node[g] in doomed for g in gpus.tolist())]
        for j in victims:
            self._preempt(j)
            self.forced_preemptions += 1
        for node in chosen:
            self._set_offline(node)

    # ------------------------------------------------------------------ what-if
    _LIST_STATE = ("state", "done_work", "t_last", "progress_from", "rate", "version", "first_start",
                   "end_time", "queued_since", "run_since", "exec_acc", "attained_acc", "preemptions",
                   "restart_pending", "run_gpus", "job_region", "demand_region", "region_demand",
                   "region_demand_seconds")

    def clone(self, *, arrivals: bool = True, work: str = "true") -> Engine:
        """An independent copy of the current state, for what-if forward simulation.

        With ``arrivals=False`` the copy sees no job submitted after now (the clone answers "when
        would the jobs already here finish?", as PCS's completion-time predictions do). With
        ``work="predicted"`` every unfinished job's total work is the predictor's duration instead
        of the truth (at least what it has already done), so a forecast knows no more than the
        experiment's predictor. Drive the copy with :meth:`continue_run`. The workload, cluster
        and perf model are shared (they are read-only during a run), except a perf model with
        coupled rates, which is copied (``copy.copy``); the predictor and placement are copied.
        """
        if work not in ("true", "predicted"):
            raise ValueError(f"clone: work must be 'true' or 'predicted', got {work!r}")
        new = copy.copy(self)
        for name in self._LIST_STATE:
            setattr(new, name, list(getattr(self, name)))
        new.gpu_load = self.gpu_load.copy()
        new.node_free = self.node_free.copy()
        new.node_online = self.node_online.copy()
        new.gpu_jobs = None if self.gpu_jobs is None else [set(x) for x in self.gpu_jobs]
        new.queue = dict(self.queue)
        new.alloc = dict(self.alloc)
        new.cloud = dict(self.cloud)
        new.heap = list(self.heap)
        new._timeline = []
        new.timeline_interval = None
        new.predictor = copy.deepcopy(self.predictor)
        new.placement = copy.deepcopy(self.placement)
        new.annotations = {k: v.copy() for k, v in self.annotations.items()}
        new.replicas = [dict(x) for x in self.replicas]
        new.storage_used = list(self.storage_used)
        new.replication_log = list(self.replication_log)
        if self._perf_placed is not None or self._perf_removed is not None:
            new.perf = copy.copy(self.perf)  # a coupled model holds per-run state
            new._bind_perf_hooks()
        new.view = ClusterView(new)
        new.scheduler = None
        if not arrivals:
            new._arrival_limit = self._next_arrival
        if work == "predicted":
            new._work = list(self._work)
            for j in range(self.jobs.n):
                s = self.state[j]
                if s in (FUTURE, QUEUED, RUNNING):
                    new._work[j] = max(self.predictor.duration(j), self.work_done(j))
            for j in list(new.alloc) + list(new.cloud):
                new._reschedule(j)
        return new

    # ------------------------------------------------------------------ ops
    def _check_gpus(self, j: int, gpus, op: str, lo: int, hi: int) -> np.ndarray:
        if isinstance(gpus, np.ndarray) and gpus.dtype.kind in "iu":
            arr = gpus.reshape(-1)
            ids = arr.tolist()
        else:
            # Only integer ids: a float (2.9), a string ("3"), a nested list or a bool must not be
            # truncated or converted into some GPU id.
            ids = list(gpus) if isinstance(gpus, (list, tuple, range)) else None
            if ids is None or not all(isinstance(g, (int, np.integer)) and not isinstance(g, bool)
                                      for g in ids):
                raise SchedulerError(f"job {j}: {op}: gpus must be a list or integer array of GPU "
                                     f"ids, got {gpus!r}")
            ids = [int(g) for g in ids]
            arr = None
        if len(ids) < lo or len(ids) > hi:
            want = f"{lo}" if lo == hi else f"{lo}..{hi}"
            raise SchedulerError(f"job {j}: {op}: got {len(ids)} GPUs, the job accepts {want}")
        if ids and (min(ids) < 0 or max(ids) >= self.spec.num_gpus):
            raise SchedulerError(
                f"job {j}: {op}: GPU ids must lie in 0..{self.spec.num_gpus - 1}, got {ids}"
            )
        if len(set(ids)) != len(ids):
            raise SchedulerError(f"job {j}: {op}: duplicate GPU ids {ids}")
        return arr if arr is not None else np.array(ids, dtype=np.int64)

    def _require(self, j: int, want: int, op: str) -> None:
        if not (isinstance(j, (int, np.integer)) and not isinstance(j, (bool, np.bool_))
                and 0 <= j < self.jobs.n):
            raise SchedulerError(f"{op}: job {j!r} is not a job index (0..{self.jobs.n - 1})")
        s = self.state[j]
        if s != want:
            raise SchedulerError(f"job {j}: {op}: job is {STATE_NAMES[s]}, expected {STATE_NAMES[want]}")

    def _job_regions(self, gpus: np.ndarray) -> list[int]:
        """Region codes of the nodes holding ``gpus``."""
        return np.unique(self.spec.node_region_index[self.spec.gpu_node[gpus]]).tolist()

    def _data_ready(self, j: int, gpus: np.ndarray, op: str) -> float:
        """When ``j``'s dataset is readable in every region of ``gpus`` (0 without a dataset);
        SchedulerError when one of them has no replica, ready or in flight."""
        d = self._job_dataset[j]
        if d < 0:
            return 0.0
        copies = self.replicas[d]
        ready = 0.0
        for r in self._job_regions(gpus):
            t = copies.get(r)
            if t is None:
                names = self.spec.regions
                raise SchedulerError(
                    f"job {j}: {op}: region {names[r]!r} holds no replica of dataset "
                    f"{self.jobs.names['dataset'][d]!r} (replicas in "
                    f"{[names[x] for x in sorted(copies)]}); Replicate it there first"
                )
            if t > ready:
                ready = t
        return ready

    def _start(self, j: int, gpus: np.ndarray) -> None:
        ready = self._data_ready(j, gpus, "Start") if self.data_enabled else 0.0
        del self.queue[j]
        now = self.now
        self.state[j] = RUNNING
        if self.first_start[j] != self.first_start[j]:  # NaN: first start
            self.first_start[j] = now
        self.run_since[j] = now
        self.t_last[j] = now
        pf = now
        if self.restart_pending[j]:
            pf += self.restart_overhead(len(gpus))
            self.restart_pending[j] = False
        self.progress_from[j] = pf if pf > ready else ready
        self._occupy(j, gpus)
        changed = self._perf_placed(j, gpus) if self._perf_placed is not None else None
        self._reschedule(j)
        self._neighbours_changed(j, gpus)
        if changed is not None:
            self._recouple(j, changed)
        if self._multi_region and self.demand_region[j] < 0:
            self._count_demand(j, int(self.spec.node_region_index[self.spec.gpu_node_list[int(gpus[0])]]))

    def _preempt(self, j: int) -> None:
        self._settle(j)
        self._release(j)
        self.state[j] = QUEUED
        self.version[j] += 1
        self.rate[j] = 0.0
        self.preemptions[j] += 1
        self.restart_pending[j] = True
        self.queue[j] = None
        self.queued_since[j] = self.now

    def _check_nodes(self, j: int, gpus: np.ndarray, op: str) -> None:
        mask = self.allowed_nodes(j)
        if mask is not None:
            nodes = self.spec.gpu_node[gpus]
            bad = gpus[~mask[nodes]]
            if len(bad):
                raise SchedulerError(
                    f"job {j}: {op}: GPUs {bad.tolist()} are outside the nodes it may use "
                    f"(GPU type {self.jobs.names['gpu_type'][self.jobs.gpu_type[j]] or 'any'!r}, "
                    f"region {self.spec.regions[self.job_region[j]] if self.job_region[j] >= 0 else 'any'!r})"
                )

    def _in_use(self, gpus: np.ndarray, limit: int) -> list[int]:
        load = self.gpu_load
        return [g for g in gpus.tolist() if load[g] >= limit]

    def apply(self, ops: Iterable) -> None:
        """Validate and apply ops in order; raises :class:`SchedulerError` on the first bad one."""
        for op in ops:
            self._acted = True
            cls = type(op)
            if cls is Start:
                j = op.job
                self._require(j, QUEUED, "Start")
                if op.gpus is None:
                    n = int(self.jobs.num_gpus[j])
                    mask = self.allowed_nodes(j)
                    node_free = self.node_free if mask is None else np.where(mask, self.node_free, 0)
                    if n > self.free_gpus:
                        gpus = None
                    elif mask is None:
                        gpus = self.placement.place(n, node_free, self.gpu_load, self.spec, j)
                    else:
                        gpus = self.placement.place(n, node_free, self.gpu_load, self.spec, j,
                                                    allowed=mask)
                    if gpus is None:
                        raise SchedulerError(
                            f"job {j}: Start: {n} GPUs do not fit with placement "
                            f"{self.placement.name!r} ({self.free_gpus} GPUs free)"
                        )
                else:
                    gpus = self._check_gpus(j, op.gpus, "Start", self._min_gpus[j], self._max_gpus[j])
                    busy = self._in_use(gpus, 1)
                    if busy:
                        raise SchedulerError(f"job {j}: Start: GPUs {busy} are in use")
                    self._check_nodes(j, gpus, "Start")
                self._start(j, gpus)
            elif cls is Preempt:
                j = op.job
                self._require(j, RUNNING, "Preempt")
                self._preempt(j)
            elif cls is Share:
                j = op.job
                self._require(j, QUEUED, "Share")
                if self.gpu_jobs is None:
                    raise SchedulerError(
                        f"job {j}: Share: cluster {self.spec.name!r} does not allow GPU sharing "
                        "(gpu_share_limit = 1)"
                    )
                gpus = self._check_gpus(j, op.gpus, "Share", self._min_gpus[j], self._max_gpus[j])
                full = self._in_use(gpus, self.share_limit)
                if full:
                    raise SchedulerError(
                        f"job {j}: Share: GPUs {full} already hold {self.share_limit} jobs "
                        "(the share limit)"
                    )
                self._check_nodes(j, gpus, "Share")
                self._start(j, gpus)
            elif cls is Resize:
                j = op.job
                self._require(j, RUNNING, "Resize")
                if j in self.cloud:
                    raise SchedulerError(f"job {j}: Resize: the job runs in the cloud pool")
                gpus = self._check_gpus(j, op.gpus, "Resize", self._min_gpus[j], self._max_gpus[j])
                old = set(self.alloc[j].tolist())
                new = np.array([g for g in gpus.tolist() if g not in old], dtype=np.int64)
                limit = self.share_limit if self.gpu_jobs is not None else 1
                busy = self._in_use(new, limit)
                if busy:
                    raise SchedulerError(f"job {j}: Resize: GPUs {busy} are in use")
                self._check_nodes(j, gpus, "Resize")
                ready = self._data_ready(j, gpus, "Resize") if self.data_enabled else 0.0
                self._settle(j)
                gone = self._release(j, recouple=False)
                self.run_since[j] = self.now
                self.progress_from[j] = max(self.now + self.resize_overhead(len(gpus)), ready)
                self._occupy(j, gpus)
                changed = self._perf_placed(j, gpus) if self._perf_placed is not None else None
                self._reschedule(j)
                self._neighbours_changed(j, gpus)
                if gone is not None or changed is not None:
                    self._recouple(j, [*(gone or ()), *(changed or ())])
            elif cls is Reject:
                j = op.job
                self._require(j, QUEUED, "Reject")
                del self.queue[j]
                self.state[j] = REJECTED
                self.end_time[j] = self.now
                self.rejected_count += 1
                if self._multi_region:
                    self._count_demand(j, -1)
            elif cls is Offload:
                j = op.job
                self._require(j, QUEUED, "Offload")
                if self.spec.cloud is None:
                    raise SchedulerError(f"job {j}: Offload: cluster {self.spec.name!r} has no cloud pool")
                del self.queue[j]
                now = self.now
                self.state[j] = RUNNING
                if self.first_start[j] != self.first_start[j]:
                    self.first_start[j] = now
                self.run_since[j] = now
                self.t_last[j] = now
                pf = now
                if self.restart_pending[j]:
                    pf += self.restart_overhead(int(self.jobs.num_gpus[j]))
                    self.restart_pending[j] = False
                self.progress_from[j] = pf
                self.cloud[j] = None
                self.run_gpus[j] = int(self.jobs.num_gpus[j])
                self._reschedule(j)
            elif cls is Route:
                j = op.job
                self._require(j, QUEUED, "Route")
                try:
                    self.job_region[j] = self.spec.regions.index(op.region)
                except ValueError:
                    raise SchedulerError(
                        f"job {j}: Route: unknown region {op.region!r}; "
                        f"the cluster has {list(self.spec.regions)}"
                    ) from None
                if self._multi_region:
                    self._count_demand(j, self.job_region[j])
            elif cls is Wake:
                t = op.time
                if (isinstance(t, bool) or not isinstance(t, _REAL)
                        or not (math.isfinite(t) and t >= self.now)):
                    raise SchedulerError(f"Wake: time {op.time!r} is not a finite time >= now ({self.now})")
                self._push(float(t), _WAKE, -1, 0)
            elif cls is Replicate:
                self._replicate(op)
            elif cls is Evict:
                self._evict(op)
            else:
                raise SchedulerError(f"unknown op {op!r}; expected one of Start, Preempt, Resize, "
                                     "Share, Offload, Route, Reject, Wake, Replicate, Evict")

    def _replicate(self, op: Replicate) -> None:
        d = self.dataset_code(op.dataset, "Replicate")
        r = self.region_code(op.region, f"Replicate({op.dataset!r})")
        where = f"Replicate({op.dataset!r}, {op.region!r})"
        t = self.replicas[d].get(r)
        if t is not None:
            state = "a ready copy" if t <= self.now else f"a copy in flight until {t:g} s"
            raise SchedulerError(f"{where}: the region already holds {state}")
        size = self.dataset_tb[d]
        used, cap = self.storage_used[r], self.storage_cap[r]
        if used + size > cap + _STORAGE_EPS:
            raise SchedulerError(f"{where}: storage full: the dataset needs {size:g} TB, the "
                                 f"region has {cap - used:g} TB free of {cap:g} TB (Evict first)")
        done = self.now + size * TB_BITS / (self.spec.replication_gbps * 1e9)
        self.replicas[d][r] = done
        self.storage_used[r] = used + size
        self.replication_log.append((self.now, op.dataset, op.region, size))
        self._push(done, _REPLICA, d, r)

    def _evict(self, op: Evict) -> None:
        d = self.dataset_code(op.dataset, "Evict")
        r = self.region_code(op.region, f"Evict({op.dataset!r})")
        where = f"Evict({op.dataset!r}, {op.region!r})"
        copies = self.replicas[d]
        t = copies.get(r)
        now = self.now
        if t is None:
            raise SchedulerError(f"{where}: the region holds no replica of the dataset")
        if t > now:
            raise SchedulerError(f"{where}: the copy is in flight until {t:g} s")
        if not any(x != r and tx <= now for x, tx in copies.items()):
            raise SchedulerError(f"{where}: it is the dataset's last ready replica")
        job_dataset = self._job_dataset
        for k, gpus in self.alloc.items():
            if job_dataset[k] == d and r in self._job_regions(gpus):
                raise SchedulerError(f"{where}: job {k} runs in the region and reads the dataset")
        del copies[r]
        self.storage_used[r] -= self.dataset_tb[d]

    # ------------------------------------------------------------------ driving
    def run(self, scheduler: Scheduler, *, progress: bool = False) -> SimResult:
        """Simulate the whole workload under ``scheduler`` and return the result.

        ``progress=True`` shows a progress bar over ended jobs.
        """
        self.reset(scheduler)
        return self.continue_run(scheduler, progress=progress)

    def continue_run(self, scheduler: Scheduler, *, progress: bool = False,
                     result: bool = True) -> SimResult | None:
        """Drive the simulation from its current state to the end under ``scheduler`` (after
        :meth:`reset`, or on a :meth:`clone`, whose scheduler is not reset). ``result=False``
        skips building the :class:`SimResult` (read the engine's state instead)."""
        if scheduler is not self.scheduler:
            self._bind(scheduler)
        view = self.view
        schedule = scheduler.schedule
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=self.jobs.n, unit="job", desc=f"{scheduler.name}", leave=False)
        shown = 0
        try:
            while self.next_decision():
                ops = schedule(view)
                if ops:
                    self.apply(ops)
                if bar is not None:
                    ended = self.finished_count + self.rejected_count
                    if ended - shown >= 1000:
                        bar.update(ended - shown)
                        shown = ended
            if bar is not None:
                bar.update(self.finished_count + self.rejected_count - shown)
        finally:  # an error must not be printed on the bar's line
            if bar is not None:
                bar.close()
        return self.result(scheduler.name) if result else None

    def result(self, scheduler_name: str = "") -> SimResult:
        """Snapshot of the per-job outcome and the time integrals so far."""
        return SimResult(self, scheduler_name)


class SimResult:
    """The outcome of a simulation: per-job times and the engine's time integrals.

    Use :func:`dlsched_gym.metrics.summarize` for the summary metrics and :meth:`jobs_frame` for
    the per-job table.
    """

    def __init__(self, engine: Engine, scheduler_name: str) -> None:
        self.scheduler = scheduler_name
        self.workload_name = engine.workload.name
        self.cluster = engine.spec.name
        self.num_gpus = engine.spec.num_gpus
        self.job_id = engine.jobs.job_id
        self.submit_time = np.asarray(engine.jobs.submit_time, dtype=float)
        self.num_gpus_req = np.asarray(engine.jobs.num_gpus)
        self.duration = np.asarray(engine.work)
        self.deadline = np.asarray(engine.jobs.deadline, dtype=float)
        self.start_time = np.array(engine.first_start, dtype=float)
        self.end_time = np.array(engine.end_time, dtype=float)
        self.state = np.array(engine.state, dtype=np.int8)
        self.preemptions = np.array(engine.preemptions, dtype=np.int64)
        self.busy_gpu_seconds = engine.busy_gpu_seconds
        self.available_gpu_seconds = engine.available_gpu_seconds
        self.cloud_gpu_seconds = engine.cloud_gpu_seconds
        self.cloud_price = engine.spec.cloud.price_per_gpu_hour if engine.spec.cloud else None
        self.forced_preemptions = engine.forced_preemptions
        #: region name -> (GPU-seconds demanded, GPUs) on multi-region clusters (else empty)
        self.region_demand = ({name: (engine.region_demand_seconds[r], int(gpus))
                               for r, (name, gpus) in enumerate(zip(engine.spec.regions,
                                                                    engine.spec.region_gpus))}
                              if engine._multi_region else {})
        self.annotations = {k: v.copy() for k, v in engine.annotations.items()}
        #: every dataset copy started (engines modelling datasets): (time, dataset, region, TB)
        self.replications = list(engine.replication_log)
        self.jobs_in_system_seconds = engine.jobs_in_system_seconds
        self.now = engine.now
        self.stalled = engine.stalled
        self.truncated = engine.truncated
        self.decisions = engine.decisions
        self._timeline_rows = list(engine._timeline)

    @property
    def timeline(self) -> pd.DataFrame:
        """The engine's samples: time, queued jobs, running jobs, busy GPUs (built when read: most
        results, e.g. every env episode's, are only summarized)."""
        return pd.DataFrame(self._timeline_rows, columns=["time", "queued", "running", "busy_gpus"])

    def jobs_frame(self) -> pd.DataFrame:
        """One row per job: ids, times, JCT, queueing delay, GPUs, preemptions, final state."""
        jct = self.end_time - self.submit_time
        finished = self.state == FINISHED
        return pd.DataFrame({**{
            "job_id": self.job_id,
            "submit_time": self.submit_time,
            "start_time": self.start_time,
            "end_time": np.where(finished, self.end_time, np.nan),
            "jct": np.where(finished, jct, np.nan),
            "queueing_delay": self.start_time - self.submit_time,
            "duration": self.duration,
            "num_gpus": self.num_gpus_req,
            "preemptions": self.preemptions,
            "deadline": self.deadline,
            "state": np.asarray(STATE_NAMES, dtype=object)[self.state],
        }, **self.annotations})


def simulate(workload: Workload, cluster: ClusterSpec | str, scheduler: Scheduler,
             **engine_options) -> SimResult:
    """One-call simulation: ``Engine(workload, cluster, **engine_options).run(scheduler)``."""
    return Engine(workload, cluster, **engine_options).run(scheduler)
