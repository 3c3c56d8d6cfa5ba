"""Themis-inspired finish-time-fair scheduling: leases and a partial-allocation auction.

Mahajan, Balasubramanian, Singhvi, Venkataraman, Akella, Phanishayee and Chawla, "Themis: Fair
and Efficient GPU Cluster Scheduling", NSDI'20. No code of the authors' system
was used; the procedure below follows the project specification (``published-schedulers-b.md``,
section 6, "Themis") and fills its gaps with reconstructions, so the agent is
*Themis-inspired*.

What follows the paper (as the specification states it):

- Finish-time fairness of a job ``rho = T_shared / T_independent``, where ``T_independent`` is
  the job's run time on a 1/N share of the cluster (N = jobs in the system now) and
  ``T_shared`` its expected completion time in the shared cluster: time since submission plus
  predicted remaining work at its rate.
- GPUs are granted as leases. When a lease expires, or GPUs are freed, the freed GPUs are
  offered in an auction to the fraction ``1 - f`` (``fairness_knob`` = f) of the jobs with the
  worst rho; ``f = 0`` lets every job bid (efficiency), f close to 1 only the worst (fairness).
- Partial allocation: the auction picks the allocation that maximizes the product of the
  bidders' valuations (proportional fairness; equivalently the product of ``1 / rho``), and
  each winner ``i`` keeps only the fraction ``c_i = prod_{j != i} v_j(a*) / prod_{j != i}
  v_j(a*_{-i})`` of it (``a*_{-i}`` is the best allocation without ``i``: the "hidden payment"
  that makes bidding truthfully a dominant strategy; Cole, Gkatzelis and Goel's partial
  allocation mechanism, EC'13, as the paper uses it [M]). GPUs nobody won go to the other jobs
  work-conservingly.
- Bids are placement-aware: a job values an allocation by the rate the perf model gives it on
  the GPUs it would get (``view.rate_with``), so a gang split across nodes bids less.
- Defaults: ``fairness_knob=0.8`` and ``lease_seconds=600`` (spec: f about 0.8, leases of
  10-20 min, both [M]; the AFS artifact runs Themis with a 600 s quantum).

Reconstructions ([I] in the specification's terms):

- One job is one app (the paper's apps are groups of hyper-parameter-tuning jobs).
- The ``1 - f`` fraction is taken over all jobs in the system (at least one job); those of them
  that hold an unexpired lease do not bid. A lease that expires while no waiting job fits the
  GPUs on offer is renewed to the next boundary.
- Valuation of ``a`` GPUs: ``v(a) = rho(0) / rho(a)``, the factor by which the allocation
  improves the job's finish-time fairness over getting nothing for one more lease:
  ``rho(a) = (elapsed + remaining / rate(a)) / T_id`` and
  ``rho(0) = (elapsed + lease + remaining / rate_ref) / T_id``, with ``rate_ref`` the job's
  current rate if it runs, else its rate on a consolidated allocation of its request. An
  allocation worth less than waiting (``v < 1``, e.g. a badly spread gang) is never bid.
  Rigid jobs bid for their GPU count; elastic jobs for ``min_gpus``, ``num_gpus``,
  ``max_gpus`` and the powers of two between; a running job whose lease expired bids to keep
  its GPUs (it is never resized).
- ``T_independent`` on the 1/N share ``s = online GPUs / N``: a rigid job of ``g`` GPUs runs
  at its rate when ``g <= s`` and a fraction ``s / g`` of the time otherwise; an elastic job
  runs on ``min(max_gpus, floor(s))`` GPUs, or time-shares ``min_gpus`` when ``s`` is smaller.
  Rates come from ``view.rate_with`` on a consolidated probe allocation; N is the current
  contention, not its average over the job's life.
- Remaining work and total work come from the engine's predictor (``view.predict_remaining``,
  ``view.predict_duration``): exact with the ``oracle`` predictor, estimates with ``noisy`` or
  ``history``. True durations are never read.
- Leases end on a common grid of ``lease_seconds`` (the engine's rounds), so that a large gang
  can collect GPUs released together; a job that wins between boundaries holds its lease until
  the next boundary. The hidden payment shortens the lease instead of taking GPUs away (a gang
  cannot run on a fraction of its GPUs): winner ``i`` holds its GPUs for ``c_i`` of the time to
  the next boundary, then they are auctioned again.
- Solver: exhaustive search over the bidders' options when the number of combinations is at
  most ``exhaustive_limit`` (default 256), else a greedy that repeatedly takes the option
  upgrade with the largest log-valuation gain per GPU. Winners are then placed largest first;
  a winner that cannot be placed (fragmentation) falls back to the leftover pass.
- Offers: a bidder is offered the GPUs the engine's placement strategy picks; when the strategy
  will not place the gang (e.g. ``consolidated`` never splits a gang that fits in one node), the
  gang is offered the free GPUs of the nodes with the most free GPUs, and its lower rate there
  lowers its bid.
- Leftover pass: the remaining jobs in decreasing rho order; a running job whose lease expired
  keeps its GPUs if nobody took them, else it is preempted; a waiting job takes the GPUs the
  placement strategy gives it unless it values them below waiting (``v < 1``), as in its bids.
  Ties in rho go to the earlier submission, then the lower job index.
- No restart cost enters the valuations (the engine's ``restart_overhead`` is not visible to
  schedulers).
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from dlsched_gym.baselines._common import check_bool, check_positive
from dlsched_gym.baselines.registry import register
from dlsched_gym.errors import ConfigError
from dlsched_gym.placement import take_from_nodes
from dlsched_gym.scheduler import Preempt, Start, Wake

_DUE = 1e-6  # s: a lease that ends this close to now has ended
_TINY = 1e-12  # floor for rates and times, so that a zero rate gives a huge rho, not a crash


def solve_auction(options: list[list[tuple[int, float]]], capacity: int,
                  exhaustive_limit: int = 256) -> tuple[list[int], float]:
    """The allocation maximizing the sum of log-valuations within ``capacity`` GPUs.

    ``options[i]`` lists bidder ``i``'s choices as ``(gpus, log valuation)``; a bidder may also
    get nothing (log valuation 0). Returns ``(choice, total)``: ``choice[i]`` is the index of the
    option bidder ``i`` gets, or -1. Exhaustive when the number of combinations
    (``prod(len(options[i]) + 1)``) is at most ``exhaustive_limit``; ties go to the allocation
    found first, which favours the earlier bidders. Otherwise greedy: start from nothing and
    repeatedly apply the option upgrade with the largest log-valuation gain per added GPU.
    """
    combos = 1
    for o in options:
        combos *= len(o) + 1
        if combos > exhaustive_limit:
            return _greedy(options, capacity)
    best: list = [0.0, [-1] * len(options)]
    choice = [-1] * len(options)

    def dfs(i: int, left: int, total: float) -> None:
        if i == len(options):
            if total > best[0] + 1e-12:
                best[0] = total
                best[1] = choice.copy()
            return
        for k, (n, v) in enumerate(options[i]):
            if n <= left and v > 0:
                choice[i] = k
                dfs(i + 1, left - n, total + v)
        choice[i] = -1
        dfs(i + 1, left, total)

    dfs(0, capacity, 0.0)
    return best[1], best[0]


def _greedy(options: list[list[tuple[int, float]]], capacity: int) -> tuple[list[int], float]:
    """Greedy upgrades by log-valuation gain per GPU (see :func:`solve_auction`); a heap holds
    each bidder's best upgrade (ties: the earlier bidder, then the smaller option)."""
    choice = [-1] * len(options)
    used = 0
    total = 0.0
    if all(len(o) <= 1 for o in options):  # rigid bidders: one pass in order of gain per GPU
        bids = [i for i, o in enumerate(options) if o]
        for i in sorted(bids, key=lambda i: (-options[i][0][1] / options[i][0][0], i)):
            n, v = options[i][0]
            if used + n <= capacity and v > 0:
                used += n
                total += v
                choice[i] = 0
        return choice, total

    def push(i: int) -> None:
        cur_n, cur_v = options[i][choice[i]] if choice[i] >= 0 else (0, 0.0)
        best = None
        for k, (n, v) in enumerate(options[i]):
            if n > cur_n and v > cur_v and used - cur_n + n <= capacity:
                gain = (v - cur_v) / (n - cur_n)
                if best is None or gain > best[0] + 1e-15:
                    best = (gain, k)
        if best is not None:
            heapq.heappush(heap, (-best[0], i, best[1]))

    heap: list[tuple[float, int, int]] = []
    for i in range(len(options)):
        push(i)
    while heap:
        _, i, k = heapq.heappop(heap)
        cur_n, cur_v = options[i][choice[i]] if choice[i] >= 0 else (0, 0.0)
        n, v = options[i][k]
        if used - cur_n + n <= capacity:  # else GPUs ran out since it was pushed
            used += n - cur_n
            total += v - cur_v
            choice[i] = k
        push(i)
    return choice, total


class _Spanning:
    """Placement across nodes, those with the most free GPUs first (the fallback offer when the
    engine's strategy will not split a gang)."""

    name = "spanning"

    def place(self, n, node_free, gpu_load, spec, job, allowed=None):
        """GPU ids for a gang of ``n`` (None if too few are free)."""
        return take_from_nodes(np.argsort(-node_free, kind="stable"), n, node_free, gpu_load, spec)


_SPANNING = _Spanning()


@register("themis")
class Themis:
    """Themis-inspired finish-time fairness with leases and a partial-allocation auction (see the
    module docstring).

    Args:
        lease_seconds: lease length (s); leases end on multiples of it.
        fairness_knob: the paper's f in [0, 1]: of the ``ceil((1 - f) N)`` jobs with the worst
            rho (at least one), those waiting or with an expired lease bid in the auction.
        partial_allocation: charge winners the hidden payment (a shortened lease).
        exhaustive_limit: largest number of option combinations solved exhaustively.

    After each auction, ``rho`` maps every job in the system to its estimated finish-time
    fairness, ``participants`` lists the bidders (worst rho first) and ``lease_end`` maps each
    running job to the end of its lease.
    """

    name = "themis"

    def __init__(self, lease_seconds: float = 600.0, fairness_knob: float = 0.8,
                 partial_allocation: bool = True, exhaustive_limit: int = 256) -> None:
        self.lease_seconds = check_positive(self.name, "lease_seconds", lease_seconds)
        self.round_seconds = self.lease_seconds
        try:
            f = float(fairness_knob)
        except (TypeError, ValueError):
            f = math.nan
        if not 0.0 <= f <= 1.0:
            raise ConfigError(f"scheduler 'themis': parameter 'fairness_knob' must be a number in "
                              f"[0, 1], got {fairness_knob!r}")
        self.fairness_knob = f
        self.partial_allocation = check_bool(self.name, "partial_allocation", partial_allocation)
        if isinstance(exhaustive_limit, bool) or not isinstance(exhaustive_limit, (int, np.integer)) \
                or exhaustive_limit < 1:
            raise ConfigError("scheduler 'themis': parameter 'exhaustive_limit' must be an integer "
                              f">= 1, got {exhaustive_limit!r}")
        self.exhaustive_limit = int(exhaustive_limit)

    def reset(self, spec, jobs, rng) -> None:
        """Start a simulation with no leases."""
        self._submit = jobs.submit_time.tolist()
        self._gpus = jobs.num_gpus.tolist()
        self._min = jobs.min_gpus.tolist()
        self._max = jobs.max_gpus.tolist()
        self._first = spec.node_first_gpu.tolist()
        # nodes for consolidated probe allocations: the largest first
        self._node_order = sorted(range(spec.num_nodes), key=lambda v: (-int(spec.node_gpus[v]), v))
        self._probe: dict[int, dict[int, float]] = {}
        self._wakes: set[float] = set()
        self.lease_end: dict[int, float] = {}
        self.rho: dict[int, float] = {}
        self.participants: list[int] = []

    # -- rates and finish-time fairness ----------------------------------------------------
    def _probe_rate(self, view, job: int, n: int) -> float:
        """The job's rate on ``n`` GPUs of a consolidated allocation on the nodes it may use
        (0 when they do not have ``n`` GPUs); cached per job."""
        cache = self._probe.setdefault(job, {})
        r = cache.get(n)
        if r is None:
            allowed = view.allowed_nodes(job)
            first = self._first
            gpus: list[int] = []
            for v in self._node_order:
                if allowed is None or allowed[v]:
                    gpus.extend(range(first[v], first[v + 1]))
                    if len(gpus) >= n:
                        break
            r = view.rate_with(job, np.array(gpus[:n], dtype=np.int64)) if len(gpus) >= n else 0.0
            cache[n] = r
        return r

    def _share_rate(self, view, job: int, share: float) -> float:
        """The job's average rate on a ``share``-GPU slice of the cluster (see the module
        docstring)."""
        lo, hi = self._min[job], self._max[job]
        if lo == hi:
            r = self._probe_rate(view, job, lo)
            return r if share >= lo else r * share / lo
        n = min(hi, int(share + 1e-9))
        if n >= lo:
            return self._probe_rate(view, job, n)
        return self._probe_rate(view, job, lo) * share / lo

    def _fairness(self, view, jobs: list[int], running: set[int]) -> tuple[dict, dict, dict]:
        """Per job: rho, the time since submission and the predicted remaining time at the
        reference rate (current rate if running, else on its consolidated request). Returns
        ``(rho, elapsed, ref_time)``."""
        now = view.now
        share = view.online_gpus / max(len(jobs), 1)
        rho, elapsed, ref_time = {}, {}, {}
        for j in jobs:
            e = now - self._submit[j]
            r = view.rate(j) if j in running else self._probe_rate(view, j, self._gpus[j])
            rest = view.predict_remaining(j) / max(r, _TINY)
            t_id = view.predict_duration(j) / max(self._share_rate(view, j, share), _TINY)
            elapsed[j] = e
            ref_time[j] = rest
            rho[j] = (e + rest) / max(t_id, _TINY)
        return rho, elapsed, ref_time

    # -- decisions -------------------------------------------------------------------------
    def schedule(self, view):
        """Renew or auction expired leases and freed GPUs (see the module docstring)."""
        now = view.now
        lease = self.lease_end
        for j in view.finished:
            lease.pop(j, None)
            self._probe.pop(j, None)
        if self._wakes:
            self._wakes = {t for t in self._wakes if t > now + _DUE}
        ls = self.lease_seconds
        boundary = (math.floor(now / ls + 1e-9) + 1) * ls
        expired = [j for j in view.running if lease.get(j, -math.inf) <= now + _DUE]
        queued = list(view.queue)
        ops: list = []
        leased: list[int] = []
        if queued:
            offer = view.free_gpus + sum(len(view.allocation(j)) for j in expired)
            if offer >= min(self._min[j] for j in queued):
                ops, leased = self._auction(view, queued, expired, boundary)
                expired = []
        for j in expired:  # nobody competes: the lease is renewed
            lease[j] = boundary
        for j in leased:  # a lease shortened by the hidden payment ends before the boundary
            t = lease[j]
            if t < boundary - _DUE and t not in self._wakes:
                self._wakes.add(t)
                ops.append(Wake(t))
        return ops

    def _auction(self, view, queued: list[int], expired: list[int],
                 boundary: float) -> tuple[list, list[int]]:
        """One auction of the free GPUs and those of ``expired`` leases; returns the ops and the
        jobs given a lease."""
        now = view.now
        running = set(view.running)
        jobs = queued + list(running)
        rho, elapsed, ref_time = self._fairness(view, jobs, running)
        self.rho = rho
        submit = self._submit
        order = sorted(jobs, key=lambda j: (-rho[j], submit[j], j))
        k = max(1, math.ceil((1.0 - self.fairness_knob) * len(jobs) - 1e-9))
        can_bid = set(queued) | set(expired)
        bidders = [j for j in order[:k] if j in can_bid]
        self.participants = bidders
        plan = view.plan()
        for j in expired:
            plan.release(view.allocation(j))
        capacity = plan.free_gpus
        options: list[list[tuple[int, float]]] = []
        for j in bidders:
            if j in running:
                gpus = view.allocation(j)
                cands = [(len(gpus), gpus)]
            else:
                cands = []
                for n in self._sizes(j):
                    gpus = self._place(plan, j, n)
                    if gpus is not None:
                        plan.release(gpus)
                        cands.append((n, gpus))
            opts = []
            for n, gpus in cands:
                v = self._log_value(view, j, gpus, elapsed[j], ref_time[j])
                if v > 0:
                    opts.append((n, v))
            options.append(opts)
        choice, total = solve_auction(options, capacity, self.exhaustive_limit)
        won = {bidders[i]: (options[i][c][0], options[i][c][1]) for i, c in enumerate(choice) if c >= 0}
        share = {}
        for i, j in enumerate(bidders):
            if j not in won:
                continue
            c = 1.0
            if self.partial_allocation:
                without = [o if b != i else [] for b, o in enumerate(options)]
                _, rest_total = solve_auction(without, capacity, self.exhaustive_limit)
                c = min(1.0, math.exp(total - won[j][1] - rest_total))
            share[j] = c
        # place: running winners keep their GPUs; the others largest first
        starts: dict[int, np.ndarray] = {}
        kept: set[int] = set()
        for j in bidders:
            if j in won and j in running:
                plan.reserve(view.allocation(j))
                kept.add(j)
        for j in sorted((j for j in won if j not in running), key=lambda j: (-won[j][0], -rho[j], j)):
            gpus = self._place(plan, j, won[j][0])
            if gpus is not None:
                starts[j] = gpus
        lease = self.lease_end
        for j in list(kept) + list(starts):
            c = share[j]
            lease[j] = boundary if c >= 1.0 else now + c * (boundary - now)
        # leftover: everyone else who can use GPUs, worst rho first
        for j in order:
            if j not in can_bid or j in kept or j in starts:
                continue
            if j in running:
                gpus = view.allocation(j)
                if not plan.gpu_load[gpus].any():
                    plan.reserve(gpus)
                    kept.add(j)
                    lease[j] = boundary
            elif plan.free_gpus >= self._min[j]:
                gpus = self._place(plan, j, self._gpus[j])
                if gpus is None and self._min[j] < self._gpus[j]:
                    gpus = self._place(plan, j, self._min[j])
                if gpus is None:
                    continue
                if self._log_value(view, j, gpus, elapsed[j], ref_time[j]) <= 0:
                    plan.release(gpus)  # worth less than waiting a lease (a spread gang)
                    continue
                starts[j] = gpus
                lease[j] = boundary
        ops: list = []
        for j in expired:
            if j not in kept:
                ops.append(Preempt(j))
                del lease[j]
        ops.extend(Start(j, gpus) for j, gpus in starts.items())
        return ops, list(kept) + list(starts)

    @staticmethod
    def _place(plan, job: int, n: int) -> np.ndarray | None:
        """Reserve ``n`` GPUs for ``job`` in ``plan``: the engine's placement strategy, else (a
        gang it will not split) across nodes, those with the most free GPUs first."""
        gpus = plan.place(job, n)
        if gpus is None and n <= plan.free_gpus:
            gpus = plan.place(job, n, placement=_SPANNING)
        return gpus

    def _log_value(self, view, job: int, gpus: np.ndarray, elapsed: float, ref_time: float) -> float:
        """log v: the job's valuation of running on ``gpus`` now (see the module docstring)."""
        waiting = elapsed + self.lease_seconds + ref_time
        t = elapsed + view.predict_remaining(job) / max(view.rate_with(job, gpus), _TINY)
        return math.log(waiting / max(t, _TINY))

    def _sizes(self, job: int) -> list[int]:
        """GPU counts a queued job bids for: its request if rigid; else ``min_gpus``,
        ``num_gpus``, ``max_gpus`` and the powers of two between, ascending."""
        lo, hi = self._min[job], self._max[job]
        if lo == hi:
            return [lo]
        sizes = {lo, hi, self._gpus[job]}
        p = 1
        while p < hi:
            if p > lo:
                sizes.add(p)
            p *= 2
        return sorted(sizes)
