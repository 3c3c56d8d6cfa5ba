"""Engine behaviour on small traces with JCTs computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from dlsched_gym.baselines import make
from dlsched_gym.engine import FINISHED, Engine, lucid_overhead
from dlsched_gym.errors import SchedulerError, WorkloadError
from dlsched_gym.metrics import summarize
from dlsched_gym.scheduler import Preempt, Reject, Resize, Start, Wake
from tests.scripted import Scripted


def test_fifo_three_jobs_hand_computed(make_workload):
    # 1 node x 4 GPUs. A(t=0, 100 s, 4 GPUs), B(t=10, 50 s, 2), C(t=20, 30 s, 2).
    # A runs 0-100; B and C both fit when A ends: B 100-150, C 100-130.
    # JCT: A 100, B 150-10 = 140, C 130-20 = 110; mean 350/3.
    wl = make_workload([(0, 100, 4), (10, 50, 2), (20, 30, 2)])
    res = Engine(wl, "1x4-V100").run(make("fifo"))
    jobs = res.jobs_frame()
    assert jobs["jct"].tolist() == [100.0, 140.0, 110.0]
    assert jobs["queueing_delay"].tolist() == [0.0, 90.0, 80.0]
    s = summarize(res)
    assert s["avg_jct"] == pytest.approx(350 / 3)
    assert s["makespan"] == 150.0
    # busy GPU-seconds: 4*100 + 2*50 + 2*30 = 560 over 4 GPUs x 150 s.
    assert s["gpu_utilization"] == pytest.approx(560 / 600)
    assert s["jobs_finished"] == 3 and s["jobs_unfinished"] == 0


def test_strict_fifo_blocks_backfill_does_not(make_workload):
    # 1x4. A(0, 100 s, 2 GPUs) runs; B(1, 10 s, 4 GPUs) cannot fit until 100; C(2, 10 s, 2 GPUs).
    # strict: C waits behind B: B 100-110, C 110-120 -> JCTs 100, 109, 118.
    # backfill: C starts at 2 on the 2 free GPUs (2-12), B 100-110 -> JCTs 100, 109, 10.
    wl = make_workload([(0, 100, 2), (1, 10, 4), (2, 10, 2)])
    strict = Engine(wl, "1x4").run(make("fifo")).jobs_frame()["jct"].tolist()
    back = Engine(wl, "1x4").run(make("fifo-backfill")).jobs_frame()["jct"].tolist()
    assert strict == [100.0, 109.0, 118.0]
    assert back == [100.0, 109.0, 10.0]


@pytest.mark.parametrize("overhead, expected_end", [(0.0, 110.0), (5.0, 115.0)])
def test_preempt_and_restart_overhead(make_workload, overhead, expected_end):
    # 1x1. Job 0 (0 s, 100 s) starts at 0; job 1 (30 s, 10 s) arrives at 30 and preempts it.
    # Job 1 runs 30-40. Job 0 restarts at 40 with 70 s of work left, after `overhead` s:
    # ends at 40 + overhead + 70.
    wl = make_workload([(0, 100, 1), (30, 10, 1)])
    script = {
        0.0: lambda v: [Start(0)],
        30.0: lambda v: [Preempt(0), Start(1)],
        40.0: lambda v: [Start(0)],
    }
    res = Engine(wl, "1x1", restart_overhead=overhead).run(Scripted(script))
    jobs = res.jobs_frame()
    assert jobs["end_time"].tolist() == [expected_end, 40.0]
    assert jobs["preemptions"].tolist() == [1, 0]
    assert jobs["start_time"].tolist() == [0.0, 30.0]  # first start is kept


def test_lucid_overhead_values():
    assert lucid_overhead(8) == 40.0 and lucid_overhead(9) == 60.0


def test_resize_changes_rate_and_pays_overhead(make_workload):
    # Elastic job: 2 GPUs requested, accepts 1..4. Duration model scales linearly:
    # rate = gpus/2. Start on 2 GPUs at 0 (rate 1): 40 of 100 units by t=40.
    # Resize to 4 GPUs at 40 with a 10 s overhead: no progress 40-50, then rate 2:
    # 60 units / 2 = 30 s -> ends at 80.
    wl = make_workload([(0, 100, 2, {"min_gpus": 1, "max_gpus": 4})])
    script = {0.0: lambda v: [Start(0, [0, 1])], 40.0: lambda v: [Resize(0, [0, 1, 2, 3])]}
    eng = Engine(wl, "1x4", resize_overhead=10.0)
    res = eng.run(Scripted(script, first=[Wake(40.0)]))
    assert res.jobs_frame()["end_time"].tolist() == [80.0]
    # busy GPU-seconds: 2 GPUs x 40 s + 4 GPUs x 40 s = 240
    assert res.busy_gpu_seconds == pytest.approx(240.0)


def test_rounds_wake_scheduler_while_jobs_run(make_workload):
    # One 250 s job; a 100 s round calls the scheduler at 0 (arrival), 100, 200, 250 (completion).
    wl = make_workload([(0, 250, 1)])
    sched = Scripted({0.0: lambda v: [Start(0)]}, round_seconds=100.0)
    Engine(wl, "1x1").run(sched)
    assert sched.calls == [0.0, 100.0, 200.0, 250.0]


def test_reject_ends_job_as_rejected(make_workload):
    wl = make_workload([(0, 10, 1), (0, 10, 1)])
    res = Engine(wl, "1x1").run(Scripted({0.0: lambda v: [Start(0), Reject(1)]}))
    s = summarize(res)
    assert s["jobs_finished"] == 1 and s["jobs_rejected"] == 1 and s["jobs_unfinished"] == 0


def test_stall_is_recorded_not_looped(make_workload):
    # A scheduler that never starts anything: the engine stops and says so.
    wl = make_workload([(0, 10, 1), (5, 10, 1)])
    res = Engine(wl, "1x1").run(Scripted({}))
    s = summarize(res)
    assert res.stalled and s["stalled"] and s["jobs_unfinished"] == 2 and s["jobs_finished"] == 0


def test_max_time_truncates(make_workload):
    wl = make_workload([(0, 10, 1), (0, 100, 1)])
    res = Engine(wl, "1x2", max_time=50).run(make("fifo"))
    s = summarize(res)
    assert res.truncated and s["jobs_finished"] == 1 and s["jobs_unfinished"] == 1


def test_job_larger_than_cluster_fails_before_simulating(make_workload):
    wl = make_workload([(0, 10, 1), (0, 10, 16)])
    with pytest.raises(WorkloadError, match=r"row 1 .*needs 16 GPUs.*has 8"):
        Engine(wl, "1x8")


@pytest.mark.parametrize(
    "ops, message",
    [
        ([Start(0, [0, 0])], "duplicate GPU ids"),
        ([Start(0, [0, 1, 2])], "got 3 GPUs, the job accepts 2"),
        ([Start(0, [0, 9])], r"GPU ids must lie in 0\.\.3"),
        ([Start(0, [0, 1]), Start(1, [1, 2])], r"GPUs \[1\] are in use"),
        ([Preempt(0)], "job is queued, expected running"),
        ([Start(5)], r"not a job index"),
        ([Start(0), Start(1), Start(2)], "do not fit"),
        ([Resize(0, [0, 1])], "job is queued, expected running"),
        (["start"], "unknown op"),
        ([Wake(-1.0)], "not a finite time"),
    ],
)
def test_invalid_ops_raise_naming_job_op_reason(make_workload, ops, message):
    wl = make_workload([(0, 10, 2), (0, 10, 2), (0, 10, 2)])
    with pytest.raises(SchedulerError, match=message):
        Engine(wl, "1x4").run(Scripted({0.0: lambda v: ops}))


def test_sharing_respects_limit(make_workload):
    from dlsched_gym.cluster import ClusterSpec, Node
    from dlsched_gym.scheduler import Share

    spec = ClusterSpec(nodes=(Node(gpus=1),), gpu_share_limit=2)
    wl = make_workload([(0, 10, 1), (0, 10, 1), (0, 10, 1)])
    # Two jobs share GPU 0 (duration model: no slowdown) and end at 10; the third may not join.
    res = Engine(wl, spec).run(Scripted({0.0: lambda v: [Start(0), Share(1, [0])],
                                         10.0: lambda v: [Start(2)]}))
    assert res.jobs_frame()["end_time"].tolist() == [10.0, 10.0, 20.0]
    with pytest.raises(SchedulerError, match="share limit"):
        Engine(wl, spec).run(Scripted({0.0: lambda v: [Start(0), Share(1, [0]), Share(2, [0])]}))
    with pytest.raises(SchedulerError, match="does not allow GPU sharing"):
        Engine(wl, "1x1").run(Scripted({0.0: lambda v: [Start(0), Share(1, [0])]}))


def test_view_reports_attained_service_and_progress(make_workload):
    seen = {}

    def at50(view):
        seen["att"] = view.attained_service(0)
        seen["exec"] = view.executed_time(0)
        seen["prog"] = view.progress(0)
        seen["rem"] = view.predict_remaining(0)
        return []

    wl = make_workload([(0, 200, 2)])
    Engine(wl, "1x2").run(Scripted({0.0: lambda v: [Start(0), Wake(50.0)], 50.0: at50}))
    # 2 GPUs x 50 s = 100 GPU-s; 50 of 200 s done; 150 s left (oracle)
    assert seen == {"att": 100.0, "exec": 50.0, "prog": 0.25, "rem": 150.0}


def test_reset_gives_identical_results(make_workload):
    rng = np.random.default_rng(1)
    rows = [(float(t), float(d), int(g)) for t, d, g in
            zip(np.cumsum(rng.exponential(20, 40)), rng.uniform(5, 300, 40), rng.integers(1, 5, 40))]
    eng = Engine(make_workload(rows), "2x4")
    a = eng.run(make("fifo")).jobs_frame()
    b = eng.run(make("fifo")).jobs_frame()
    assert a.equals(b)
    assert (np.asarray(eng.state) == FINISHED).all()


def test_timeline_records_the_state_after_each_decision(make_workload):
    # A 4-GPU job starts at 0 and runs 1000 s; samples every 600 s are taken after decisions, so
    # the sample at 0 already shows it running on all 4 GPUs.
    wl = make_workload([(0, 1000, 4), (700, 10, 4)])
    res = Engine(wl, "1x4", timeline_interval=600.0).run(make("fifo"))
    first = res.timeline.iloc[0]
    assert (first["time"], first["running"], first["busy_gpus"], first["queued"]) == (0.0, 1, 4, 0)
    second = res.timeline.iloc[1]  # at 700: job 1 arrived and waits
    assert (second["time"], second["queued"], second["busy_gpus"]) == (700.0, 1, 4)


def test_rounds_wake_a_round_only_scheduler_on_an_idle_cluster(make_workload):
    # A scheduler that acts only at multiples of 360 s: the job arriving at 100 s on an idle cluster
    # starts at the 360 s round and ends at 460 s. One that never starts anything stalls instead of
    # looping on rounds forever.
    class RoundOnly(Scripted):
        def schedule(self, view):
            return [Start(j) for j in list(view.queue)] if view.now % 360 == 0 else []

    wl = make_workload([(100, 100, 1)])
    res = Engine(wl, "1x1").run(RoundOnly({}, round_seconds=360.0))
    assert res.jobs_frame()["end_time"].tolist() == [460.0] and not res.stalled
    lazy = Engine(wl, "1x1").run(Scripted({}, round_seconds=360.0))
    assert lazy.stalled


def test_job_table_window_is_the_table_of_the_shifted_rows(make_workload):
    # Rows 1..3 of a four-job trace: submit times 10, 25, 40 and deadlines shift to start at 0,
    # every other column is sliced, and codes name the same strings as a table built afresh.
    from dlsched_gym.engine import JobTable
    from dlsched_gym.workload import Workload

    wl = make_workload([(0, 100, 4, {"user": "u2", "deadline": 500.0}),
                        (10, 50, 2, {"user": "u1", "deadline": 300.0}),
                        (25, 30, 2, {"user": "u3", "deadline": 90.0}),
                        (40, 30, 1, {"user": "u1", "deadline": 200.0})])
    window = JobTable(wl.table).window(1, 4)
    rows = wl.table.iloc[1:4].copy().reset_index(drop=True)
    rows["submit_time"] -= 10.0
    rows["deadline"] -= 10.0
    fresh = JobTable(rows)
    assert window.n == 3 and window.job_id.tolist() == ["j1", "j2", "j3"]
    assert window.submit_time.tolist() == [0.0, 15.0, 30.0]
    assert window.deadline.tolist() == [290.0, 80.0, 190.0]
    for col in JobTable.NUMERIC:
        np.testing.assert_array_equal(getattr(window, col), getattr(fresh, col), err_msg=col)
    for col in JobTable.CATEGORICAL:
        assert ([window.names[col][c] for c in getattr(window, col)]
                == [fresh.names[col][c] for c in getattr(fresh, col)]), col
    # an engine on the window gives the same result with the sliced table as without
    sub = Workload(table=rows, name="window")
    a = summarize(Engine(sub, "1x4", jobs=window).run(make("fifo")))
    b = summarize(Engine(sub, "1x4").run(make("fifo")))
    assert a == b
    with pytest.raises(Exception, match="jobs has 3 rows"):
        Engine(wl, "1x4", jobs=window)
