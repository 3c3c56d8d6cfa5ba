"""Starburst: cost-aware scheduling for a private GPU cluster that can burst to the cloud.

Luo, Zhuang, Vengadesan, Bhardwaj, Chang, Friedman, Shenker and Stoica, "Starburst: A
Cost-aware Scheduler for Hybrid Cloud", USENIX ATC 2024. The authors' simulator
(``michaelzhiluo/starburst``: ``skyburst/simulator.py``, ``waiting_policy.py``, ``cluster.py``,
``filter_config.py``) was read to settle details; no code is taken from it.

The cluster needs a cloud pool (``ClusterSpec(cloud=CloudPool(...))``): a job sent there with
``Offload`` runs at trace speed and costs ``price x GPUs x hours`` (``metrics.summarize`` reports
``cloud_cost`` next to the JCT metrics). Each job sent to the cloud gets the annotation
``cloud_start`` (the time of its last burst) in the result's jobs table.

Follows the paper's simulator:

- Every job gets a maximum waiting time ``w(j)`` when it enters the on-prem queue; a job still
  queued ``w(j)`` seconds later is offloaded to the cloud (a per-job timer: a ``Wake`` op at its
  deadline). Waiting policies (``waiting``), with g = GPUs and r = predicted run time:

  ============  ===========================  =================================================
  ``compute``   w = k x g x r                Starburst ("Compute-Wait"): k x the job's GPU-hours
  ``resource``  w = k x g hours              "Resource-Wait"; the no-estimate variant's base
  ``constant``  w = k hours                  "Constant-Wait" (prior cloud-bursting managers)
  ``zero``      w = 0                        "No-Wait" (cluster autoscaling)
  ============  ===========================  =================================================

  r comes from ``view.predict_duration`` (the experiment chooses the predictor: oracle as in the
  paper's main runs, ``noisy`` for its estimator-error ablation).
- The queue is FIFO by (original) submission. Out of order (``out_of_order=True``, Starburst):
  every queued job that fits starts, later jobs may overtake a blocked one; in order: the scan
  stops at the first job that does not fit (the baselines).
- On-prem placement is first-fit with node chunking: a job of more GPUs than a node holds is split
  into full-node chunks plus a remainder, each chunk on a different node; every chunk takes the
  first node in index order with enough free GPUs (so a job that fits in one node uses one node).
- Queue cap (``max_queue_length``): after the placement pass, while more jobs are queued than the
  cap, the last job in queue order (the newest) is offloaded at once. The paper uses 30 for Philly
  and 10 for Helios; ``None`` (unbounded) for the baselines.
- Order at one decision point, as in the simulator's loop: queued jobs whose timer is due (set at
  an earlier decision point) are offloaded first, even if a completion at this instant would let
  them fit; then pulled-back jobs and new arrivals join the queue; then the placement pass; then
  the queue cap; last, the jobs that joined now with a zero wait and did not fit are offloaded (a
  job with w = 0 gets one chance on-prem first).
- No-estimate variant (registered as ``starburst-no-te``; "Star-Wait"): needs no run time. A job
  bursts as soon as it does not fit (w = 0); a job still running in the cloud ``pull_back_after``
  seconds later (0.25 h in the paper's simulator) is preempted there and rejoins the on-prem
  queue with a waiting time of ``pull_back_ratio`` (3) x w(j) of the base policy
  (Resource-Wait, k = 0.77 for Philly). If it times out again it goes back to the cloud for good.
  Only jobs offloaded by their timer are pulled back (those the queue cap sends are not), as in
  the simulator.

Defaults are the paper's Philly settings (``simulator_scripts/fig7.sh``, ``filter_config.py``):
Compute-Wait k = 0.076, out of order, queue cap 30; no-estimate: Resource-Wait k = 0.77,
pull back after 900 s, ratio 3. ``k=None`` takes the Philly value of the chosen policy (compute
0.076, resource 0.77, constant 1 h). Baselines of the paper: No-Wait is
``make("starburst", waiting="zero", out_of_order=False, max_queue_length=None)``, Constant-Wait
``make("starburst", waiting="constant", out_of_order=False, max_queue_length=None)``.

Starburst-inspired (reconstructions and differences from the paper's simulator):

- A pulled-back job keeps the progress it made in the cloud (the engine's preemption keeps
  progress, and its ``restart_overhead`` applies when it restarts); the simulator restarts it from
  scratch on-prem. In both, the cloud bills the time it ran there.
- The simulator treats Philly jobs' cost as GPU-hours and Helios' as (GPUs + CPUs/53) x hours;
  the engine has no CPUs, so cost is always GPU-hours, and CPU capacity is not checked on-prem.
- Chunk size is the largest node's GPU count (the simulator assumes identical nodes).
- The waiting-budget calibration of k (a target average wait as a fraction of the average run
  time) is not automated: k is a parameter ([I] in the spec).
- The simulator's optional extras (EASY backfill, ``predict_wait`` oracle start times, the
  Constant-Wait + No-SJ short-job filter, data-gravity delay, ``clip_time``) are not modelled.
"""

from __future__ import annotations

import heapq

import numpy as np

from dlsched_gym.baselines._common import SortedJobs, check_bool, check_choice, check_positive
from dlsched_gym.baselines.registry import register
from dlsched_gym.errors import ConfigError
from dlsched_gym.placement import free_gpus_on
from dlsched_gym.scheduler import Offload, Preempt, Start, Wake

#: Waiting policies and the paper's k for Philly (unit: see the module docstring).
PHILLY_K = {"compute": 0.076, "resource": 0.77, "constant": 1.0}
WAITING = (*PHILLY_K, "zero")


class ChunkedFirstFit:
    """Starburst's on-prem placement: full-node chunks plus a remainder, each chunk on its own
    node, every chunk on the first node (in index order) with room for it."""

    name = "starburst-first-fit"

    def place(self, n, node_free, gpu_load, spec, job, allowed=None):
        chunk = spec.max_node_gpus
        full, rest = divmod(n, chunk)
        demands = [chunk] * full + ([rest] if rest else [])
        free = np.asarray(node_free)
        taken = np.zeros(len(free), dtype=bool)
        parts = []
        for d in demands:
            ok = (free >= d) & ~taken
            node = int(ok.argmax())
            if not ok[node]:
                return None
            taken[node] = True
            parts.append(free_gpus_on(node, d, gpu_load, spec))
        return np.concatenate(parts)


@register("starburst")
class Starburst:
    """Starburst (Compute-Wait, out of order, queue cap); see the module docstring.

    Args:
        waiting: ``"compute"`` (k x GPUs x run time), ``"resource"`` (k x GPUs hours),
            ``"constant"`` (k hours) or ``"zero"``.
        k: the waiting coefficient; None takes the paper's Philly value for ``waiting``
            (0.076, 0.77, 1.0); must be None for ``"zero"``.
        max_queue_length: queue cap (an integer >= 0), None for unbounded. Default 30 (Philly).
        out_of_order: start any queued job that fits (True) or stop at the first that does not.
        pull_back_after: seconds after which a job still running in the cloud is pulled back to
            the on-prem queue (the no-estimate variant; new jobs then wait 0), None to disable.
        pull_back_ratio: a pulled-back job waits ``pull_back_ratio x w(j)``. Default 3.
    """

    name = "starburst"
    round_seconds = None

    def __init__(self, waiting: str = "compute", k: float | None = None,
                 max_queue_length: int | None = 30, out_of_order: bool = True,
                 pull_back_after: float | None = None, pull_back_ratio: float = 3.0) -> None:
        check_choice(self.name, "waiting", waiting, WAITING)
        self.waiting = waiting
        if waiting == "zero":
            if k is not None:
                raise ConfigError(f"scheduler {self.name!r}: parameter 'k' must be None for "
                                  f"waiting='zero' (no waiting coefficient), got {k!r}")
            self.k = 0.0
        else:
            self.k = PHILLY_K[waiting] if k is None else check_positive(self.name, "k", k, allow_zero=True)
        if max_queue_length is not None and not (
                isinstance(max_queue_length, (int, np.integer)) and not isinstance(max_queue_length, bool)
                and max_queue_length >= 0):
            raise ConfigError(f"scheduler {self.name!r}: parameter 'max_queue_length' must be an "
                              f"integer >= 0 or None (unbounded), got {max_queue_length!r}")
        self.max_queue_length = None if max_queue_length is None else int(max_queue_length)
        self.out_of_order = check_bool(self.name, "out_of_order", out_of_order)
        self.pull_back_after = (None if pull_back_after is None
                                else check_positive(self.name, "pull_back_after", pull_back_after))
        self.pull_back_ratio = check_positive(self.name, "pull_back_ratio", pull_back_ratio)
        self.placement = ChunkedFirstFit()

    def reset(self, spec, jobs, rng) -> None:
        """Start a simulation: empty queue and timers. The cluster must have a cloud pool."""
        if spec.cloud is None:
            raise ConfigError(f"scheduler {self.name!r} needs a cluster with a cloud pool "
                              f"(ClusterSpec(cloud=CloudPool(...))); cluster {spec.name!r} has none")
        self._gpus = jobs.num_gpus.tolist()
        self._submit = jobs.submit_time.tolist()
        self._kinds = len(jobs.names["gpu_type"])
        self._queue = SortedJobs()
        self._deadline: dict[int, float] = {}
        self._timers: list[tuple[float, int]] = []
        self._pulls: list[tuple[float, int]] = []
        self._pulled: set[int] = set()

    def max_wait(self, view, job: int) -> float:
        """w(j) in seconds under the waiting policy (before any pull-back ratio)."""
        g = self._gpus[job]
        if self.waiting == "compute":
            return self.k * g * max(view.predict_duration(job), 0.0)
        if self.waiting == "resource":
            return self.k * g * 3600.0
        if self.waiting == "constant":
            return self.k * 3600.0
        return 0.0

    def _enqueue(self, view, job: int, wait: float, ops: list) -> None:
        self._queue.add((self._submit[job], job), self._gpus[job])
        deadline = view.now + wait
        self._deadline[job] = deadline
        heapq.heappush(self._timers, (deadline, job))
        if deadline > view.now:
            ops.append(Wake(deadline))

    def _offload(self, view, job: int, timed_out: bool, ops: list) -> None:
        self._queue.remove(job)
        del self._deadline[job]
        ops.append(Offload(job))
        view.annotate(job, "cloud_start", view.now)
        if timed_out and self.pull_back_after is not None and job not in self._pulled:
            t = view.now + self.pull_back_after
            heapq.heappush(self._pulls, (t, job))
            ops.append(Wake(t))

    def _expire(self, view, ops: list) -> bool:
        """Offload the queued jobs whose timer is due; True if any was."""
        now = view.now
        timers = self._timers
        any_out = False
        while timers and timers[0][0] <= now:
            deadline, j = heapq.heappop(timers)
            if self._deadline.get(j) == deadline:
                self._offload(view, j, True, ops)
                any_out = True
        return any_out

    def schedule(self, view):
        """Timeouts, pull-backs and arrivals, then the placement pass and the queue cap."""
        ops: list = []
        queue = self._queue
        changed = self._expire(view, ops) or bool(view.finished)
        pulls = self._pulls
        while pulls and pulls[0][0] <= view.now:
            _, j = heapq.heappop(pulls)
            if j in view.in_cloud:
                ops.append(Preempt(j))
                self._pulled.add(j)
                self._enqueue(view, j, self.pull_back_ratio * self.max_wait(view, j), ops)
                changed = True
        for j in view.new_jobs:
            wait = 0.0 if self.pull_back_after is not None else self.max_wait(view, j)
            self._enqueue(view, j, wait, ops)
            changed = True
        if not changed or not queue.items:
            return ops
        plan = view.plan()
        started = []
        smallest = queue.smallest_request()
        # The plan only loses GPUs during the pass, and first-fit of chunks sorted largest first
        # fits a job whenever it fits a larger one on the same nodes: once g GPUs of one GPU type
        # failed, no job of that type asking for g or more can fit in this pass.
        failed: dict[int, int] = {}
        gpu_type = view.jobs.gpu_type
        for _, j in queue.items:
            if plan.free_gpus < smallest:
                break
            g = self._gpus[j]
            kind = int(gpu_type[j])
            gpus = (plan.place(j, placement=self.placement)
                    if g <= plan.free_gpus and g < failed.get(kind, g + 1) else None)
            if gpus is not None:
                started.append(j)
                ops.append(Start(j, gpus))
            elif not self.out_of_order:
                break
            else:
                failed[kind] = min(g, failed.get(kind, g))
                if len(failed) == self._kinds and max(failed.values()) <= smallest:
                    break
        for j in started:
            queue.remove(j)
            del self._deadline[j]
        cap = self.max_queue_length
        if cap is not None:
            while len(queue.items) > cap:
                self._offload(view, queue.items[-1][-1], False, ops)
        self._expire(view, ops)
        return ops


@register("starburst-no-te")
class StarburstNoTE(Starburst):
    """Starburst without a time estimator ("Star-Wait"): burst at once, pull long cloud jobs back.

    Defaults (Philly): Resource-Wait k = 0.77 as the base policy, pull back after 900 s (0.25 h),
    a pulled-back job waits 3 x 0.77 x GPUs hours, out of order, queue cap 30.
    """

    name = "starburst-no-te"

    def __init__(self, waiting: str = "resource", k: float | None = None,
                 max_queue_length: int | None = 30, out_of_order: bool = True,
                 pull_back_after: float | None = 900.0, pull_back_ratio: float = 3.0) -> None:
        super().__init__(waiting=waiting, k=k, max_queue_length=max_queue_length,
                         out_of_order=out_of_order, pull_back_after=pull_back_after,
                         pull_back_ratio=pull_back_ratio)
