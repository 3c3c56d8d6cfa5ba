"""PAL: variability- and locality-aware GPU placement, and the Packed-Sticky baseline it beats.

Jain, Tran, Chen, Sinclair and Venkataraman, "PAL: A Variability-Aware Policy for Scheduling ML
Workloads in GPU Clusters", SC'24 (arXiv 2408.11919). The artifact (``rutwik-n-jain/blox-pal``,
branch ``artifact``; ``placement/pal.py``, ``placement/packing_sticky.py``, ``simulator_sia.py``)
was read to settle details; no code is taken from it.

Both schedulers decide only at round boundaries (``round_seconds``, 360 s as the artifact's Sia
runs; a job arriving mid-round waits for the next round, and GPUs freed mid-round stay idle until
then, as in the artifact's round-based simulator). At a round, all queued and running jobs are
ordered by the queue ``policy``: ``fifo`` (submission order), ``las`` (least attained GPU-service
first) or ``srtf`` (shortest predicted remaining time first; ``view.predict_remaining``).

``pal`` follows the artifact:

- Offline, per application class k (A..D, from the model name as the perf model assigns it:
  :data:`dlsched_gym.perf.MODEL_INFO`): each GPU's slowdown PV_k(g) = its iteration time over the
  median GPU's. GPUs above mean + 3 sd are outliers; K1 = the K in 2..``max_base_tiers`` (10)
  with the best silhouette of a 1-D K-means of the other GPUs; a K-means with K1 + #outliers
  clusters on all GPUs gives each GPU the tier sf_k(g) = its centroid / the median centroid.
- L x V order of class k: for each tier value s, (s, within one node, cost s) and (s, across
  nodes, cost s x ``locality_penalty``), sorted by cost.
- Every round: release every running job; take the longest prefix of the policy order whose GPU
  demand fits the cluster, stable-sort it by class (A first), append the rest; place jobs in that
  order and stop at the first that does not fit (head-of-line blocking, no backfill). A job of
  1 < n <= GPUs-per-node GPUs walks the L x V order: "within" takes, among the nodes with n free
  GPUs of tier <= s, the node whose n best GPUs have the lowest worst tier (ties: the node with
  more such GPUs, as the artifact's count-sorted node list, then the lower node id) and its n
  best GPUs; "across" takes PM-First over the free GPUs of tier <= s when there are n. Other
  jobs take PM-First over all free GPUs. PM-First sorts GPUs by (tier, |free GPUs of that tier
  on the same node - n|) and takes the first n. A job whose new GPU set equals its old one keeps
  running; the others are preempted and restarted on their new GPUs (the engine's
  ``restart_overhead``).

``packed-sticky`` follows the artifact's Packed-Sticky: walk the policy order; running jobs keep
their GPUs; a queued job goes to the node with the fewest free GPUs that holds it, else (soft
consolidation) takes free GPUs from the nodes with the most free GPUs first; if it does not fit,
running jobs are preempted from the end of the order (lowest priority first, only those after
it) until it fits; if it still does not fit, the walk stops (those preemptions stand, as in the
artifact).

Reconstructions and deviations ([I]):

- [I] PAL profiles each GPU with a per-class benchmark. Here the slowdowns are read from the perf
  model through ``view.rate_with(job, [gpu])`` for one job of each class (PV_k(g) = the median
  GPU's rate over GPU g's rate), because the engine exposes no per-GPU class slowdown table; on a
  cluster with several GPU types the type ratio is folded into PV. With ``perf="duration"`` or
  variability off every GPU is one tier and PAL is PM-First/packed placement.
- [I] 1-D K-means: Lloyd iterations from equal-count initial segments (deterministic), instead
  of scikit-learn's k-means++ with ``random_state=1``. The artifact's silhouette loop returns
  after its first K (an early ``return`` inside the loop), i.e. K1 = 2 there;
  ``max_base_tiers=2`` reproduces that; the default 10 follows the described procedure.
- [I] Ties: equal L x V costs put "within" first; PM-First ties go to the lower GPU id (the
  artifact's pandas sort is not stable); "within" takes the n lowest-tier GPUs of the node (the
  artifact enumerates combinations for the lowest worst tier; same worst tier).
- [I] ``las`` orders by attained GPU-seconds (``view.attained_service``), ties by submission.
- Jobs are restricted to the nodes they may use (``view.allowed_nodes``); the artifact has one
  GPU type.
"""

from __future__ import annotations

import math
from itertools import accumulate

import numpy as np

from dlsched_gym.baselines._common import check_choice, check_positive
from dlsched_gym.baselines.registry import register
from dlsched_gym.errors import ConfigError
from dlsched_gym.perf import CLASSES, MODEL_INFO, PAL_NODE_PENALTY, canonical_model
from dlsched_gym.scheduler import Preempt, Start, Wake

POLICIES = ("fifo", "las", "srtf")
_TOL = 1e-6  # s: a decision this close to a round boundary is at the boundary


# ---------------------------------------------------------------------------------------------
# Slowdown tiers (offline clustering)
# ---------------------------------------------------------------------------------------------

def _kmeans_1d(v: np.ndarray, k: int) -> np.ndarray:
    """Centroids (ascending) of a 1-D K-means of the sorted values ``v`` with at most ``k``
    clusters: Lloyd iterations from ``k`` equal-count segments; empty clusters are dropped."""
    c = np.array([s.mean() for s in np.array_split(v, k)])
    for _ in range(300):
        labels = np.searchsorted((c[1:] + c[:-1]) / 2.0, v, side="right")
        counts = np.bincount(labels, minlength=len(c))
        sums = np.bincount(labels, weights=v, minlength=len(c))
        new = sums[counts > 0] / counts[counts > 0]
        if len(new) == len(c) and np.allclose(new, c, rtol=0, atol=1e-12):
            return new
        c = new
    return c


def _assign(v: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (ascending ``c``) for each value of ``v``."""
    return np.searchsorted((c[1:] + c[:-1]) / 2.0, v, side="right")


def _silhouette_1d(v: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of a clustering of the sorted values ``v`` into contiguous ``labels``
    (singletons score 0, as scikit-learn), in O(K n) with prefix sums."""
    n = len(v)
    prefix = np.concatenate([[0.0], np.cumsum(v)])
    ks = np.unique(labels)
    bounds = [(int(np.searchsorted(labels, k, "left")), int(np.searchsorted(labels, k, "right")))
              for k in ks]
    mean_dist = np.empty((len(ks), n))
    for i, (lo, hi) in enumerate(bounds):
        # sum |x - y| over y in v[lo:hi], for every x
        cut = np.clip(np.searchsorted(v, v, side="left"), lo, hi)
        below = v * (cut - lo) - (prefix[cut] - prefix[lo])
        above = (prefix[hi] - prefix[cut]) - v * (hi - cut)
        mean_dist[i] = below + above
    size = np.array([hi - lo for lo, hi in bounds], dtype=float)
    own = np.searchsorted(ks, labels)
    a = mean_dist[own, np.arange(n)] / np.maximum(size[own] - 1, 1)
    other = mean_dist / size[:, None]
    other[own, np.arange(n)] = np.inf
    b = other.min(axis=0)
    s = np.where(size[own] > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(s.mean())


def slowdown_tiers(pv: np.ndarray, max_base_tiers: int = 10) -> np.ndarray:
    """PAL's per-GPU slowdown tier sf(g) for one class from the measured slowdowns ``pv``.

    Outliers (above mean + 3 sd, sample sd) get clusters of their own: K = K1 + #outliers, K1 the
    best-silhouette K in 2..``max_base_tiers`` over the other GPUs; sf = the GPU's K-means
    centroid / the median centroid. One distinct value gives one tier (sf = 1).
    """
    pv = np.asarray(pv, dtype=float)
    if len(pv) < 2 or np.ptp(pv) == 0:
        return np.ones(len(pv))
    outliers = pv > pv.mean() + 3.0 * pv.std(ddof=1)
    body = np.sort(pv[~outliers])
    distinct = len(np.unique(body))
    best_k, best_s = 1, -np.inf
    for k in range(2, min(max_base_tiers, distinct) + 1):
        c = _kmeans_1d(body, k)
        if len(c) < 2:
            continue
        s = _silhouette_1d(body, _assign(body, c))
        if s > best_s:
            best_k, best_s = k, s
    centroids = _kmeans_1d(np.sort(pv), best_k + int(outliers.sum()))
    return centroids[_assign(pv, centroids)] / np.median(centroids)


# ---------------------------------------------------------------------------------------------
# Shared round-based driver
# ---------------------------------------------------------------------------------------------

class _RoundScheduler:
    """Round-gated decisions over the queue ``policy``'s order of all active jobs."""

    name = ""

    def __init__(self, policy: str, round_seconds: float) -> None:
        check_choice(self.name, "policy", policy, POLICIES)
        self.policy = policy
        self.round_seconds = check_positive(self.name, "round_seconds", round_seconds)

    def reset(self, spec, jobs, rng) -> None:
        """Bind to the cluster and the job table."""
        self._spec = spec
        self._gpus = jobs.num_gpus.tolist()
        self._gpu_node = spec.gpu_node
        self._sig: tuple[int, int, int] | None = None

    def _order(self, view) -> list[int]:
        """Active jobs (running and queued), highest priority first."""
        active = [*view.running, *view.queue]
        if self.policy == "fifo":
            return sorted(active)
        key = view.attained_service if self.policy == "las" else view.predict_remaining
        return sorted(active, key=lambda j: (key(j), j))

    def _allowed(self, view, job: int) -> np.ndarray | None:
        """Per-GPU mask of where ``job`` may run, or None for anywhere."""
        mask = view.allowed_nodes(job)
        return None if mask is None else mask[self._gpu_node]

    def schedule(self, view):
        """Decide at round boundaries; in between, only make sure a round will come."""
        rs = self.round_seconds
        now = view.now
        if abs(now - rs * round(now / rs)) > _TOL:
            if view.queue and not view.running:  # no running job: the engine arms no round
                return [Wake((math.floor(now / rs) + 1) * rs)]
            return ()
        # Between decisions the queue only grows and the running set only shrinks, so equal
        # counts mean nothing happened: under FIFO the order and the free GPUs are those of the
        # last decision, which would be taken again unchanged.
        sig = (len(view.queue), len(view.running), view.online_gpus)
        if self.policy == "fifo" and sig == self._sig:
            return ()
        order = self._order(view)
        ops, running = self._decide(view, order)
        self._sig = (len(order) - running, running, view.online_gpus)
        return ops

    def _decide(self, view, order: list[int]) -> tuple[list, int]:
        """The ops for this round and the number of jobs running after them."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# PAL
# ---------------------------------------------------------------------------------------------

def _job_class(jobs, job: int) -> int:
    """PAL application class index (0 = A .. 3 = D) of ``job``, as the perf model assigns it."""
    name = canonical_model(jobs.names["model"][jobs.model[job]])
    return CLASSES.index(MODEL_INFO[name]["cls"]) if name else 0


@register("pal")
class Pal(_RoundScheduler):
    """PAL placement under a FIFO/LAS/SRTF queue (see the module docstring).

    Args:
        policy: queue order, ``fifo``, ``las`` or ``srtf``.
        round_seconds: round length (s); decisions happen only at round boundaries.
        locality_penalty: lambda, the cost factor of an allocation spanning nodes in the L x V
            order (the artifact's default 1.7, the perf model's ``node_penalty``).
        max_base_tiers: largest K tried for the non-outlier GPUs (>= 2).
    """

    name = "pal"

    def __init__(self, policy: str = "fifo", round_seconds: float = 360.0,
                 locality_penalty: float = PAL_NODE_PENALTY, max_base_tiers: int = 10) -> None:
        super().__init__(policy, round_seconds)
        lam = check_positive(self.name, "locality_penalty", locality_penalty)
        if lam < 1.0:
            raise ConfigError(f"scheduler 'pal': parameter 'locality_penalty' must be >= 1, "
                              f"got {locality_penalty!r}")
        self.locality_penalty = lam
        if isinstance(max_base_tiers, bool) or not isinstance(max_base_tiers, (int, np.integer)) \
                or max_base_tiers < 2:
            raise ConfigError(f"scheduler 'pal': parameter 'max_base_tiers' must be an integer >= 2, "
                              f"got {max_base_tiers!r}")
        self.max_base_tiers = int(max_base_tiers)

    def reset(self, spec, jobs, rng) -> None:
        """Classify the jobs; the tiers are measured at the first decision."""
        super().reset(spec, jobs, rng)
        self._cls = [_job_class(jobs, j) for j in range(jobs.n)]
        self._rep: dict[int, int] = {}
        for j, k in enumerate(self._cls):
            self._rep.setdefault(k, j)
        self._sf: dict[int, np.ndarray] = {}
        self._rank: dict[int, np.ndarray] = {}
        self._lxv: dict[int, list[tuple[float, bool]]] = {}

    def _profile(self, view, k: int) -> None:
        """Measure class ``k``'s per-GPU slowdowns, tier them and build its L x V order."""
        job = self._rep[k]
        rates = np.array([view.rate_with(job, np.array([g])) for g in range(self._spec.num_gpus)])
        pv = np.median(rates) / rates
        sf = slowdown_tiers(pv, self.max_base_tiers)
        values = np.unique(sf)
        self._sf[k] = sf
        self._rank[k] = np.searchsorted(values, sf)
        entries = [(s * c, not within, s, within) for s in values.tolist()
                   for within, c in ((True, 1.0), (False, self.locality_penalty))]
        self._lxv[k] = [(s, within) for _, _, s, within in sorted(entries)]

    def tiers(self, view, job: int) -> np.ndarray:
        """The per-GPU slowdown tiers PAL uses for ``job``'s class."""
        k = self._cls[job]
        if k not in self._sf:
            self._profile(view, k)
        return self._sf[k]

    def _pm_first(self, k: int, cand: np.ndarray, n: int) -> np.ndarray:
        """PM-First: the first ``n`` of the GPU ids ``cand`` by (tier, |same-tier free GPUs on
        the node - n|, id)."""
        rank = self._rank[k][cand]
        group = self._gpu_node[cand] * (int(rank.max()) + 1) + rank
        _, inv, counts = np.unique(group, return_inverse=True, return_counts=True)
        score = np.abs(counts[inv] - n)
        return np.sort(cand[np.lexsort((cand, score, rank))[:n]])

    def _place(self, view, job: int, free: np.ndarray) -> np.ndarray | None:
        """PAL's GPUs for ``job`` among the free GPUs (boolean mask), or None."""
        n = self._gpus[job]
        allowed = self._allowed(view, job)
        ok = free if allowed is None else free & allowed
        if int(ok.sum()) < n:
            return None
        k = self._cls[job]
        sf = self.tiers(view, job)
        if not 1 < n <= self._spec.max_node_gpus:
            return self._pm_first(k, np.flatnonzero(ok), n)
        nodes = self._gpu_node
        for s, within in self._lxv[k]:
            cand = np.flatnonzero(ok & (sf <= s))
            if len(cand) < n:
                continue
            if not within:
                return self._pm_first(k, cand, n)
            counts = np.bincount(nodes[cand], minlength=self._spec.num_nodes)
            best = None
            for v in np.flatnonzero(counts >= n).tolist():
                on = cand[nodes[cand] == v]
                pick = on[np.lexsort((on, sf[on]))[:n]]
                key = (float(sf[pick].max()), -int(counts[v]), v)
                if best is None or key < best[0]:
                    best = (key, pick)
            if best is not None:
                return np.sort(best[1])
        return None

    def _decide(self, view, order: list[int]) -> tuple[list, int]:
        running = list(view.running)
        old = {j: view.allocation(j) for j in running}
        free = view.gpu_load == 0
        for g in old.values():
            free[g] = True
        cls = self._cls
        demand = list(accumulate(self._gpus[j] for j in order))
        cut = int(np.searchsorted(demand, view.online_gpus, side="right"))
        new_order = sorted(order[:cut], key=lambda j: cls[j]) + order[cut:]
        placed: dict[int, np.ndarray] = {}
        for j in new_order:
            gpus = self._place(view, j, free)
            if gpus is None:
                break
            free[gpus] = False
            placed[j] = gpus
        ops: list = []
        starts: list = []
        for j in running:
            new = placed.get(j)
            if new is not None and np.array_equal(np.sort(old[j]), new):
                continue
            ops.append(Preempt(j))
            if new is not None:
                starts.append(Start(j, new))
        starts += [Start(j, g) for j, g in placed.items() if j not in old]
        return ops + starts, len(placed)


# ---------------------------------------------------------------------------------------------
# Packed-Sticky
# ---------------------------------------------------------------------------------------------

@register("packed-sticky")
class PackedSticky(_RoundScheduler):
    """The artifact's Packed-Sticky baseline (see the module docstring).

    Args:
        policy: queue order, ``fifo``, ``las`` or ``srtf``.
        round_seconds: round length (s); decisions happen only at round boundaries.
    """

    name = "packed-sticky"

    def __init__(self, policy: str = "fifo", round_seconds: float = 360.0) -> None:
        super().__init__(policy, round_seconds)

    def _packed(self, view, job: int, free: np.ndarray) -> np.ndarray | None:
        """Best-fit node, else GPUs from the nodes with the most free GPUs first; None if the
        free GPUs (boolean mask) are too few."""
        n = self._gpus[job]
        allowed = self._allowed(view, job)
        ok = free if allowed is None else free & allowed
        if int(ok.sum()) < n:
            return None
        ids = np.flatnonzero(ok)
        node_free = np.bincount(self._gpu_node[ids], minlength=self._spec.num_nodes)
        fits = np.where(node_free >= n, node_free, np.iinfo(np.int64).max)
        v = int(fits.argmin())
        if node_free[v] >= n:
            return ids[self._gpu_node[ids] == v][:n]
        parts, need = [], n
        for v in np.argsort(-node_free, kind="stable").tolist():
            take = ids[self._gpu_node[ids] == v][:need]
            parts.append(take)
            need -= len(take)
            if need == 0:
                break
        return np.concatenate(parts)

    def _decide(self, view, order: list[int]) -> tuple[list, int]:
        alloc = {j: view.allocation(j) for j in view.running}
        free = view.gpu_load == 0
        ops: list = []
        for i, j in enumerate(order):
            if j in alloc:
                continue
            gpus = self._packed(view, j, free)
            tail = len(order) - 1
            while gpus is None and tail > i:
                victim = order[tail]
                tail -= 1
                if victim in alloc:
                    free[alloc.pop(victim)] = True
                    ops.append(Preempt(victim))
                    gpus = self._packed(view, j, free)
            if gpus is None:
                break
            free[gpus] = False
            alloc[j] = gpus
            ops.append(Start(j, gpus))
        return ops, len(alloc)
