"""Starburst (ATC'24): waiting budgets, the queue cap and the no-estimate variant, by hand.

Every cluster has a cloud pool at 36 $/GPU-hour, so that cost = cloud GPU-seconds / 100.
The predictor is the oracle (the engine's default): r = the trace duration.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dlsched_gym.baselines import make
from dlsched_gym.baselines.starburst import ChunkedFirstFit
from dlsched_gym.cluster import CloudPool, make_cluster
from dlsched_gym.engine import Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.metrics import summarize
from dlsched_gym.workload import from_records

PRICE = 36.0


def cloud_cluster(spec: str):
    return dataclasses.replace(make_cluster(spec), cloud=CloudPool(price_per_gpu_hour=PRICE))


def run(jobs, scheduler, cluster="1x4"):
    """``jobs``: (job_id, submit, gpus, duration). Returns (jobs frame by id, summary)."""
    rows = [{"job_id": j, "submit_time": s, "num_gpus": g, "duration": d} for j, s, g, d in jobs]
    res = Engine(from_records(rows), cloud_cluster(cluster), timeline_interval=None).run(scheduler)
    assert not res.stalled and not res.truncated
    return res.jobs_frame().set_index("job_id"), summarize(res)


def test_a_job_waits_exactly_its_compute_budget_then_bursts():
    # 1 node x 4 GPUs, w = k x GPUs x runtime with k = 0.5.
    # A (t=0, 4 GPUs, 1000 s) holds the node 0-1000.
    # B (t=10, 2 GPUs, 100 s): w = 0.5 x 2 x 100 = 100 s -> still queued at 110, bursts:
    #   cloud 110-210, JCT 200.
    # C (t=20, 1 GPU, 3000 s): w = 0.5 x 1 x 3000 = 1500 s, deadline 1520 > 1000: A ends at 1000,
    #   C runs on-prem 1000-4000, JCT 3980.
    # Cloud: B only, 2 GPUs x 100 s = 200 GPU-s -> cost 2.0.
    jobs, s = run([("A", 0, 4, 1000), ("B", 10, 2, 100), ("C", 20, 1, 3000)],
                  make("starburst", k=0.5, max_queue_length=None))
    assert jobs["start_time"].to_dict() == {"A": 0.0, "B": 110.0, "C": 1000.0}
    assert jobs["jct"].to_dict() == {"A": 1000.0, "B": 200.0, "C": 3980.0}
    assert jobs.loc["B", "cloud_start"] == 110.0
    assert np.isnan(jobs.loc["A", "cloud_start"]) and np.isnan(jobs.loc["C", "cloud_start"])
    assert s["cloud_gpu_hours"] == pytest.approx(200 / 3600)
    assert s["cloud_cost"] == pytest.approx(2.0)


class FixedPredictor:
    """Predicts 50 s for every job."""

    name = "fixed"

    def reset(self, jobs, durations, rng):
        pass

    def duration(self, job):
        return 50.0

    def observe(self, job, duration):
        pass


def test_the_budget_uses_the_experiments_predictor():
    # Same trace as above with a predictor that says 50 s for every job:
    # B's w = 0.5 x 2 x 50 = 50 s -> bursts at 60, cloud 60-160 (true run time), JCT 150.
    # C's w = 0.5 x 1 x 50 = 25 s -> bursts at 45, cloud 45-3045, JCT 3025.
    # Cloud: 2 x 100 + 1 x 3000 = 3200 GPU-s -> cost 32.0.
    rows = [{"job_id": j, "submit_time": s, "num_gpus": g, "duration": d}
            for j, s, g, d in [("A", 0, 4, 1000), ("B", 10, 2, 100), ("C", 20, 1, 3000)]]
    res = Engine(from_records(rows), cloud_cluster("1x4"), predictor=FixedPredictor(),
                 timeline_interval=None).run(make("starburst", k=0.5, max_queue_length=None))
    jobs = res.jobs_frame().set_index("job_id")
    assert jobs["start_time"].to_dict() == {"A": 0.0, "B": 60.0, "C": 45.0}
    assert jobs["jct"].to_dict() == {"A": 1000.0, "B": 150.0, "C": 3025.0}
    assert summarize(res)["cloud_cost"] == pytest.approx(32.0)


def test_a_timer_due_when_space_frees_still_bursts():
    # As in the paper's simulator, timeouts are handled before the placement pass.
    # 1x4, k = 1: A (0, 4 GPUs, 100 s) runs 0-100; B (0, 1 GPU, 100 s): w = 1 x 1 x 100 = 100 s.
    # At 100 A ends and B's timer is due: B goes to the cloud, 100-200 (JCT 200), although a
    # GPU is free. Cloud 100 GPU-s -> cost 1.0.
    jobs, s = run([("A", 0, 4, 100), ("B", 0, 1, 100)], make("starburst", k=1.0))
    assert jobs["jct"].to_dict() == {"A": 100.0, "B": 200.0}
    assert jobs.loc["B", "cloud_start"] == 100.0
    assert s["cloud_cost"] == pytest.approx(1.0)


def test_the_queue_cap_bursts_the_newest_job_at_once():
    # 1x4, cap 1 job queued; k = 10 makes every wait long (B: 10 x 1 x 50 = 500 s).
    # A (0, 4 GPUs, 100 s) runs 0-100.
    # B (1, 1 GPU, 50 s) queues: 1 job queued, within the cap.
    # C (2, 1 GPU, 50 s): 2 queued > 1 -> the last (C) bursts at 2: cloud 2-52, JCT 50.
    # D (3, 2 GPUs, 40 s): again 2 queued -> D bursts at 3: cloud 3-43, JCT 40.
    # B starts when A ends: 100-150, JCT 149.
    # Cloud: 1 x 50 + 2 x 40 = 130 GPU-s -> cost 1.3.
    jobs, s = run([("A", 0, 4, 100), ("B", 1, 1, 50), ("C", 2, 1, 50), ("D", 3, 2, 40)],
                  make("starburst", k=10.0, max_queue_length=1))
    assert jobs["start_time"].to_dict() == {"A": 0.0, "B": 100.0, "C": 2.0, "D": 3.0}
    assert jobs["jct"].to_dict() == {"A": 100.0, "B": 149.0, "C": 50.0, "D": 40.0}
    assert s["cloud_cost"] == pytest.approx(1.3)


@pytest.mark.parametrize("out_of_order, expected_jct, expected_cost", [
    # A (0, 3 GPUs, 100 s) runs 0-100 and leaves 1 GPU free. k = 10:
    # B (1, 4 GPUs, 10 s): w = 10 x 4 x 10 = 400 s; C (2, 1 GPU, 10 s): w = 10 x 1 x 10 = 100 s.
    # Out of order: C overtakes B on the free GPU, 2-12 (JCT 10); B runs 100-110 (JCT 109).
    (True, {"A": 100.0, "B": 109.0, "C": 10.0}, 0.0),
    # In order: C waits behind B. At 100 B starts (100-110, all 4 GPUs); C's timer fires at
    # 2 + 100 = 102: cloud 102-112, JCT 110. Cloud 1 x 10 GPU-s -> cost 0.1.
    (False, {"A": 100.0, "B": 109.0, "C": 110.0}, 0.1),
])
def test_out_of_order_lets_a_small_job_overtake(out_of_order, expected_jct, expected_cost):
    jobs, s = run([("A", 0, 3, 100), ("B", 1, 4, 10), ("C", 2, 1, 10)],
                  make("starburst", k=10.0, out_of_order=out_of_order))
    assert jobs["jct"].to_dict() == expected_jct
    assert s["cloud_cost"] == pytest.approx(expected_cost)


def test_no_estimate_variant_bursts_at_once_and_pulls_long_jobs_back():
    # 1x4, starburst-no-te: w = 0 at first; a job still in the cloud 100 s after bursting comes
    # back with a wait of 3 x k x GPUs hours, k = 0.01 -> 3 x 0.01 x 3600 = 108 s per GPU.
    # A (0, 4 GPUs, 300 s) runs on-prem 0-300.
    # B (10, 2 GPUs, 1000 s): does not fit, bursts at 10. At 110 it has done 100 s: pulled back,
    #   wait 2 x 108 = 216 s (deadline 326). A ends at 300: B restarts on-prem on 2 GPUs with
    #   900 s left -> ends 1200, JCT 1190.
    # C (20, 1 GPU, 50 s): bursts at 20, ends in the cloud at 70 < 120: never pulled back. JCT 50.
    # D (30, 4 GPUs, 2000 s): bursts at 30, pulled back at 130 (100 s done), wait 4 x 108 = 432 s
    #   (deadline 562). At 300 only 2 GPUs are left after B: D does not fit; at 562 it bursts
    #   again, for good: 1900 s left -> ends 2462, JCT 2432.
    # Cloud GPU-s: B 2 x 100 + C 1 x 50 + D (4 x 100 + 4 x 1900) = 200 + 50 + 8000 = 8250
    #   -> cost 82.5.
    jobs, s = run([("A", 0, 4, 300), ("B", 10, 2, 1000), ("C", 20, 1, 50), ("D", 30, 4, 2000)],
                  make("starburst-no-te", k=0.01, pull_back_after=100.0))
    assert jobs["end_time"].to_dict() == {"A": 300.0, "B": 1200.0, "C": 70.0, "D": 2462.0}
    assert jobs["jct"].to_dict() == {"A": 300.0, "B": 1190.0, "C": 50.0, "D": 2432.0}
    assert jobs["preemptions"].to_dict() == {"A": 0, "B": 1, "C": 0, "D": 1}
    assert jobs.loc["D", "cloud_start"] == 562.0
    assert s["cloud_gpu_hours"] == pytest.approx(8250 / 3600)
    assert s["cloud_cost"] == pytest.approx(82.5)


def test_no_wait_baseline_bursts_every_job_that_does_not_fit():
    # No-Wait (waiting="zero", in order, no cap) on 1x4: A (0, 2 GPUs, 100 s) on-prem; B (0, 4 GPUs,
    # 10 s) does not fit -> cloud 0-10; C (5, 2 GPUs, 20 s) fits next to A -> on-prem 5-25.
    # Cloud: 4 x 10 = 40 GPU-s -> cost 0.4. Every JCT equals the run time.
    jobs, s = run([("A", 0, 2, 100), ("B", 0, 4, 10), ("C", 5, 2, 20)],
                  make("starburst", waiting="zero", out_of_order=False, max_queue_length=None))
    assert jobs["jct"].to_dict() == {"A": 100.0, "B": 10.0, "C": 20.0}
    assert jobs.loc["B", "cloud_start"] == 0.0 and np.isnan(jobs.loc["C", "cloud_start"])
    assert s["cloud_cost"] == pytest.approx(0.4)


def test_first_fit_splits_large_jobs_into_full_node_chunks():
    spec = make_cluster("2x4")
    load = np.zeros(8, dtype=np.int64)
    load[0] = 1  # node 0: GPUs 1-3 free; node 1: all 4 free
    node_free = np.array([3, 4])
    place = ChunkedFirstFit().place
    # 6 GPUs = chunk of 4 (first node with 4 free: node 1) + 2 (first other node with 2: node 0).
    assert place(6, node_free, load, spec, 0).tolist() == [4, 5, 6, 7, 1, 2]
    # 2 GPUs fit in one node: the first node in index order with room, node 0.
    assert place(2, node_free, load, spec, 0).tolist() == [1, 2]
    # 6 GPUs are free in total with 3 + 3, but a 5-GPU job needs a full node for its chunk of 4.
    load[4] = 1
    assert place(5, np.array([3, 3]), load, spec, 0) is None


@pytest.mark.parametrize("params, word", [
    ({"waiting": "linear"}, "waiting"),
    ({"k": -1.0}, "'k'"),
    ({"waiting": "zero", "k": 0.5}, "'k'"),
    ({"max_queue_length": -1}, "max_queue_length"),
    ({"max_queue_length": 2.5}, "max_queue_length"),
    ({"out_of_order": "yes"}, "out_of_order"),
    ({"pull_back_after": 0.0}, "pull_back_after"),
    ({"pull_back_ratio": float("nan")}, "pull_back_ratio"),
])
def test_bad_parameters_name_the_parameter(params, word):
    with pytest.raises(ConfigError, match=word):
        make("starburst", **params)


def test_a_cluster_without_cloud_pool_is_refused():
    rows = [{"job_id": "A", "submit_time": 0, "num_gpus": 1, "duration": 10}]
    with pytest.raises(ConfigError, match="cloud pool"):
        Engine(from_records(rows), "1x4").run(make("starburst"))
