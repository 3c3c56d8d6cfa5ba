"""Gandiva: introspective cluster scheduling for deep learning.

Xiao, Bhardwaj, Ramjee, Sivathanu, Kwatra, Han, Patel, Peng, Zhao, Zhang, Yang and Zhou,
"Gandiva: Introspective Cluster Scheduling for Deep Learning", OSDI'18. Gandiva has no public
artifact: the mechanisms below are rebuilt from the paper's description (and the project
specification, ``published-schedulers-b.md`` section 6); no code is taken from anywhere.

Follows the paper (its four mechanisms, Sec. 3-4):

- **Time-slicing** when the cluster is oversubscribed: at every quantum boundary (``quantum``,
  about one minute in the paper), a waiting job may take the GPUs of a running job whose quantum
  has expired (suspend / resume, round-robin): waiting jobs in the order they (re)joined the
  queue come before every expired running job; expired jobs that have run the longest are
  suspended first. Between boundaries nobody is suspended; free GPUs are filled in queue order
  (a job that does not fit is skipped).
- **Packing**: a waiting job that does not fit is co-located (``Share``) on the GPUs of a running
  job with the same GPU count when the cluster allows sharing (``gpu_share_limit > 1``), the
  GPUs hold no one else and the two jobs' memory fits a GPU (``perf.fits_on_gpu``: model state
  and Gavel's measured infeasible pairs). At the next decision the packing is measured: if the
  two jobs' rates, each over its rate alone on the same GPUs, sum to less than 1 (worse than
  time-slicing), the packed job is suspended and the pair is never packed again.
- **Migration** to defragment: when the first waiting job has enough free GPUs in total but no
  placement for them, running single-node jobs are moved (``Resize`` to the same size, paying
  the engine's ``resize_overhead``) off the node with the most free GPUs so the job fits there.
- **Grow-shrink**: with nobody waiting, a running elastic job (``max_gpus > num_gpus``) grows onto
  the idle GPUs of its own nodes; as soon as a job waits, grown jobs shrink back to their request
  before anything else is decided.

Reconstructions: the paper's profiling of per-job GPU utilisation is replaced by the perf
model's rates (``view.rate`` measured after packing, ``view.rate_with`` for the rate alone);
memory is the perf module's model-state estimate (a lower bound); one guest per host job;
migration considers only the first waiting job and moves whole single-node jobs; growing stays
on the job's nodes; suspend/resume costs the engine's ``restart_overhead``. A shrink is applied
first and the rest of the decision is taken right after it at the same instant (a ``Wake`` at
now), so the freed GPUs are seen. ElasticFlow's variant (node sets per job size) is not this
module.
"""

from __future__ import annotations

import numpy as np

from dlsched_gym.baselines._common import SortedJobs, check_bool, check_positive, preemptive_fill
from dlsched_gym.baselines.registry import register
from dlsched_gym.perf import fits_on_gpu
from dlsched_gym.scheduler import Preempt, Resize, Share, Start, Wake

_DUE = 1e-6  # s: a quantum that ends this close to now has ended


@register("gandiva")
class Gandiva:
    """Time-slicing, packing, migration and grow-shrink (see the module docstring).

    Args:
        quantum: time-slice length (s), also the period of the extra decision points.
        packing: co-locate waiting jobs on running jobs' GPUs (clusters with sharing).
        migration: move running jobs to defragment for the first waiting job.
        grow_shrink: grow elastic jobs onto idle GPUs; shrink them when jobs wait.
    """

    name = "gandiva"

    def __init__(self, quantum: float = 60.0, packing: bool = True, migration: bool = True,
                 grow_shrink: bool = True) -> None:
        self.round_seconds = check_positive("gandiva", "quantum", quantum)
        self.packing = check_bool("gandiva", "packing", packing)
        self.migration = check_bool("gandiva", "migration", migration)
        self.grow_shrink = check_bool("gandiva", "grow_shrink", grow_shrink)

    def reset(self, spec, jobs, rng) -> None:
        """Start a simulation with an empty queue."""
        self._spec = spec
        self._gpus = jobs.num_gpus.tolist()
        self._max = jobs.max_gpus.tolist()
        self._models = [(jobs.names["model"][m], int(b)) for m, b in zip(jobs.model, jobs.batch_size)]
        self._node_mem = np.array([n.gpu_mem_gb for n in spec.nodes], dtype=float)
        self._total = spec.num_gpus
        self._queue = SortedJobs()
        self._size: dict[int, int] = {}  # GPUs held by each running job (packed guests excluded)
        self._start: dict[int, float] = {}  # when each running job got its GPUs
        self._held = 0
        self._guests: dict[int, int] = {}  # packed job -> the job whose GPUs it shares
        self._measured: set[frozenset] = set()  # packed pairs already measured
        self._bad: set[frozenset] = set()
        self._fit_cache: dict[tuple, bool] = {}

    # -- bookkeeping ----------------------------------------------------------------------
    def _enqueue(self, now: float, j: int) -> None:
        self._queue.add((now, 1, 0.0, j), self._gpus[j])

    def _run(self, now: float, j: int, n: int) -> None:
        self._size[j] = n
        self._start[j] = now
        self._held += n

    def _stop(self, j: int) -> None:
        self._held -= self._size.pop(j)
        del self._start[j]

    def schedule(self, view):
        """Update the bookkeeping, then unpack, shrink, time-slice, pack, migrate and grow."""
        now = view.now
        for j in view.finished:
            if j in self._guests:
                del self._guests[j]
                del self._start[j]
            else:
                self._stop(j)
        for j in view.new_jobs:
            self._enqueue(now, j)
        for g, h in list(self._guests.items()):
            if h not in self._size:  # the host finished or was suspended: the guest runs alone
                del self._guests[g]
                t = self._start.pop(g)
                self._run(t, g, len(view.allocation(g)))
        ops: list = []
        released: list[np.ndarray] = []
        self._unpack(view, ops, released)
        if self._queue.items and self.grow_shrink:
            shrunk = self._shrink(view)
            if shrunk:
                return ops + shrunk + [Wake(now)]
        busy: dict[int, np.ndarray | None] = {}  # suspended (None) or started (GPUs) now
        if self._queue.items:
            self._time_slice(view, ops, released, busy)
        plan = view.plan()
        for gpus in released:
            plan.release(gpus)
        for op in ops:
            if type(op) is Start:
                plan.reserve(op.gpus)
        if self._queue.items and self.packing and view.spec.gpu_share_limit > 1:
            self._pack(view, plan, ops, busy)
        if self._queue.items and self.migration:
            self._migrate(view, plan, ops, busy)
        if not self._queue.items and self.grow_shrink:
            self._grow(view, plan, ops, busy)
        return ops

    # -- mechanisms -----------------------------------------------------------------------
    def _unpack(self, view, ops: list, released: list) -> None:
        """Measure new packings once; suspend the guest of a pair that lost throughput."""
        for g, h in list(self._guests.items()):
            pair = frozenset((g, h))
            if pair in self._measured:
                continue
            self._measured.add(pair)
            gg, hg = view.allocation(g), view.allocation(h)
            combined = view.rate(g) / view.rate_with(g, gg) + view.rate(h) / view.rate_with(h, hg)
            if combined < 1.0:
                ops.append(Preempt(g))
                released.append(gg)
                del self._guests[g]
                del self._start[g]
                self._bad.add(pair)
                self._enqueue(view.now, g)

    def _shrink(self, view) -> list:
        """Resize every grown job back to its requested GPU count."""
        ops = []
        for j, n in list(self._size.items()):
            want = self._gpus[j]
            if n > want:
                ops.append(Resize(j, view.allocation(j)[:want]))
                self._held -= n - want
                self._size[j] = want
        return ops

    def _time_slice(self, view, ops: list, released: list, busy: set) -> None:
        """Fill free GPUs in queue order; at quantum boundaries suspend expired jobs for
        waiting ones."""
        now = view.now
        rs = self.round_seconds
        contested: list[tuple] = []
        if abs(now - round(now / rs) * rs) <= _DUE:
            best = self._queue.items[0]
            contested = sorted(c for c in ((now, 0, -t, j) for j, t in self._start.items()
                                           if j in self._size and t + rs <= now + _DUE)
                               if c > best)
        quota = self._total - self._held + sum(self._size[c[-1]] for c in contested)
        preempted, started = preemptive_fill(view, self._queue, contested, quota, self._size)
        for j in preempted:
            ops.append(Preempt(j))
            released.append(view.allocation(j))
            self._stop(j)
            busy[j] = None
        for j, gpus in started:
            ops.append(Start(j, gpus))
            self._queue.remove(j)
            self._run(now, j, len(gpus))
            busy[j] = gpus
        for j in preempted:
            self._enqueue(now, j)

    def _pack(self, view, plan, ops: list, busy: dict) -> None:
        """Share running jobs' GPUs (those started now included) with waiting jobs that do not
        fit, memory permitting."""
        taken = set(self._guests.values())
        hosts = {h: busy[h] if h in busy else view.allocation(h) for h in self._size if h not in taken}
        gpu_node = view.spec.gpu_node
        for item in list(self._queue.items):
            if not hosts:
                break
            j = item[-1]
            n = self._gpus[j]
            allowed = view.allowed_nodes(j)
            best = None
            for h, gpus in hosts.items():
                if len(gpus) != n or (plan.gpu_load[gpus] != 1).any() or frozenset((j, h)) in self._bad:
                    continue
                nodes = gpu_node[gpus]
                if allowed is not None and not allowed[nodes].all():
                    continue
                if not self._fits(j, h, float(self._node_mem[nodes].min())):
                    continue
                if best is None or h < best:
                    best = h
            if best is None:
                continue
            gpus = hosts.pop(best)
            ops.append(Share(j, gpus))
            plan.reserve(gpus)
            self._queue.remove(j)
            self._guests[j] = best
            self._start[j] = view.now
            busy[j] = gpus

    def _fits(self, j: int, h: int, mem_gb: float) -> bool:
        """Whether jobs ``j`` and ``h`` fit together on GPUs of ``mem_gb`` (cached per model
        pair and memory size)."""
        key = (self._models[j], self._models[h], mem_gb)
        ok = self._fit_cache.get(key)
        if ok is None:
            ok = self._fit_cache[key] = fits_on_gpu([self._models[j], self._models[h]], mem_gb)
        return ok

    def _migrate(self, view, plan, ops: list, busy: dict) -> None:
        """Free one node for the first waiting job by moving single-node jobs elsewhere."""
        j = self._queue.items[0][-1]
        n = self._gpus[j]
        spec = view.spec
        if n > plan.free_gpus or n > spec.max_node_gpus:
            return
        gpus = plan.place(j, n)
        if gpus is not None:  # fits now (e.g. GPUs an unpacked guest shared)
            ops.append(Start(j, gpus))
            self._queue.remove(j)
            self._run(view.now, j, n)
            return
        allowed = view.allowed_nodes(j)
        hosts = set(self._guests.values())
        gpu_node = spec.gpu_node
        on_node: dict[int, list[int]] = {}
        for m in self._size:
            if m in busy or m in hosts:
                continue
            g = view.allocation(m)
            nodes = gpu_node[g]
            if (nodes == nodes[0]).all() and (plan.gpu_load[g] == 1).all():
                on_node.setdefault(int(nodes[0]), []).append(m)
        candidates = [v for v in range(spec.num_nodes)
                      if spec.node_gpus[v] >= n and (allowed is None or allowed[v])]
        for v in sorted(candidates, key=lambda v: (-plan.node_free[v], v)):
            need = n - int(plan.node_free[v])
            movers = sorted(on_node.get(v, []), key=lambda m: (self._size[m], m))
            if sum(self._size[m] for m in movers) < need:
                continue
            elsewhere = np.arange(spec.num_nodes) != v
            undo: list[tuple[str, np.ndarray]] = []
            moves = []
            for m in movers:
                if need <= 0:
                    break
                old = view.allocation(m)
                plan.release(old)
                undo.append(("release", old))
                new = plan.place(m, len(old), nodes=elsewhere)
                if new is None:
                    break
                undo.append(("reserve", new))
                moves.append(Resize(m, new))
                need -= len(old)
            gpus = plan.place(j, n, nodes=~elsewhere) if need <= 0 else None
            if gpus is not None:
                ops.extend(moves)
                ops.append(Start(j, gpus))
                self._queue.remove(j)
                self._run(view.now, j, n)
                return
            for what, g in reversed(undo):
                (plan.reserve if what == "release" else plan.release)(g)

    def _grow(self, view, plan, ops: list, busy: dict) -> None:
        """Grow elastic running jobs onto the idle GPUs of their own nodes."""
        gpu_node = view.spec.gpu_node
        hosts = set(self._guests.values())
        for j in sorted(self._size):
            extra = self._max[j] - self._size[j]
            if extra <= 0 or j in busy or j in hosts or plan.free_gpus == 0:
                continue
            old = view.allocation(j)
            own = np.zeros(view.spec.num_nodes, dtype=bool)
            own[gpu_node[old]] = True
            k = min(extra, int(plan.node_free[own].sum()))
            if k <= 0:
                continue
            new = plan.place(j, k, nodes=own)
            if new is None:
                continue
            ops.append(Resize(j, np.concatenate([old, new])))
            self._held += k
            self._size[j] += k
