"""PCS: predictability-centric scheduling by weighted fair queuing over job-size classes.

Bin Faisal, Martin, Bashir, Lamelas and Dogar, "When will my ML Job finish? Toward providing
Completion Time Estimates through Predictability-Centric Scheduling", OSDI 2024, pp. 487-505
(preprint: "Towards providing reliable job completion time predictions using PCS",
arXiv:2401.10354). Artifact: github.com/TuftsNATLab/PCS (read for understanding, not copied).

What follows the paper:

- Jobs fall into size classes by their size, the 1-GPU service time: ``s_j = predicted duration
  x requested GPUs`` (linear scaling of the trace duration), class ``i`` = first with
  ``s_j <= thresholds[i]``; the last class is unbounded. :func:`size_thresholds` builds the
  thresholds from historical sizes with the paper's squared-coefficient-of-variation rule.
- Class weights ``w_i ~ exp(-i * weight_decay)`` (``weight_decay`` is the paper's W; W = 3 gives
  the published .95/.048/.002).
- At every arrival and completion, the GPUs are split over the classes with jobs by weighted
  water-filling: each class gets ``w_i`` of the capacity, capped by its demand (the sum of its
  jobs' maximum GPUs); what capped classes leave is re-split over the others by weight (at most
  100 rounds). The class share is the class's GPU cap.
- Within a class, FIFO by submission (a preempted job keeps its place); an elastic job gets at
  most its efficiency cap ``cap_j(zeta)`` = the largest n with ``speedup_j(n') / n' >= zeta``
  for all ``n' <= n``, starting at ``zeta_min`` and relaxed by ``delta`` while the class share
  is not used up.
- At submission, the job's JCT is predicted by forward simulation (:func:`forward_predict`):
  the engine is cloned without future arrivals and driven to the end by a copy of this
  scheduler; the job's end time in the clone, minus its submission, is annotated as
  ``predicted_jct`` (so :func:`dlsched_gym.metrics.summarize` reports the prediction error).
  With no later arrival the prediction is exact.

PCS-inspired reconstructions (the paper's model is fluid: fractional GPU shares on a pool
without nodes; this engine has integer GPUs on nodes and rigid gang jobs):

- Integer shares: a class may use ``floor(share)`` GPUs; FIFO within the class is strict (the
  first job whose GPU count does not fit the class budget stops the class). The GPUs left over
  (unused budgets and rounding) go to the remaining jobs of all classes in submission order,
  skipping jobs that do not fit; then to elastic jobs up to their maximum. This is the spec's
  "round down, then give remainders FIFO" (the artifact's practical variant PMCS time-shares the
  remainders with a 100 s quantum instead).
- Rigid jobs (``min_gpus == max_gpus``) run on exactly their GPU count; elastic jobs get an
  integer count in ``[min_gpus, max_gpus]``, grown or shrunk with ``Resize``.
- Speed-up curves come from the engine's perf model (``view.rate_with`` on the cluster's first
  ``n`` GPUs, i.e. a consolidated allocation); the default ``duration`` model scales linearly, so
  efficiency caps only bind under a perf model with sub-linear scaling.
- Placement: selected jobs are placed with the engine's placement strategy in class-then-FIFO
  order. An elastic job whose target cannot be placed (fragmentation over nodes) starts on the
  largest count down to its minimum that can; a rigid job that cannot be placed waits for the
  next decision. The GPUs a selected job could not use (not placed, started below its target, or
  not grown) go to the unselected queued jobs in submission order. A running job outside the
  selection is preempted, unless no selected job could use its GPUs. Without the fallback to a
  smaller count, the class's first job waits for a node with its whole target free while the jobs
  behind it take the GPUs as they free up: on a mixed 8-/4-GPU cluster an elastic 4-GPU job whose
  cap is 8 waited for one of the two 8-GPU nodes, and 4-GPU jobs starved.
- The speed-up curve is that of a consolidated allocation, but a grow places the extra GPUs
  wherever they are free; a job grows only if the grown allocation is faster
  (``view.rate_with``) than the one it holds. (In the paper's fluid, homogeneous pool more GPUs
  never slow a job; here a slower GPU type or a slow link in the gang can.)
- The offline SPEA2 configuration search is not part of the scheduler: pass the thresholds,
  ``weight_decay``, ``zeta_min`` and ``delta`` (defaults: the artifact's PCS-pred configuration
  for Philly VC 0e4a51, thresholds 5,758 s and 4.6 M s, W = 3, zeta_min 0.32, delta 0.17).
- The forward simulation and the classes both use the experiment's predictor (the clone's work is
  the predicted duration). With the oracle predictor (the paper's "known sizes") this is the
  paper's setting; with a noisy one the predictions carry its error.

Cost of predictions: one clone per decision point with arrivals (all jobs arriving at that
instant share it). A clone copies the engine's per-job state, O(N) for N jobs in the workload,
and simulates only the J jobs in the system (no future arrivals): at most 2J decision points,
each O(J log J) for this policy, so O(N + J^2 log J) per arrival instant. ``predict=False``
switches predictions off.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence

import numpy as np

from dlsched_gym.baselines.registry import register
from dlsched_gym.engine import FINISHED
from dlsched_gym.errors import ConfigError
from dlsched_gym.scheduler import Preempt, Resize, Start

#: Rounds of the inter-class water-filling (as in the paper's pseudocode).
WATER_FILL_ROUNDS = 100
_EPS = 1e-9


def forward_predict(view, policy, jobs: Iterable[int]) -> dict[int, float]:
    """Predicted JCTs of ``jobs`` by forward simulation without future arrivals.

    Clones the engine behind ``view`` (``view.what_if()``: no future arrivals, work from the
    experiment's predictor) and drives the clone
    with ``policy``, an independent copy of the calling scheduler taken *before* it processed the
    current decision point: the copy sees the same ``new_jobs`` and ``finished`` and decides the
    current instant on the clone first, so with no later arrival the clone's future is the real
    one. Returns ``{job: end in the clone - submit time}`` for the jobs that finish there.
    """
    clone = view.what_if()
    cview = clone.view
    cview.new_jobs = list(view.new_jobs)
    cview.finished = list(view.finished)
    ops = policy.schedule(cview)
    if ops:
        clone.apply(ops)
    clone.continue_run(policy, result=False)
    submit = view.jobs.submit_time
    return {j: clone.end_time[j] - float(submit[j]) for j in jobs if clone.state[j] == FINISHED}


def size_thresholds(sizes: Sequence[float], cv2_threshold: float) -> tuple[float, ...]:
    """Class thresholds from historical job sizes (1-GPU seconds), PCS's queue construction.

    Sizes are scanned in increasing order while the squared coefficient of variation C^2 =
    variance / mean^2 of the current group is tracked; when adding a size would make C^2 exceed
    ``cv2_threshold``, the group is closed at the previous size (its threshold) and a new group
    starts. The last group is unbounded and gets no threshold. A larger ``cv2_threshold`` gives
    fewer classes.
    """
    t = float(cv2_threshold)
    if not (t > 0 and math.isfinite(t)):
        raise ConfigError("size_thresholds: cv2_threshold must be a finite number > 0, "
                          f"got {cv2_threshold!r}")
    ordered = np.sort(np.asarray(sizes, dtype=float))
    if not (len(ordered) and np.isfinite(ordered).all() and ordered[0] >= 0):
        raise ConfigError("size_thresholds: sizes must be a non-empty sequence of finite numbers >= 0")
    out: list[float] = []
    n = 0
    total = total_sq = 0.0
    prev = 0.0
    for s in ordered.tolist():
        n1, t1, q1 = n + 1, total + s, total_sq + s * s
        mean = t1 / n1
        cv2 = (q1 / n1 - mean * mean) / (mean * mean) if mean > 0 else 0.0
        if n and cv2 > t and s > prev:
            out.append(prev)
            n1, t1, q1 = 1, s, s * s
        n, total, total_sq, prev = n1, t1, q1, s
    return tuple(out)


def water_fill(demand: Sequence[float], weights: Sequence[float], capacity: float) -> list[float]:
    """Weighted max-min split of ``capacity`` over classes with ``demand`` (PCS's inter-class step).

    Each round gives every unsatisfied class its weight's share of the capacity left, capped by
    its remaining demand; classes whose demand is met drop out. At most
    :data:`WATER_FILL_ROUNDS` rounds.
    """
    alloc = [0.0] * len(demand)
    active = [i for i, d in enumerate(demand) if d > _EPS]
    left = float(capacity)
    for _ in range(WATER_FILL_ROUNDS):
        if not active or left <= _EPS:
            break
        wsum = sum(weights[i] for i in active)
        for i in active:
            alloc[i] += min(left * weights[i] / wsum, demand[i] - alloc[i])
        left = capacity - sum(alloc)
        active = [i for i in active if alloc[i] < demand[i] - _EPS]
    return alloc


@register("pcs")
class Pcs:
    """PCS: WFQ over size classes with per-class GPU caps, and JCT predictions at submission.

    Args:
        thresholds: increasing class bounds in 1-GPU seconds (a job of size ``s`` goes to the
            first class with ``s <= bound``; one more, unbounded class follows). ``()`` is one
            class: FIFO, the leftover GPUs backfilled in submission order.
        weight_decay: W; class ``i`` weighs ``exp(-i * W)`` (normalized). Negative W favours the
            large-job classes.
        zeta_min: minimum efficiency ``speedup(n) / n`` an elastic job's allocation keeps, in
            [0, 1] (0: no cap).
        delta: step by which ``zeta_min`` is relaxed while a class's share is not used, in (0, 1].
        predict: annotate each job's ``predicted_jct`` at submission by forward simulation.
    """

    name = "pcs"
    round_seconds = None

    def __init__(self, thresholds: Sequence[float] = (5758.0, 4.6e6), weight_decay: float = 3.0,
                 zeta_min: float = 0.32, delta: float = 0.17, predict: bool = True) -> None:
        try:
            bounds = tuple(float(t) for t in thresholds)
        except (TypeError, ValueError):
            raise ConfigError(f"scheduler 'pcs': thresholds must be a sequence of numbers, "
                              f"got {thresholds!r}") from None
        if not all(b > 0 and math.isfinite(b) for b in bounds) or \
                any(a >= b for a, b in zip(bounds, bounds[1:])):
            raise ConfigError(f"scheduler 'pcs': thresholds must be finite, > 0 and strictly "
                              f"increasing, got {thresholds!r}")
        w = _number("weight_decay", weight_decay)
        zmin = _number("zeta_min", zeta_min)
        if not 0.0 <= zmin <= 1.0:
            raise ConfigError(f"scheduler 'pcs': zeta_min must lie in [0, 1], got {zeta_min!r}")
        d = _number("delta", delta)
        if not 0.0 < d <= 1.0:
            raise ConfigError(f"scheduler 'pcs': delta must lie in (0, 1], got {delta!r}")
        if not isinstance(predict, (bool, np.bool_)):
            raise ConfigError(f"scheduler 'pcs': predict must be True or False, got {predict!r}")
        self.thresholds = bounds
        if abs(w) * len(bounds) > 700:  # exp() would overflow or underflow to 0
            raise ConfigError(f"scheduler 'pcs': weight_decay {weight_decay!r} is too large in "
                              f"magnitude for {len(bounds) + 1} classes (|W| x classes <= 700)")
        raw = [math.exp(-i * w) for i in range(len(bounds) + 1)]
        self.weights = [x / sum(raw) for x in raw]
        self.zeta_min = zmin
        self.delta = d
        self.predict = bool(predict)

    # ------------------------------------------------------------------ state
    def reset(self, spec, jobs, rng) -> None:
        """Start a simulation with empty classes."""
        self._num_gpus = jobs.num_gpus.tolist()
        self._min = jobs.min_gpus.tolist()
        self._max = jobs.max_gpus.tolist()
        self._total_gpus = spec.num_gpus
        #: per class: jobs in the system in submission order (dicts keep insertion order)
        self._classes: list[dict[int, None]] = [{} for _ in self.weights]
        #: per class: the sum of its jobs' maximum GPUs
        self._demand = [0] * len(self.weights)
        #: job -> class, for the jobs in the system in submission order
        self._class_of: dict[int, int] = {}
        #: job -> GPUs wanted at efficiency zeta_min (its request if rigid)
        self._want: dict[int, int] = {}
        #: elastic job -> minus the prefix minimum of its efficiency speedup(n)/n, n = 1..max
        #: (non-decreasing, for bisection)
        self._eff: dict[int, list[float]] = {}

    def _fork(self) -> Pcs:
        """An independent copy of the current state that makes no predictions.

        The per-job caches ``_want`` and ``_eff`` are shared: they are filled once per job, with
        the same values in every copy, and never changed."""
        new = object.__new__(Pcs)
        new.__dict__.update(self.__dict__)
        new.predict = False
        new._classes = [dict(c) for c in self._classes]
        new._demand = list(self._demand)
        new._class_of = dict(self._class_of)
        return new

    def size_class(self, view, job: int) -> int:
        """The job's class: first with (predicted duration x requested GPUs) <= its bound."""
        size = view.predict_duration(job) * self._num_gpus[job]
        return bisect_left(self.thresholds, size)

    def _admit(self, view, job: int) -> None:
        c = self.size_class(view, job)
        self._class_of[job] = c
        self._classes[c][job] = None
        self._demand[c] += self._max[job]
        if self._min[job] < self._max[job] and job not in self._eff:
            top = min(self._max[job], self._total_gpus)
            one = view.rate_with(job, np.arange(1))
            eff, low = [], math.inf
            for n in range(1, top + 1):
                low = min(low, view.rate_with(job, np.arange(n)) / (n * one) if one > 0 else 0.0)
                eff.append(-low)
            self._eff[job] = eff
        self._want[job] = self._cap(job, self.zeta_min)

    def _cap(self, job: int, zeta: float) -> int:
        """GPUs for ``job`` at efficiency level ``zeta`` (its request for rigid jobs)."""
        lo, hi = self._min[job], self._max[job]
        if lo == hi or zeta <= 0:
            return hi
        # the n whose efficiency prefix minimum is >= zeta
        return max(lo, bisect_right(self._eff[job], -zeta))

    # ------------------------------------------------------------------ decisions
    def schedule(self, view):
        """Re-split the GPUs over classes and jobs; preempt, resize and start to match."""
        if view.new_jobs and self.predict:  # the copy must see this decision point unprocessed
            for j, jct in forward_predict(view, self._fork(), view.new_jobs).items():
                view.annotate(j, "predicted_jct", jct)
        for j in view.finished:
            c = self._class_of.pop(j)
            del self._classes[c][j]
            self._demand[c] -= self._max[j]
        for j in view.new_jobs:
            self._admit(view, j)
        if not self._class_of:
            return ()
        target = self._targets(view.online_gpus)
        return self._ops(view, target)

    def _targets(self, capacity: int) -> dict[int, int]:
        """GPUs per selected job, in selection order (class, then submission)."""
        shares = water_fill(self._demand, self.weights, capacity)
        target: dict[int, int] = {}
        for cls, share in zip(self._classes, shares):
            budget = math.floor(share + _EPS)
            taken: list[int] = []
            for j in cls:
                want = self._want[j]
                if want > budget:
                    if self._min[j] < self._max[j] and self._min[j] <= budget:
                        want = budget
                    else:
                        break
                target[j] = want
                taken.append(j)
                budget -= want
            zeta = self.zeta_min
            while budget > 0 and zeta > 0:
                zeta -= self.delta
                for j in taken:
                    more = min(self._cap(j, zeta) - target[j], budget)
                    if more > 0:
                        target[j] += more
                        budget -= more
        left = capacity - sum(target.values())
        if left > 0:
            for j in self._class_of:  # jobs arrive in job-index (submission) order
                if j in target:
                    continue
                want = self._want[j]
                if want > left and self._min[j] < self._max[j] and self._min[j] <= left:
                    want = left
                if want <= left:
                    target[j] = want
                    left -= want
                    if left == 0:
                        break
            for j in sorted(target):
                if left == 0:
                    break
                more = min(self._max[j] - target[j], left)
                if more > 0:
                    target[j] += more
                    left -= more
        return target

    def _ops(self, view, target: dict[int, int]) -> list:
        """Preempts, shrinking resizes, then starts and growing resizes that realize ``target``."""
        plan = view.plan()
        order = list(view.running)
        running = set(order)
        allocation = view.allocation
        victims, shrinks, grows = [], [], set()
        for r in order:
            held = allocation(r)
            want = target.get(r)
            if want is None:
                victims.append(r)
                plan.release(held)
            elif want < len(held):
                shrinks.append(Resize(r, held[:want]))
                plan.release(held[want:])
            elif want > len(held):
                grows.add(r)
        later: list = []
        unplaced = False
        for j, want in target.items():
            if j in grows:
                held = allocation(j)
                extra = plan.place(j, want - len(held))
                if extra is not None:
                    grown = np.concatenate([held, extra])
                    if view.rate_with(j, grown) > view.rate_with(j, held) * (1 + _EPS):
                        later.append(Resize(j, grown))
                    else:  # slower (a slower GPU type or link joins the gang): keep the job as is
                        plan.release(extra)
                        unplaced = True
                else:
                    unplaced = True
            elif j not in running:
                gpus = plan.place(j, want)
                n = want
                # An elastic job takes the largest count >= its minimum that can be placed, so
                # that fragmentation does not let the jobs behind it take its GPUs.
                while gpus is None and n > self._min[j]:
                    n = min(n - 1, plan.free_gpus)
                    if n < self._min[j]:
                        break
                    gpus = plan.place(j, n)
                if gpus is None or n < want:
                    unplaced = True
                if gpus is not None:
                    later.append(Start(j, gpus))
        preempts = []
        for v in victims:
            held = allocation(v)
            if (plan.gpu_load[held] == 0).all():  # nobody took its GPUs: keep it running
                plan.reserve(held)
            else:
                preempts.append(Preempt(v))
        if unplaced:  # GPUs a selected job could not use go to the others, in submission order
            for j in self._class_of:
                free = plan.free_gpus
                if free == 0:
                    break
                if j in target or j in running:
                    continue
                n = self._want[j]
                if n > free and self._min[j] < self._max[j]:
                    n = free
                if self._min[j] <= n <= free:
                    gpus = plan.place(j, n)
                    if gpus is not None:
                        later.append(Start(j, gpus))
        return preempts + shrinks + later


def _number(param: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v):
        raise ConfigError(f"scheduler 'pcs': {param} must be a finite number, got {value!r}")
    return v
