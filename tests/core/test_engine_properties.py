"""Property-based tests of the engine invariants listed in DESIGN.md, on random workloads driven
by a random (but legal) scheduler, and on random illegal ops."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlsched_gym.cluster import ClusterSpec, Node
from dlsched_gym.engine import FINISHED, REJECTED, Engine
from dlsched_gym.errors import SchedulerError
from dlsched_gym.metrics import summarize
from dlsched_gym.scheduler import Preempt, Reject, Resize, Share, Start, Wake
from dlsched_gym.workload import from_records


class RandomLegal:
    """Starts, shares, preempts, resizes and rejects at random, only ever legally, and checks the
    GPU invariants at every decision point."""

    name = "random-legal"

    def __init__(self, seed, round_seconds):
        self.seed = seed
        self.round_seconds = round_seconds

    def reset(self, spec, jobs, rng):
        self.rng = np.random.default_rng(self.seed)
        self.spec = spec
        self.jobs = jobs

    def schedule(self, view):
        load = view.gpu_load
        assert load.max() <= self.spec.gpu_share_limit
        assert view.free_gpus == int((load == 0).sum())
        assert (view.node_free == np.bincount(self.spec.gpu_node[load == 0],
                                              minlength=self.spec.num_nodes)).all()
        rng, plan, ops = self.rng, view.plan(), []
        for j in list(view.running):
            u = rng.random()
            if u < 0.1:
                ops.append(Preempt(j))
                plan.release(view.allocation(j))
            elif u < 0.15 and self.jobs.max_gpus[j] > len(view.allocation(j)):
                extra = plan.place(j, 1)
                if extra is not None:
                    ops.append(Resize(j, np.concatenate([view.allocation(j), extra])))
        for j in list(view.queue):
            u = rng.random()
            if u < 0.05:
                ops.append(Reject(j))
            elif u < 0.8:
                gpus = plan.place(j)
                if gpus is not None:
                    ops.append(Start(j, gpus))
                elif self.spec.gpu_share_limit > 1:
                    n = int(self.jobs.num_gpus[j])
                    ok = np.flatnonzero(plan.gpu_load < self.spec.gpu_share_limit)
                    if len(ok) >= n:
                        gpus = ok[:n]
                        ops.append(Share(j, gpus))
                        plan.reserve(gpus)
        if not view.running and not ops and view.queue:
            ops.append(Wake(view.now + 1.0))
        return ops


jobs_st = st.lists(
    st.tuples(st.floats(0, 500), st.floats(0.5, 300), st.integers(1, 4), st.booleans()),
    min_size=1, max_size=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=jobs_st, nodes=st.integers(1, 3), gpus=st.integers(4, 8), share=st.integers(1, 2),
       overhead=st.sampled_from([0.0, 7.5]), seed=st.integers(0, 2**16),
       round_seconds=st.sampled_from([None, 60.0]))
def test_invariants_under_random_legal_ops(rows, nodes, gpus, share, overhead, seed, round_seconds):
    records = [{"job_id": f"j{i}", "submit_time": t, "duration": d, "num_gpus": g,
                "min_gpus": 1 if elastic else g, "max_gpus": g + 2 if elastic else g}
               for i, (t, d, g, elastic) in enumerate(rows)]
    wl = from_records(records)
    spec = ClusterSpec(nodes=tuple(Node(gpus=gpus) for _ in range(nodes)), gpu_share_limit=share)
    eng = Engine(wl, spec, restart_overhead=overhead, max_time=1e6)
    res = eng.run(RandomLegal(seed, round_seconds))
    frame = res.jobs_frame()
    state = res.state
    submit = frame["submit_time"].to_numpy()
    # every job ends exactly once: finished or rejected, or recorded as unfinished
    s = summarize(res)
    assert s["jobs_finished"] + s["jobs_rejected"] + s["jobs_unfinished"] == len(wl)
    # no job starts before it is submitted
    started = ~np.isnan(frame["start_time"].to_numpy())
    assert (frame["start_time"].to_numpy()[started] >= submit[started]).all()
    # completed work never exceeds total work; finished jobs did all of it
    done = np.array(eng.done_work)
    assert (done <= eng.work + 1e-9).all()
    assert np.allclose(done[state == FINISHED], eng.work[state == FINISHED])
    # finished jobs end after start; rejected jobs never started after rejection
    fin = state == FINISHED
    assert (frame["end_time"].to_numpy()[fin] >= frame["start_time"].to_numpy()[fin]).all()
    assert (np.isnan(frame["jct"].to_numpy()[state == REJECTED])).all()
    # utilization never exceeds 1, and at the end every GPU is free again when all jobs ended
    assert 0.0 <= s["gpu_utilization"] <= 1.0 + 1e-9
    if s["jobs_unfinished"] == 0:
        assert eng.free_gpus == spec.num_gpus and not eng.alloc


@settings(max_examples=100, deadline=None)
@given(rows=jobs_st, op_kind=st.sampled_from(["start", "preempt", "resize", "share", "reject"]),
       job=st.integers(-2, 30), gpu_ids=st.lists(st.integers(-2, 20), max_size=6))
def test_random_illegal_ops_raise_scheduler_error_or_apply(rows, op_kind, job, gpu_ids):
    records = [{"job_id": f"j{i}", "submit_time": 0.0, "duration": d, "num_gpus": g}
               for i, (_, d, g, _) in enumerate(rows)]
    eng = Engine(from_records(records), "2x4")
    eng.reset()
    assert eng.next_decision()
    op = {"start": lambda: Start(job, gpu_ids), "preempt": lambda: Preempt(job),
          "resize": lambda: Resize(job, gpu_ids), "share": lambda: Share(job, gpu_ids),
          "reject": lambda: Reject(job)}[op_kind]()
    before_free = eng.free_gpus
    try:
        eng.apply([op])
    except SchedulerError as exc:
        assert str(exc)  # a message, and the state is untouched
        assert eng.free_gpus == before_free
    assert eng.gpu_load.max() <= 1
    assert eng.free_gpus == int((eng.gpu_load == 0).sum())
