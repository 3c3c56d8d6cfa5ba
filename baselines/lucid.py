"""Lucid: profiling pool, GPU-time ordering from a learned estimate, and indolent packing.

Hu, Zhang, Sun, Wen and Zhang, "Lucid: A Non-intrusive, Scalable and Interpretable Scheduler for
Deep Learning Training Jobs", ASPLOS'23 (doi 10.1145/3575693.3575705). The authors' artifact
(S-Lab-System-Group/Lucid, ``simulation/``) was read to settle details (spec
``shared/specs/published-schedulers-b.md`` section 2); no code is taken from it.

Follows the paper and its artifact:

- **Profiler.** A few nodes (``profiler_nodes``, the last ones of the cluster) form a profiling
  pool that the main scheduler never uses. New jobs of at most ``profiler_nodes x
  profile_factor`` GPUs queue there in least-GPU-first order (ties by arrival), placed
  consolidated with strict head-of-line blocking, and run for at most ``profile_seconds``
  (T_prof). A job that ends within T_prof completes in the profiler; the others are stopped and
  enter the main queue. Larger jobs skip the profiler. Defaults: the artifact's Venus setting
  (200 s, factor 4; Philly uses 80 s and factor 2).
- **Ordering.** The main queue is sorted by estimated GPU-time = estimated duration x GPUs,
  smallest first, with backfill (a job that does not fit is skipped); no preemption, no
  elasticity (Lucid is non-intrusive).
- **Indolent packing.** A queued job of at most ``max_pack_gpus`` GPUs is co-located on exactly
  the GPUs of the first running exclusive job ``p`` (in the order they started or became
  exclusive again) with the same GPU count
  such that: the pair fits in GPU memory, ``score(job) + score(p) <= 2`` (an affine pair), and
  ``gputime(job) <= 2 x gputime(p)`` (the partner is not much shorter). Otherwise the job runs
  exclusively where consolidated placement finds room. At most two jobs share a GPU set; when
  one ends the other runs alone again and may be packed anew.
- **Sharing score.** A job's score is 2 if its average co-located speed (normalised to running
  alone) over all measured partners is below 0.85, 1 if below 0.95, else 0: the labels of the
  artifact's Packing Analyze Model, computed here directly from the perf model's measured pair
  table (Gavel's pair throughputs, ``perf.pair_factor``) instead of a decision tree on profile
  counters; models without measured pairs use ``perf.sharing_factor`` (the all-pairs median,
  score 2). As in the artifact, whose trace carries every job's profile, the score is known for
  every job, profiled or not.
- **Arrival-rate switch** (``packing="adaptive"``). Packing is on only while the forecast of
  submitted jobs per 10-minute bin exceeds ``pack_threshold`` (artifact: 2). ``"always"``
  packs unconditionally (the artifact's setting outside Venus), ``"never"`` turns it off.
- **Co-located speed** comes from the engine: with ``perf="throughput"`` (``sharing=True``) the
  engine slows each job of a pair by its measured pair factor (``ThroughputModel.rate_shared``).
  Packing needs a cluster with ``gpu_share_limit >= 2``.
- Annotations: ``estimated_gpu_time`` (the priority, set when a job enters the main queue) and
  ``packed_with`` (the partner's job index, for a job started by packing).

Lucid-inspired reconstructions ([I]/[M] in the spec):

- **Duration estimate** (``estimator="learned"``). The artifact's Workload Estimate Model is an
  EBM (GA2M) trained offline on earlier months. Here a main-effects additive model of log
  duration (user, VC, GPU count, hour of submission, and the job's model and batch size, which
  the profiler reveals) is fitted by ridge-shrunk backfitting on the jobs *finished so far*
  (their observed run time, ``view.executed_time``, which includes profiling and any co-location
  slowdown, as a production log would), never on future jobs: refitted whenever the
  number of finished jobs has doubled since the last fit, and at least every ``refit_seconds``
  (artifact: weekly). Pairwise interactions are not modelled. Before any job has finished the
  estimate is :data:`DEFAULT_ESTIMATE` (so the order is by GPU count). A profiled job is known
  to run longer than T_prof, so its estimate is at least T_prof. The model term is used only
  for jobs that went through the profiler. ``estimator="predictor"`` uses the experiment's
  predictor instead (``view.predict_duration``; oracle for the ablation).
- **Arrival forecast.** The artifact forecasts the next five 10-minute bins with an EBM on lags;
  here the forecast is the mean count per 10 minutes over the last ``forecast_window`` seconds
  (default 3,000 s = five bins), re-evaluated at every decision point (not every 100 s).
- **Profiler details.** The profiling pool has a fixed size (the artifact's Venus auto-scaling
  and "echo scaling" are not modelled) and is taken out of the cluster (the artifact borrows the
  nodes from other VCs). A job stopped after profiling keeps its progress and pays the engine's
  ``restart_overhead`` when it restarts (the artifact restarts it from scratch, without
  overhead, and dates its main-queue entry back to its submission).
- **Estimates are fixed** when a job enters the main queue; jobs started in one decision become
  packing partners from the next decision on.
- **Memory.** The pair must satisfy ``perf.fits_on_gpu`` on the smallest GPU memory of the main
  nodes (model-state memory, a lower bound; pairs Gavel measured as infeasible never pack),
  where the artifact compares profiled memory against 24 GB.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections import deque

import numpy as np

from dlsched_gym.baselines._common import SortedJobs, check_choice, check_positive
from dlsched_gym.baselines.registry import register
from dlsched_gym.errors import ConfigError
from dlsched_gym.perf import (
    REFERENCE_GPU_TYPE,
    canonical_model,
    fits_on_gpu,
    load_tables,
    pair_factor,
    sharing_factor,
)
from dlsched_gym.scheduler import Preempt, Share, Start, Wake

#: Estimated duration (s) before any job has finished: the engine's history predictor default.
DEFAULT_ESTIMATE = 3600.0
#: Sharing-score thresholds on the average co-located speed (Lucid artifact's analyzer labels).
SCORE_THRESHOLDS = (0.85, 0.95)
#: Length of one forecast bin (s): the artifact predicts submissions per 10 minutes.
FORECAST_BIN = 600.0
#: Ridge pseudo-count of every additive effect, and backfitting passes per fit.
_SHRINK, _PASSES = 5.0, 4
_DUE = 1e-6


@functools.cache
def sharing_score(model: str, batch: int) -> int:
    """Lucid's sharing score (0 light, 1 medium, 2 heavy) of (model, batch): from its average
    measured co-located speed over all measured partners in the perf tables (Gavel's pairs on the
    reference type); a model without measured pairs gets ``perf.sharing_factor`` (score 2)."""
    pairs = load_tables()["pairs"][REFERENCE_GPU_TYPE]
    key = canonical_model(model)
    speeds = []
    if key is not None and any(k.startswith(f"{key}@") for k in pairs):
        for partner in sorted({k.split("|")[1] for k in pairs}):
            other, other_batch = partner.split("@")
            f = pair_factor(model, batch, other, int(other_batch))
            if f > 0:  # 0 = measured as infeasible: not a co-location speed
                speeds.append(f)
    speed = float(np.mean(speeds)) if speeds else sharing_factor(model, batch)
    return 2 if speed < SCORE_THRESHOLDS[0] else 1 if speed < SCORE_THRESHOLDS[1] else 0


class AdditiveEstimator:
    """Main-effects additive model of log duration over integer-coded features, fitted by
    ridge-shrunk backfitting (each effect = summed residual / (count + shrink))."""

    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes
        self.mu = math.log(DEFAULT_ESTIMATE)
        self.effects = [np.zeros(s) for s in sizes]

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        """Fit on features ``x`` (rows x features, codes) and targets ``y`` (log durations)."""
        self.mu = float(y.mean())
        fitted = [np.zeros(len(y)) for _ in self.sizes]
        effects = [np.zeros(s) for s in self.sizes]
        total = np.zeros(len(y))
        for _ in range(_PASSES):
            for f, size in enumerate(self.sizes):
                total -= fitted[f]
                resid = y - self.mu - total
                codes = x[:, f]
                eff = np.bincount(codes, resid, size) / (np.bincount(codes, minlength=size) + _SHRINK)
                effects[f] = eff
                fitted[f] = eff[codes]
                total += fitted[f]
        self.effects = effects

    def predict(self, codes: list[int]) -> float:
        """Estimated duration (s); a code < 0 leaves that feature out."""
        z = self.mu
        for eff, c in zip(self.effects, codes):
            if c >= 0:
                z += eff[c]
        return math.exp(z)


@register("lucid")
class Lucid:
    """Lucid (see the module docstring).

    Args:
        profiler_nodes: nodes of the profiling pool (0: no profiler).
        profile_seconds: profiling time limit T_prof (s).
        profile_factor: jobs of at most ``profiler_nodes x profile_factor`` GPUs are profiled.
        packing: ``"adaptive"`` (arrival-rate switch), ``"always"`` or ``"never"``.
        pack_threshold: packing is on while the forecast exceeds this many submissions per
            10 minutes.
        forecast_window: seconds of past submissions averaged by the forecast.
        max_pack_gpus: larger jobs are never packed.
        estimator: ``"learned"`` (additive model on finished jobs) or ``"predictor"``
            (``view.predict_duration``).
        refit_seconds: longest time between two fits of the learned estimator.
    """

    name = "lucid"
    round_seconds = None
    #: the predictor used with ``estimator="predictor"``; the learned estimator needs none
    predictor = "history"

    def __init__(self, profiler_nodes: int = 1, profile_seconds: float = 200.0,
                 profile_factor: int = 4, packing: str = "adaptive", pack_threshold: float = 2.0,
                 forecast_window: float = 3000.0, max_pack_gpus: int = 8,
                 estimator: str = "learned", refit_seconds: float = 86400.0) -> None:
        for param, value in (("profiler_nodes", profiler_nodes), ("profile_factor", profile_factor),
                             ("max_pack_gpus", max_pack_gpus)):
            if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                    and value >= (0 if param == "profiler_nodes" else 1)):
                low = 0 if param == "profiler_nodes" else 1
                raise ConfigError(f"scheduler 'lucid': parameter {param!r} must be an integer >= "
                                  f"{low}, got {value!r}")
        check_choice("lucid", "packing", packing, ("adaptive", "always", "never"))
        check_choice("lucid", "estimator", estimator, ("learned", "predictor"))
        self.profiler_nodes = int(profiler_nodes)
        self.profile_seconds = check_positive("lucid", "profile_seconds", profile_seconds)
        self.profile_factor = int(profile_factor)
        self.packing = packing
        self.pack_threshold = check_positive("lucid", "pack_threshold", pack_threshold,
                                             allow_zero=True)
        self.forecast_window = check_positive("lucid", "forecast_window", forecast_window)
        self.max_pack_gpus = int(max_pack_gpus)
        self.estimator = estimator
        self.refit_seconds = check_positive("lucid", "refit_seconds", refit_seconds)

    # ------------------------------------------------------------------ setup
    def reset(self, spec, jobs, rng) -> None:
        """Split off the profiling pool, score every (model, batch), start with empty queues."""
        if self.profiler_nodes >= spec.num_nodes:
            raise ConfigError(f"scheduler 'lucid': parameter 'profiler_nodes' must be below the "
                              f"cluster's {spec.num_nodes} nodes, got {self.profiler_nodes}")
        if self.packing != "never" and spec.gpu_share_limit < 2:
            raise ConfigError(f"scheduler 'lucid': parameter 'packing'={self.packing!r} needs a "
                              f"cluster with gpu_share_limit >= 2 (cluster {spec.name!r} has "
                              f"{spec.gpu_share_limit}); pass packing='never' otherwise")
        prof = np.zeros(spec.num_nodes, dtype=bool)
        if self.profiler_nodes:
            prof[-self.profiler_nodes:] = True
        self._prof_mask = prof
        self._main_mask = ~prof
        self._main_nodes = np.flatnonzero(~prof)
        self._cap = min(self.profiler_nodes * self.profile_factor, int(spec.node_gpus[prof].sum()))
        mem = min(spec.nodes[i].gpu_mem_gb for i in self._main_nodes.tolist())
        self._gpus = jobs.num_gpus.tolist()
        self._submit = jobs.submit_time.tolist()
        combos, combo = np.unique(np.stack([np.asarray(jobs.model), np.asarray(jobs.batch_size)],
                                           axis=1), axis=0, return_inverse=True)
        combo = combo.reshape(-1)
        names = [(jobs.names["model"][m], int(b)) for m, b in combos.tolist()]
        scores = [sharing_score(m, b) for m, b in names] if self.packing != "never" else []
        self._combo = combo.tolist()
        self._score = [scores[c] for c in self._combo] if scores else []
        self._names = names
        self._mem = mem
        self._fits: dict[tuple[int, int], bool] = {}
        _, size_code = np.unique(np.asarray(jobs.num_gpus), return_inverse=True)
        self._features = np.stack([
            np.asarray(jobs.user), np.asarray(jobs.vc), size_code.reshape(-1),
            (np.asarray(jobs.submit_time, dtype=float) // 3600 % 24).astype(np.int64), combo,
        ], axis=1)
        self._model = AdditiveEstimator([int(self._features[:, f].max(initial=0)) + 1
                                         for f in range(self._features.shape[1])])
        self._done: list[int] = []
        self._done_y: list[float] = []
        self._fitted_on = 0
        self._next_fit = 0.0
        self._profiled = [False] * jobs.n
        self._prio = [0.0] * jobs.n
        self._prof_queue = SortedJobs()
        self._profiling: set[int] = set()
        self._expiry: list[tuple[float, int]] = []
        self._queue = SortedJobs()
        self._exclusive: dict[tuple[int, int], dict[int, None]] = {}
        self._bucket: dict[int, tuple[int, int]] = {}
        self._since = [0] * jobs.n  # order in which running jobs became exclusive
        self._tick = 0
        self._partner: dict[int, int] = {}
        self._arrivals: deque[float] = deque()

    # ------------------------------------------------------------------ estimates
    def _refit(self, now: float) -> None:
        n = len(self._done)
        if n == 0 or n == self._fitted_on or (n < 2 * self._fitted_on and now < self._next_fit):
            return
        rows = np.asarray(self._done)
        self._model.fit(self._features[rows], np.log(np.maximum(np.asarray(self._done_y), 1.0)))
        self._fitted_on = n
        self._next_fit = now + self.refit_seconds

    def _estimate(self, view, j: int) -> float:
        if self.estimator == "predictor":
            return view.predict_duration(j)
        codes = self._features[j].tolist()
        if not self._profiled[j]:
            codes[-1] = -1  # the model is known only after profiling
            return self._model.predict(codes)
        return max(self._model.predict(codes), self.profile_seconds)

    def _enqueue(self, view, j: int) -> None:
        prio = self._estimate(view, j) * self._gpus[j]
        self._prio[j] = prio
        view.annotate(j, "estimated_gpu_time", prio)
        self._queue.add((prio, j), self._gpus[j])

    # ------------------------------------------------------------------ packing
    def _packing_on(self, now: float) -> bool:
        if self.packing != "adaptive":
            return self.packing == "always"
        arrivals = self._arrivals
        while arrivals and arrivals[0] <= now - self.forecast_window:
            arrivals.popleft()
        return len(arrivals) * FORECAST_BIN / self.forecast_window > self.pack_threshold

    def _fits_with(self, a: int, b: int) -> bool:
        key = (a, b) if a <= b else (b, a)
        ok = self._fits.get(key)
        if ok is None:
            ok = self._fits[key] = fits_on_gpu([self._names[a], self._names[b]], self._mem)
        return ok

    def _add_exclusive(self, j: int) -> None:
        if self.packing == "never" or self._gpus[j] > self.max_pack_gpus:
            return
        key = (self._gpus[j], self._score[j])
        self._tick += 1
        self._since[j] = self._tick
        self._exclusive.setdefault(key, {})[j] = None
        self._bucket[j] = key

    def _drop_exclusive(self, j: int) -> None:
        key = self._bucket.pop(j, None)
        if key is not None:
            bucket = self._exclusive[key]
            del bucket[j]
            if not bucket:
                del self._exclusive[key]

    def _find_partner(self, j: int) -> int | None:
        """The running exclusive job, earliest to become exclusive, that forms an affine pair with ``j``."""
        n, s, c = self._gpus[j], self._score[j], self._combo[j]
        half = self._prio[j] / 2.0
        best = None
        for score in range(0, 3 - s):
            bucket = self._exclusive.get((n, score))
            if not bucket:
                continue
            for p in bucket:
                if self._prio[p] >= half and self._fits_with(c, self._combo[p]):
                    if best is None or self._since[p] < self._since[best]:
                        best = p
                    break
        return best

    # ------------------------------------------------------------------ decisions
    def schedule(self, view):
        """Profile new jobs, then start (or pack) main-queue jobs by estimated GPU-time."""
        now = view.now
        for j in view.finished:
            if j in self._profiling:
                self._profiling.discard(j)
                continue
            p = self._partner.pop(j, None)
            if p is not None:
                del self._partner[p]
                self._add_exclusive(p)
            else:
                self._drop_exclusive(j)
            self._done.append(j)
            self._done_y.append(view.executed_time(j))
        if self.estimator == "learned":
            self._refit(now)
        for j in view.new_jobs:
            self._arrivals.append(now)
            if self._gpus[j] <= self._cap:
                self._prof_queue.add((self._gpus[j], j), self._gpus[j])
            else:
                self._enqueue(view, j)
        plan = view.plan()
        ops: list = []
        expiry = self._expiry
        while expiry and expiry[0][0] <= now + _DUE:
            _, j = heapq.heappop(expiry)
            if j in self._profiling:
                self._profiling.discard(j)
                plan.release(view.allocation(j))
                ops.append(Preempt(j))
                self._profiled[j] = True
                self._enqueue(view, j)
        if self._prof_queue.items:
            started = []
            for _, j in self._prof_queue.items:
                gpus = plan.place(j, nodes=self._prof_mask)
                if gpus is None:
                    break  # least-GPU-first, no backfill
                started.append(j)
                ops.append(Start(j, gpus))
                self._profiling.add(j)
                heapq.heappush(expiry, (now + self.profile_seconds, j))
            for j in started:
                self._prof_queue.remove(j)
            if started:
                ops.append(Wake(now + self.profile_seconds))
        if self._queue.items:
            ops += self._fill_main(view, plan, now)
        return ops

    def _fill_main(self, view, plan, now: float) -> list:
        queue = self._queue
        packing = self._packing_on(now) and bool(self._exclusive)
        main_free = int(plan.node_free[self._main_nodes].sum())
        smallest = queue.smallest_request()
        if main_free < smallest and not packing:
            return []
        ops: list = []
        started: list[int] = []
        failed: dict[tuple[int, int, int], None] = {}
        for _, j in queue.items:
            n = self._gpus[j]
            if packing and n <= self.max_pack_gpus:
                key = (n, self._score[j], self._combo[j])
                if key not in failed:  # the queue is in GPU-time order: a later job of the
                    p = self._find_partner(j)  # same kind fails as well
                    if p is not None:
                        gpus = view.allocation(p)
                        plan.reserve(gpus)
                        ops.append(Share(j, gpus))
                        view.annotate(j, "packed_with", p)
                        self._drop_exclusive(p)
                        self._partner[j] = p
                        self._partner[p] = j
                        started.append(j)
                        packing = bool(self._exclusive)
                        continue
                    failed[key] = None
            if n <= main_free:
                gpus = plan.place(j, nodes=self._main_mask)
                if gpus is not None:
                    ops.append(Start(j, gpus))
                    main_free -= n
                    started.append(j)
            if main_free < smallest and not packing:
                break
        for j in started:
            queue.remove(j)
            if j not in self._partner:
                self._add_exclusive(j)
        return ops
