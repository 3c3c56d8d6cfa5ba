"""Fuzzing the engine with a scheduler that mixes legal and illegal ops.

``tests/core/test_engine_properties.py`` drives the engine with legal ops only, and tries one
illegal op at the first decision point. Here a *chaos* scheduler issues, at every decision point of
a whole simulation, a random mix of legal ops and illegal ones (double starts, preempting queued or
finished jobs, resizes out of bounds, GPUs out of range or in use, unknown job ids, unknown
regions, offloads without a cloud pool, Wake in the past, objects that are not ops) on clusters
with GPU sharing, a cloud pool, regions and a lendable inference pool. Every op is applied on its
own, and after each one:

- an op the engine refuses raises :class:`SchedulerError` naming the op and the job, and leaves
  the engine state exactly as it was;
- the GPU bookkeeping stays consistent: per-GPU load equals the jobs allocated there and never
  exceeds the share limit, free-GPU counts match, every job is in exactly one state;
- simulated time never goes backwards.

At the end every job finished, was rejected or is reported unfinished (never two of these); a
finished job did all its work, ends after it starts, and its JCT is at least its duration when it
never ran on more GPUs than it asked for (the ``duration`` perf model's rate is then <= 1); GPU
utilization lies in [0, 1].

The engine op-validation bugs this fuzzing found are fixed; their regression tests are at the end.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from dlsched_gym.cluster import CloudPool, ClusterSpec, Node
from dlsched_gym.engine import FINISHED, QUEUED, REJECTED, RUNNING, Engine
from dlsched_gym.errors import SchedulerError
from dlsched_gym.metrics import summarize
from dlsched_gym.scheduler import Offload, Preempt, Reject, Resize, Route, Share, Start, Wake
from dlsched_gym.workload import from_records
from tests.fuzz.budget import fuzz_settings

#: Decision points after which a fuzzed simulation is cut short (not a failure).
MAX_DECISIONS = 1500

#: Things a buggy scheduler might return instead of an op.
NOT_OPS = ("Start", None, (0, [0]), 3, {"job": 0})

OP_NAMES = ("Start", "Preempt", "Resize", "Share", "Offload", "Route", "Reject", "Wake")


class Chaos:
    """A scheduler that returns random ops, legal and illegal, from a seeded RNG.

    ``legal`` is the probability that an op is built to be legal (it may still be refused, e.g. a
    random GPU set that happens to be busy); the rest are aimed at a rule of the engine.
    """

    name = "chaos"

    def __init__(self, seed: int, legal: float, round_seconds: float | None) -> None:
        self.seed = seed
        self.legal = legal
        self.round_seconds = round_seconds

    def reset(self, spec, jobs, rng):
        """Bind the cluster and job table; reseed."""
        self.rng = np.random.default_rng(self.seed)
        self.spec = spec
        self.jobs = jobs

    def _gpus(self, lo: int, hi: int) -> list[int]:
        """A random GPU list: sizes around [lo, hi], ids around 0..num_gpus-1, maybe duplicates."""
        rng, n = self.rng, self.spec.num_gpus
        size = int(rng.integers(max(lo - 1, 0), hi + 2))
        if rng.random() < 0.8:
            ids = rng.choice(n, size=min(size, n), replace=False).tolist()
        else:
            ids = rng.integers(-2, n + 3, size=size).tolist()
        if ids and rng.random() < 0.1:
            ids.append(ids[0])
        return ids if rng.random() < 0.5 else np.asarray(ids, dtype=np.int64)

    def _illegal(self, view) -> object:
        rng, jobs = self.rng, self.jobs
        n = jobs.n
        j = int(rng.integers(-3, n + 3))
        if 0 <= j < n and rng.random() < 0.3:
            j = np.int64(j)
        k = int(rng.integers(10))
        if k == 0:
            return Start(j, self._gpus(1, 3) if rng.random() < 0.7 else None)
        if k == 1:
            return Preempt(j)
        if k == 2:
            return Resize(j, self._gpus(int(jobs.min_gpus[j % n]) - 1, int(jobs.max_gpus[j % n]) + 1))
        if k == 3:
            return Share(j, self._gpus(1, 3))
        if k == 4:
            return Reject(j)
        if k == 5:
            return Offload(j)
        if k == 6:
            region = rng.choice([*self.spec.regions, "nowhere", ""])
            return Route(j, str(region))
        if k == 7:
            return Wake(float(rng.choice([view.now - 1.0, view.now + 5.0, math.nan, math.inf, -math.inf])))
        if k == 8:  # double start of a running job, or restarting a finished/rejected one
            started = [x for x in range(n) if view._engine.state[x] in (RUNNING, FINISHED, REJECTED)]
            return Start(int(rng.choice(started)) if started else j)
        return NOT_OPS[int(rng.integers(len(NOT_OPS)))]

    def _legal(self, view, plan) -> object | None:
        rng, jobs = self.rng, self.jobs
        queue, running = list(view.queue), list(view.running) + list(view.in_cloud)
        u = rng.random()
        if queue and u < 0.6:
            j = int(rng.choice(queue))
            v = rng.random()
            if v < 0.5:
                gpus = plan.place(j)
                return Start(j, gpus) if gpus is not None else Wake(view.now + 1.0)
            if v < 0.6:
                return Start(j)
            if v < 0.7 and self.spec.gpu_share_limit > 1:
                ok = np.flatnonzero(plan.gpu_load < self.spec.gpu_share_limit)
                need = int(jobs.num_gpus[j])
                if len(ok) >= need:
                    gpus = rng.choice(ok, size=need, replace=False)
                    plan.reserve(gpus)
                    return Share(j, gpus)
            if v < 0.75:
                return Reject(j)
            if v < 0.85 and self.spec.cloud is not None:
                return Offload(j)
            if v < 0.95:
                return Route(j, str(rng.choice(self.spec.regions)))
            return Wake(view.now + float(rng.uniform(0, 50)))
        if running and u < 0.9:
            j = int(rng.choice(running))
            if j in view.in_cloud or rng.random() < 0.5:
                return Preempt(j)
            size = int(rng.integers(jobs.min_gpus[j], jobs.max_gpus[j] + 1))
            return Resize(j, self._gpus(size, size))
        return Wake(view.now + float(rng.uniform(0, 100)))

    def schedule(self, view):
        """Random ops; the fuzz driver applies them one at a time."""
        plan, ops = view.plan(), []
        for _ in range(int(self.rng.integers(0, 6))):
            op = self._legal(view, plan) if self.rng.random() < self.legal else self._illegal(view)
            if op is not None:
                ops.append(op)
        return ops


def snapshot(eng: Engine) -> tuple:
    """Everything an op may change, as plain values."""
    return (list(eng.state), {int(k): v.tolist() for k, v in eng.alloc.items()}, list(eng.queue),
            list(eng.cloud), eng.gpu_load.tolist(), eng.free_gpus, eng.node_free.tolist(), eng.now,
            list(eng.job_region), sorted(eng.heap), eng.finished_count, eng.rejected_count,
            list(eng.preemptions), list(eng.done_work), list(eng.rate), list(eng.first_start))


def check_bookkeeping(eng: Engine) -> None:
    """The GPU and job-state invariants that must hold between any two ops."""
    spec = eng.spec
    limit = spec.gpu_share_limit
    online = np.repeat(eng.node_online, spec.node_gpus)
    counted = np.zeros(spec.num_gpus, dtype=np.int64)
    for j, gpus in eng.alloc.items():
        assert eng.state[j] == RUNNING
        assert eng.jobs.min_gpus[j] <= len(gpus) <= eng.jobs.max_gpus[j]
        assert len(set(gpus.tolist())) == len(gpus)
        np.add.at(counted, gpus, 1)
    assert (counted[online] == eng.gpu_load[online]).all()
    assert (counted <= limit).all()  # no GPU holds more jobs than the sharing rules allow
    assert (eng.gpu_load[~online] == limit).all() and not counted[~online].any()
    assert eng.free_gpus == int((eng.gpu_load == 0).sum())
    assert (eng.node_free == np.bincount(spec.gpu_node[eng.gpu_load == 0],
                                         minlength=spec.num_nodes)).all()
    state = np.array(eng.state)
    assert set(eng.queue) == set(np.flatnonzero(state == QUEUED).tolist())
    assert not set(eng.alloc) & set(eng.cloud)
    assert set(eng.alloc) | set(eng.cloud) == set(np.flatnonzero(state == RUNNING).tolist())
    assert eng.finished_count == int((state == FINISHED).sum())
    assert eng.rejected_count == int((state == REJECTED).sum())


def check_refusal(exc: SchedulerError, op: object) -> None:
    """The message names the op and, for ops on a job, the job."""
    msg = str(exc)
    name = type(op).__name__
    if name not in OP_NAMES:
        assert "unknown op" in msg and repr(op) in msg, msg
        return
    assert name in msg, msg
    if name != "Wake":
        assert re.search(rf"(?<![\d.]){re.escape(str(op.job))}(?![\d.])", msg), msg


def make_cluster(nodes: int, gpus: int, share: int, cloud: bool, regions: bool, pool: bool) -> ClusterSpec:
    """``nodes`` training nodes of ``gpus`` GPUs (two regions if asked), plus one inference-pool
    node lent from t=20 to t=200 if ``pool``."""
    spec_nodes = [Node(gpus=gpus, region="east" if regions and i % 2 else "west") for i in range(nodes)]
    schedule: tuple = ()
    if pool:
        spec_nodes.append(Node(gpus=gpus, pool="inference"))
        schedule = ((20.0, 1), (200.0, 0))
    return ClusterSpec(nodes=tuple(spec_nodes), gpu_share_limit=share,
                       cloud=CloudPool() if cloud else None, inference_schedule=schedule)


jobs_st = st.lists(
    st.tuples(st.floats(0, 300), st.floats(0.5, 200), st.integers(1, 4), st.booleans()),
    min_size=1, max_size=20,
)


@fuzz_settings(40)
@given(rows=jobs_st, nodes=st.integers(1, 3), gpus=st.integers(2, 6), share=st.integers(1, 3),
       cloud=st.booleans(), regions=st.booleans(), pool=st.booleans(),
       overhead=st.sampled_from([0.0, 5.0]), legal=st.floats(0.3, 0.95), seed=st.integers(0, 2**32 - 1),
       round_seconds=st.sampled_from([None, 30.0]), max_time=st.sampled_from([math.inf, 400.0]))
def test_engine_keeps_invariants_under_legal_and_illegal_ops(
    rows, nodes, gpus, share, cloud, regions, pool, overhead, legal, seed, round_seconds, max_time
):
    records = [{"job_id": f"j{i}", "submit_time": t, "duration": d, "num_gpus": g,
                "min_gpus": 1 if elastic else g, "max_gpus": g + 2 if elastic else g}
               for i, (t, d, g, elastic) in enumerate(rows)]
    wl = from_records(records)
    spec = make_cluster(nodes, gpus, share, cloud, regions, pool)
    assume(int(wl.table["min_gpus"].max()) <= spec.num_gpus)  # else the engine refuses it up front
    eng = Engine(wl, spec, restart_overhead=overhead, resize_overhead=overhead, max_time=max_time,
                 seed=seed % 1000)
    chaos = Chaos(seed, legal, round_seconds)
    eng.reset(chaos)
    over_allocated = np.zeros(len(wl), dtype=bool)  # ran on more GPUs than requested (rate > 1)
    last_now, decisions, refused, applied = 0.0, 0, 0, 0
    while decisions < MAX_DECISIONS and eng.next_decision():
        decisions += 1
        assert eng.now >= last_now
        last_now = eng.now
        check_bookkeeping(eng)
        for op in chaos.schedule(eng.view):
            before = snapshot(eng)
            try:
                eng.apply([op])
            except SchedulerError as exc:
                refused += 1
                check_refusal(exc, op)
                assert snapshot(eng) == before, f"{op!r} was refused but changed the engine state"
            else:
                applied += 1
                for j, alloc in eng.alloc.items():
                    over_allocated[j] |= len(alloc) > eng.jobs.num_gpus[j]
            check_bookkeeping(eng)
            assert eng.now == last_now  # ops never move the clock
    res = eng.result("chaos")
    event(f"ops refused: {'none' if not refused else 'some' if refused < applied else 'most'}")
    event("end: " + ("truncated" if res.truncated else "stalled" if res.stalled else
                     "cut at max decisions" if decisions >= MAX_DECISIONS else "all jobs ended"))
    s = summarize(res)
    state = res.state
    # every job ends exactly once, or is reported unfinished
    assert s["jobs_finished"] + s["jobs_rejected"] + s["jobs_unfinished"] == len(wl)
    assert s["jobs_finished"] == int((state == FINISHED).sum())
    assert s["jobs_rejected"] == int((state == REJECTED).sum())
    fin = state == FINISHED
    done = np.asarray(eng.done_work)
    assert (done <= eng.work + 1e-9).all()
    assert np.allclose(done[fin], eng.work[fin])
    assert (res.start_time[fin] >= res.submit_time[fin]).all()
    assert (res.end_time[fin] >= res.start_time[fin]).all()
    assert (res.end_time[fin] <= res.now).all()
    jct = res.end_time - res.submit_time
    slow = fin & ~over_allocated
    assert (jct[slow] >= res.duration[slow] * (1 - 1e-9) - 1e-9).all()
    assert (res.end_time[state == REJECTED] <= res.now).all()
    if res.available_gpu_seconds > 0:
        assert 0.0 <= s["gpu_utilization"] <= 1.0 + 1e-9
    assert res.busy_gpu_seconds <= res.available_gpu_seconds * (1 + 1e-9) + 1e-9


# --------------------------------------------------------------------------------------------------
# Engine bugs the fuzzing found (engine.py is not changed here; see the report). Each test fails
# today and is marked strict, so it turns into an XPASS error once the engine is fixed.
# --------------------------------------------------------------------------------------------------


def _two_jobs_engine() -> Engine:
    """Jobs 0 (2 GPUs, elastic 1..3) and 1 (1 GPU) queued at t=0 on 2 nodes x 4 GPUs; job 0 runs
    on GPUs 4-5 (node 1)."""
    wl = from_records([
        {"submit_time": 0.0, "duration": 10.0, "num_gpus": 2, "min_gpus": 1, "max_gpus": 3},
        {"submit_time": 0.0, "duration": 10.0, "num_gpus": 1, "min_gpus": 1, "max_gpus": 1},
    ])
    eng = Engine(wl, "2x4")
    eng.reset()
    assert eng.next_decision()
    eng.apply([Start(0, [4, 5])])
    return eng


@pytest.mark.parametrize("gpus", [[2.9], [3.5], ["3"], [[3]], [True]],
                         ids=["float", "fraction", "str", "nested", "bool"])
def test_non_integer_gpu_ids_are_refused(gpus):
    eng = _two_jobs_engine()
    try:
        eng.apply([Start(1, gpus)])
    except SchedulerError as exc:
        assert "job 1: Start" in str(exc)
    else:
        raise AssertionError(f"Start(1, {gpus!r}) was applied on GPUs {eng.alloc[1].tolist()}")


def test_huge_gpu_id_is_refused():
    eng = _two_jobs_engine()
    with pytest.raises(SchedulerError, match="job 1: Start"):
        eng.apply([Start(1, [1e30])])


def test_bool_job_id_is_refused():
    eng = _two_jobs_engine()
    with pytest.raises(SchedulerError, match="not a job index"):
        eng.apply([Start(True, [3])])


@pytest.mark.parametrize("time", ["soon", None, [5.0]], ids=["str", "none", "list"])
def test_wake_with_a_non_number_is_refused(time):
    eng = _two_jobs_engine()
    with pytest.raises(SchedulerError, match="Wake"):
        eng.apply([Wake(time)])
