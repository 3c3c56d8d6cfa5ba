"""ElasticFlow: minimum satisfactory shares, admission control, leftover GPUs, buddy placement.
Expected values computed by hand (arithmetic in the comments)."""

import math

import numpy as np
import pytest

from dlsched_gym.baselines import make
from dlsched_gym.baselines.elasticflow import BuddyPlacement, job_levels, plan_mss
from dlsched_gym.cluster import make_cluster
from dlsched_gym.errors import ConfigError

NAN = math.nan

# Under the default "duration" perf model a 4-GPU job runs at n/4 on n GPUs:
# levels [1, 2, 4], rates [0.25, 0.5, 1.0] work units (s at 4 GPUs) per second.
LEVELS, RATES = [1, 2, 4], [0.25, 0.5, 1.0]


def test_mss_on_an_empty_timeline():
    # 600 work units due in 700 s = 11.67 slots of 60 s (slots 0..10 full, slot 11 40 s).
    # Level 1: 0.25 x 700 = 175 < 600; level 2: 350 < 600; level 4: 700 >= 600 -> MSS = 4.
    # Point: latest slot k with 40 + (11 - k) x 60 >= 600 at level 4 -> 11 - k >= 9.33 -> k = 1.
    # Forward: slot 0 at the level below (2): 30; slots 1.. at 4 GPUs: 570 more needs 9.5 slots
    # -> the plan ends in slot 10.
    ok, alloc = plan_mss(np.full(20, 4), LEVELS, RATES, 600.0, 700 / 60, 60.0)
    assert ok
    assert alloc.tolist() == [2] + [4] * 10 + [0] * 9


def test_mss_around_reservations():
    # Free: 2 GPUs in slot 0, none in slots 1-10, 4 from slot 11; 200 work units due in
    # 990 s = 16.5 slots (slot 16 is 30 s).
    # Level 1: slot 0 15 + slots 11-15 5 x 15 + slot 16 7.5 = 97.5 < 200.
    # Level 2: 30 + 5 x 30 + 15 = 195 < 200. Level 4 (2 GPUs in slot 0): 30 + 300 + 30 = 360 -> MSS 4.
    # Point (level 4 from the end): 30, 90, 150, 210 >= 200 at slot 13.
    # Forward: slot 0 at 2 GPUs (30), slots 11-12 at 2 (60; 90 in all), slot 13 at 4 (150),
    # slot 14 at 4 (210 >= 200): ends in slot 14.
    free = np.array([2] + [0] * 10 + [4] * 9)
    ok, alloc = plan_mss(free, LEVELS, RATES, 200.0, 990 / 60, 60.0)
    assert ok
    assert alloc.tolist() == [2] + [0] * 10 + [2, 2, 4, 4] + [0] * 5


def test_mss_infeasible_gives_best_effort_plan():
    # 200 units due in 120 s: even 4 GPUs do only 120 -> not met. Best effort: 4 GPUs per slot
    # until 200 are done: 60, 120, 180, 240 -> slots 0-3.
    ok, alloc = plan_mss(np.full(6, 4), LEVELS, RATES, 200.0, 2.0, 60.0)
    assert not ok
    assert alloc.tolist() == [4, 4, 4, 4, 0, 0]


def test_levels():
    assert job_levels(1, 64, 16) == [1, 2, 4, 8, 16]
    assert job_levels(3, 6, 16) == [4]
    assert job_levels(3, 3, 16) == [3]


# A (4 GPUs, 600 s, deadline 700) at 0; B (4 GPUs, 200 s, deadline 300) at 10; both elastic 1-4.
AC = [
    ("A", 0, 4, 600, {"deadline": 700.0, "min_gpus": 1, "max_gpus": 4}),
    ("B", 10, 4, 200, {"deadline": 300.0, "min_gpus": 1, "max_gpus": 4}),
]


def test_admission_control_rejects_a_job_that_cannot_meet_its_deadline(simulate):
    frame = simulate(AC, make("elasticflow"))
    # 0: A's plan is 2 GPUs in slot 0 then 4; the 2 leftover GPUs take A to 4.
    # 10: A (rem 590, 690 s left) reserves 2 GPUs in slot 0 and 4 in slots 1-10; B (200 units
    # due in 290 s) gets at most 2 GPUs in slot 0 and none later: 0.5 x 60 = 30 < 200 -> rejected.
    # A keeps 4 GPUs and ends at 600.
    assert frame.loc["B", "state"] == "rejected"
    assert frame.loc["A", "end_time"] == 600.0


def test_without_admission_control_the_earlier_deadline_displaces_the_admitted_job(simulate):
    frame = simulate(AC, make("elasticflow-noac"))
    # 10: B first (EDF): MSS 4, point slot 1 (50 + (4 - k) 60 >= 200 -> k = 1): 2 GPUs now;
    #     A cannot meet 700 any more -> best effort on what is left: 2 GPUs. Work at 10: A 10.
    # 60 (wake): B rem 200 - 25 = 175, 240 s left: point 1 again -> 2 GPUs; A 2.
    # 120: B rem 145 in 180 s: point 0 -> 4 GPUs; A (rem 600 - 10 - 55 = 535) gets none.
    # B ends 120 + 145 = 265; A 4 GPUs from 265: 265 + 535 = 800 > 700 (late).
    assert frame["end_time"].to_dict() == {"A": 800.0, "B": 265.0}


def test_elastic_edf(simulate):
    frame = simulate(AC, make("elasticflow-edf"))
    # 10: B (earlier deadline) takes all 4 GPUs, A is preempted with 10 done; B ends 210;
    # A 210 + 590 = 800.
    assert frame["end_time"].to_dict() == {"A": 800.0, "B": 210.0}


class TablePerf:
    """A perf model with a hand-written rate per job and GPU count."""

    name = "table"

    def __init__(self, rates):
        self.rates = rates

    def reset(self, spec, jobs, rng):
        self.ids = list(jobs.job_id)

    def rate(self, job, gpus, sharers):
        return self.rates[self.ids[job]][len(gpus)]


# Best-effort jobs (no deadline) on 1-2 GPUs: X scales well (1.9 on 2 GPUs), Y and Z badly (1.2).
LEFT = [
    ("X", 0, 1, 190, {"min_gpus": 1, "max_gpus": 2}),
    ("Y", 0, 1, 150, {"min_gpus": 1, "max_gpus": 2}),
    ("Z", 0, 1, 120, {"min_gpus": 1, "max_gpus": 2}),
]
PERF = TablePerf({"X": {1: 1.0, 2: 1.9}, "Y": {1: 1.0, 2: 1.2}, "Z": {1: 1.0, 2: 1.2}})


def test_leftover_goes_to_the_larger_marginal_gain(simulate):
    frame = simulate(LEFT, make("elasticflow"), perf=PERF)
    # 0: nothing is reserved; X, Y, Z hold 0 GPUs (score inf) -> 1 each; 1 GPU left.
    # Gain per GPU of 1 -> 2: X 1.9 - 1 = 0.9, Y and Z 0.2 -> X gets 2 GPUs.
    # X: 190 / 1.9 = 100. At 100: Y and Z get 2 GPUs each (rate 1.2).
    # Y: 100 done, 50 / 1.2 = 41.67 -> 141.67; Z: 20 / 1.2 = 16.67 -> 116.67.
    end = frame["end_time"]
    assert end["X"] == pytest.approx(100.0)
    assert end["Y"] == pytest.approx(100 + 50 / 1.2)
    assert end["Z"] == pytest.approx(100 + 20 / 1.2)


def test_leftover_artifact_rule_ranks_by_gpu_time_increase(simulate):
    frame = simulate(LEFT, make("elasticflow", leftover="artifact"), perf=PERF)
    # GPU-time increase per added GPU: X 190 (2/1.9 - 1) = 10, Y 150 (2/1.2 - 1) = 100,
    # Z 120 (2/1.2 - 1) = 80 -> Y gets 2 GPUs. Y: 150 / 1.2 = 125. Z ends 120 (1 GPU).
    # At 120 X (120 done) gets 2: 70 / 1.9 = 36.84 -> 156.84.
    end = frame["end_time"]
    assert end["Y"] == pytest.approx(125.0)
    assert end["Z"] == pytest.approx(120.0)
    assert end["X"] == pytest.approx(120 + 70 / 1.9)


def test_buddy_placement_aligns_blocks():
    spec = make_cluster("2x8-V100")
    buddy = BuddyPlacement()
    load = np.zeros(16, dtype=np.int64)
    load[[0, 3]] = 1  # node 0: GPUs 0 and 3 busy (6 free); node 1 empty
    node_free = np.array([6, 8])
    # 2 GPUs: aligned pairs on node 0 (fewest free GPUs first): (0,1) and (2,3) busy -> (4,5).
    assert buddy.place(2, node_free, load, spec, 0).tolist() == [4, 5]
    # 3 GPUs: a block of 4: (0-3) busy -> (4,5,6).
    assert buddy.place(3, node_free, load, spec, 0).tolist() == [4, 5, 6]
    # 8 GPUs: a whole free node -> node 1.
    assert buddy.place(8, node_free, load, spec, 0).tolist() == list(range(8, 16))
    assert buddy.place(16, node_free, load, spec, 0) is None
    # In place: the 4-block holding GPU 5 is (4-7): free.
    assert BuddyPlacement.near(4, np.array([5]), load, spec).tolist() == [4, 5, 6, 7]


@pytest.mark.parametrize("params", [{"slot_seconds": 0}, {"leftover": "best"},
                                    {"admission_control": 1}])
def test_bad_parameters(params):
    with pytest.raises(ConfigError):
        make("elasticflow", **params)


def test_unequal_nodes_are_refused(simulate):
    with pytest.raises(ConfigError, match="buddy"):
        simulate([("A", 0, 1, 10)], make("elasticflow"), cluster="1x6-V100")
