"""PCS (WFQ over size classes, JCT predictions by forward simulation): values computed by hand.

Unless stated otherwise: one 4-GPU node, the ``duration`` perf model (a job on its requested GPUs
runs at rate 1; an elastic job on n GPUs at n / requested), the oracle predictor, and two classes
split at 100 1-GPU seconds (size = duration x GPUs). ``weight_decay = ln 3`` gives weights
1 / (1 + 1/3) = 3/4 and 1/4: alone against each other, class 0 gets 3 GPUs and class 1 gets 1.
"""

import math

import numpy as np
import pytest

from dlsched_gym.baselines import make
from dlsched_gym.baselines.pcs import size_thresholds, water_fill
from dlsched_gym.engine import Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.metrics import summarize
from dlsched_gym.workload import from_records

W3 = math.log(3.0)


def pcs(**params):
    return make("pcs", thresholds=(100.0,), weight_decay=params.pop("weight_decay", W3), **params)


# L1-L3: 1 GPU, 400 s at 0 (size 400: class 1); S1-S3: 1 GPU at 10 (sizes 50, 50, 60: class 0).
CAPPED = [("L1", 0, 1, 400), ("L2", 0, 1, 400), ("L3", 0, 1, 400),
          ("S1", 10, 1, 50), ("S2", 10, 1, 50), ("S3", 10, 1, 60)]


def test_class_cap_preempts_the_large_class(simulate):
    frame = simulate(CAPPED, pcs())
    # 0: class 1 alone, demand 3 <= 4: L1, L2, L3 run.
    # 10: demands 3 (class 0) and 3 (class 1). Water-filling: class 0 min(3/4 x 4, 3) = 3,
    #     class 1 min(1/4 x 4, 3) = 1, nothing left. Class 1 keeps its first job, L1; L2 and L3
    #     are preempted after 10 s (390 s left each). S1, S2, S3 run from 10.
    # 60: S1, S2 end. Class 0 demand 1 (S3): class 0 gets 1, class 1 gets 1 then the 2 left:
    #     3 = its demand. L2, L3 resume: end 60 + 390 = 450. S3 ends 70, L1 at 400.
    assert frame["jct"].to_dict() == {"L1": 400.0, "L2": 450.0, "L3": 450.0,
                                      "S1": 50.0, "S2": 50.0, "S3": 60.0}
    assert frame["preemptions"].to_dict() == {"L1": 0, "L2": 1, "L3": 1, "S1": 0, "S2": 0, "S3": 0}


def test_predictions_exact_without_later_arrivals():
    rows = [{"job_id": j, "submit_time": t, "num_gpus": g, "duration": d} for j, t, g, d in CAPPED]
    res = Engine(from_records(rows), "1x4", timeline_interval=None).run(pcs())
    jobs = res.jobs_frame().set_index("job_id")
    # At 0 nobody else will come as far as the forward simulation knows: L1-L3 run 0-400,
    # predicted JCT 400 each. At 10 the S jobs arrive and no one after them: their predictions
    # 50, 50, 60 are exact (first test). L2 and L3 actually take 450 (preempted by the S jobs).
    assert jobs["predicted_jct"].to_dict() == {"L1": 400.0, "L2": 400.0, "L3": 400.0,
                                               "S1": 50.0, "S2": 50.0, "S3": 60.0}
    s = summarize(res)
    # Errors |pred - JCT| / JCT: 0, 50/450, 50/450, 0, 0, 0. Mean = (100/450) / 6 = 1/27.
    assert s["jct_prediction_mape"] == pytest.approx(1 / 27)
    # Within 10 %: 4 of 6 (50/450 = 11.1 % misses).
    assert s["jct_prediction_within_10pct"] == pytest.approx(4 / 6)


def test_predict_off_annotates_nothing(simulate):
    frame = simulate(CAPPED, pcs(predict=False))
    assert "predicted_jct" not in frame.columns
    assert frame["jct"].to_dict()["L2"] == 450.0  # same schedule as with predictions


def test_water_filling_gives_what_a_class_leaves_to_the_others(simulate):
    jobs = CAPPED[:5]  # L1-L3 and S1, S2
    frame = simulate(jobs, pcs())
    # 10: demands 2 (class 0) and 3 (class 1). Round 1: class 0 min(3, 2) = 2, class 1
    #     min(1, 3) = 1; 1 GPU left. Round 2: class 1 alone: +min(1, 2) = 1 -> 2 GPUs.
    #     Class 1 keeps L1, L2 (FIFO); L3 preempted after 10 s (390 left).
    # 60: S1, S2 end; class 1 gets 3 GPUs: L3 resumes, ends 450. L1, L2 end at 400.
    assert frame["jct"].to_dict() == {"L1": 400.0, "L2": 400.0, "L3": 450.0, "S1": 50.0, "S2": 50.0}
    assert frame["preemptions"].to_dict()["L3"] == 1


def test_rigid_job_above_its_class_share_is_preempted(simulate):
    # B: 4 GPUs, 100 s at 0 (size 400, class 1); S: 2 GPUs, 20 s at 10 (size 40, class 0).
    frame = simulate([("B", 0, 4, 100), ("S", 10, 2, 20)], pcs())
    # 10: class 0 gets min(3, 2) = 2, class 1 1 + the 1 left = 2 < 4: B cannot run (rigid),
    #     and 4 - 2 = 2 leftover GPUs are not enough either. B preempted with 90 s left.
    # S 10-30; B resumes at 30, ends 120.
    assert frame["jct"].to_dict() == {"B": 120.0, "S": 20.0}
    assert frame["preemptions"].to_dict() == {"B": 1, "S": 0}


def test_strict_fifo_within_a_class(simulate):
    # A, B: 2 GPUs, 100 s at 0 (size 200, class 1); Q: 1 GPU, 30 s at 0 (size 30, class 0).
    frame = simulate([("A", 0, 2, 100), ("B", 0, 2, 100), ("Q", 0, 1, 30)], pcs())
    # 0: class 0 min(3, 1) = 1; class 1 min(1, 4) = 1, then +min(2, 3) = 2 -> 3 GPUs.
    #    Class 1 in FIFO order: A (2) fits its 3, B (2) does not fit the 1 left: B waits
    #    (the leftover GPU, 4 - 1 - 2 = 1, is too small for B too).
    # 30: Q ends; class 1 gets all 4: B runs 30-130. A ends 100.
    assert frame["jct"].to_dict() == {"A": 100.0, "B": 130.0, "Q": 30.0}
    assert frame["start_time"].to_dict() == {"A": 0.0, "B": 30.0, "Q": 0.0}


def test_rounding_leftover_goes_in_submission_order(simulate):
    # weight_decay ln(5/3): weights 1 / 1.6 = 5/8 and 3/8 -> shares 2.5 and 1.5 of 4 GPUs.
    jobs = [("L1", 0, 1, 500), ("L2", 0, 1, 500),
            ("S1", 0, 1, 50), ("S2", 0, 1, 50), ("S3", 0, 1, 50)]
    frame = simulate(jobs, pcs(weight_decay=math.log(5 / 3)))
    # 0: demands 3 (class 0) and 2 (class 1): shares 2.5 and 1.5, rounded down to 2 and 1:
    #    S1, S2 and L1. One GPU left over goes to the earliest unselected job: L2 (row 1)
    #    before S3 (row 4).
    # 50: S1, S2 end; class 0 demand 1: S3 runs 50-100. L1, L2 end at 500.
    assert frame["jct"].to_dict() == {"L1": 500.0, "L2": 500.0, "S1": 50.0, "S2": 50.0, "S3": 100.0}


def test_elastic_job_shrinks_to_its_class_share_and_grows_back():
    # E: elastic 1..4 GPUs, 2 requested, 100 s at 2 GPUs (size 200, class 1).
    # R: rigid 2 GPUs, 20 s at 10 (size 40, class 0).
    rows = [{"job_id": "E", "submit_time": 0, "num_gpus": 2, "duration": 100, "min_gpus": 1,
             "max_gpus": 4},
            {"job_id": "R", "submit_time": 10, "num_gpus": 2, "duration": 20, "min_gpus": 2,
             "max_gpus": 2}]
    res = Engine(from_records(rows), "1x4", timeline_interval=None).run(pcs())
    jobs = res.jobs_frame().set_index("job_id")
    # 0: E alone: linear speed-up (efficiency 1 >= zeta_min) up to its max, 4 GPUs, rate 2.
    #    Predicted: 100 units / 2 = 50 s.
    # 10: 20 units done. Class 0 (R) gets 2, class 1 1 + 1 left = 2: E shrinks to 2 GPUs
    #     (rate 1). R runs 10-30 (predicted 20, exact).
    # 30: E has 20 + 20 = 40 done; grows back to 4 GPUs: 60 / 2 = 30 s -> ends at 60.
    assert jobs["jct"].to_dict() == {"E": 60.0, "R": 20.0}
    assert jobs["predicted_jct"].to_dict() == {"E": 50.0, "R": 20.0}
    assert jobs["preemptions"].to_dict() == {"E": 0, "R": 0}


def test_one_class_is_fifo_with_backfill(simulate):
    # thresholds () -> a single class (the fifo-backfill baseline's test case).
    jobs = [("A", 0, 2, 100), ("B", 1, 4, 10), ("C", 2, 2, 10)]
    frame = simulate(jobs, make("pcs", thresholds=()))
    # 2: A holds 2 GPUs; B (4) does not fit the 2 left and stops the class; the 2 leftover GPUs
    #    go to the next unselected job in submission order: C (2) runs 2-12.
    # 100: A ends, B runs 100-110.
    assert frame["jct"].to_dict() == {"A": 100.0, "B": 109.0, "C": 10.0}


def test_size_thresholds_cv2_rule():
    # Sizes 1, 1, 1 have C^2 = 0. Adding 10: mean 13/4 = 3.25, E[s^2] = 103/4 = 25.75,
    # variance 25.75 - 10.5625 = 15.1875, C^2 = 15.1875 / 10.5625 = 1.44 > 0.5: close at 1.
    # 10, 10, 10 then have C^2 = 0: one more, unbounded class.
    assert size_thresholds([10, 1, 10, 1, 1, 10], 0.5) == (1.0,)
    # With C^2 <= 2 allowed, 1.44 does not close the group; all sizes form one class.
    assert size_thresholds([10, 1, 10, 1, 1, 10], 2.0) == ()


def test_water_fill_hand_values():
    # Weights 3/4, 1/4 over 4 GPUs; demands 1 and 10: class 0 takes 1 (its demand), class 1
    # 1 + the 2 left = 3.
    assert water_fill([1.0, 10.0], [0.75, 0.25], 4.0) == pytest.approx([1.0, 3.0])
    # An empty class gets nothing; the others split by weight: 3 and 1.
    assert water_fill([8.0, 0.0, 8.0], [0.6, 0.3, 0.2], 4.0) == pytest.approx([3.0, 0.0, 1.0])


@pytest.mark.parametrize("params", [
    {"thresholds": (100.0, 50.0)}, {"thresholds": (-1.0,)}, {"thresholds": "abc"},
    {"weight_decay": float("nan")}, {"weight_decay": 800.0}, {"zeta_min": 1.5}, {"delta": 0.0},
    {"predict": "yes"},
])
def test_bad_parameters(params):
    with pytest.raises(ConfigError):
        make("pcs", **params)


def test_default_weights_match_the_published_configuration():
    # W = 3: exp(0), exp(-3), exp(-6) normalized = .950, .047, .0024 (published .95/.048/.002).
    w = make("pcs").weights
    assert np.round(w, 3).tolist() == [0.950, 0.047, 0.002]


def test_gpus_a_selected_job_cannot_use_go_to_the_next(simulate):
    # Two 4-GPU nodes, one class (share 8). A, B: 3 GPUs, 100 s; C: 2 GPUs, 50 s; D: 1 GPU,
    # 30 s; all at 0.
    jobs = [("A", 0, 3, 100), ("B", 0, 3, 100), ("C", 0, 2, 50), ("D", 0, 1, 30)]
    frame = simulate(jobs, make("pcs", thresholds=()), cluster="2x4")
    # 0: FIFO within the share of 8: A (3), B (3), C (2); D does not fit the 0 left. Best fit
    #    puts A on node 0 and B on node 1; C's 2 GPUs would span the two nodes' 1 + 1 free GPUs,
    #    which consolidated placement refuses. C waits; D takes one of the idle GPUs: 0-30.
    # 30: C still cannot be placed. 100: A, B end; C runs 100-150.
    assert frame["jct"].to_dict() == {"A": 100.0, "B": 100.0, "C": 150.0, "D": 30.0}


@pytest.mark.parametrize("seed", range(5))
def test_random_workloads_finish_and_last_arrivals_are_predicted_exactly(seed):
    # Mixed rigid and elastic jobs on two 4-GPU nodes, three classes. Whatever happens, every job
    # finishes, and the jobs submitted last (no arrival after them) get an exact prediction.
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(12):
        g = int(rng.choice([1, 2, 4, 8]))
        lo = int(rng.integers(1, g + 1)) if rng.random() < 0.3 else g
        rows.append({"job_id": f"j{i}", "submit_time": float(rng.integers(0, 200)), "num_gpus": g,
                     "duration": float(rng.integers(10, 300)), "min_gpus": lo, "max_gpus": g})
    res = Engine(from_records(rows), "2x4", timeline_interval=None).run(
        make("pcs", thresholds=(100.0, 1000.0), weight_decay=1.0))
    jobs = res.jobs_frame()
    assert (jobs["state"] == "finished").all()
    last = jobs["submit_time"] == jobs["submit_time"].max()
    assert jobs.loc[last, "predicted_jct"].to_numpy() == pytest.approx(jobs.loc[last, "jct"].to_numpy())


def test_elastic_class_head_starts_on_what_can_be_placed(simulate):
    # Two 4-GPU nodes, one class (share 8), duration model. B1, B2: rigid 3 GPUs, 1000 s at 0;
    # E: elastic 1..2 GPUs, 100 s on 2, at 10; S: rigid 1 GPU, 50 s at 20.
    rigid = [{"min_gpus": g, "max_gpus": g} for g in (3, 1)]
    jobs = [("B1", 0, 3, 1000, rigid[0]), ("B2", 0, 3, 1000, rigid[0]),
            ("E", 10, 2, 100, {"min_gpus": 1, "max_gpus": 2}), ("S", 20, 1, 50, rigid[1])]
    frame = simulate(jobs, make("pcs", thresholds=()), cluster="2x4")
    # 0: B1 on node 0, B2 on node 1: one GPU free on each.
    # 10: FIFO selects E with 2 GPUs; 2 GPUs in one node are not free, so E starts on 1
    #     (rate 1/2) instead of waiting for a node (which let S, behind it, take the GPU).
    # 20: S arrives; E is selected first and grows to 2 GPUs (rate 1, 5 s of work done, 95
    #     left): ends 115. S gets the GPUs left: none; it runs 115-165.
    assert frame["jct"].to_dict() == {"B1": 1000.0, "B2": 1000.0, "E": 105.0, "S": 145.0}
    assert frame["start_time"].to_dict()["E"] == 10.0


def test_no_grow_onto_a_slower_allocation():
    from dlsched_gym.perf import make_perf

    # Two 4-GPU nodes; rate = GPUs / request, / 1.7 when the gang spans nodes (PAL's penalty).
    # At 0, in submission order: L rigid 1 GPU, 1000 s; K rigid 4 GPUs, 100 s; E elastic 1..4,
    # 400 s on 4.
    rows = [{"job_id": "L", "submit_time": 0, "num_gpus": 1, "duration": 1000, "min_gpus": 1,
             "max_gpus": 1},
            {"job_id": "K", "submit_time": 0, "num_gpus": 4, "duration": 100, "min_gpus": 4,
             "max_gpus": 4},
            {"job_id": "E", "submit_time": 0, "num_gpus": 4, "duration": 400, "min_gpus": 1,
             "max_gpus": 4}]
    perf = make_perf("throughput", gpu_type=False, scaling=False, locality="pal",
                     variability=None, sharing=False)
    res = Engine(from_records(rows), "2x4", perf=perf, timeline_interval=None).run(
        make("pcs", thresholds=()))
    jobs = res.jobs_frame().set_index("job_id")
    # 0: one class, share 8: L 1, K 4, E the 3 left. L on node 0, K on node 1, E on node 0's
    #    other 3 GPUs: rate 3/4.
    # 100: K ends; E's target is 4, but its 4th GPU would be on node 1: rate 4/4 / 1.7 = 0.588
    #      < 0.75, so E stays on 3 GPUs: 75 done, 325 left at 3/4 -> ends at 100 + 433.33.
    #      (Growing anyway would end at 100 + 325 x 1.7 = 652.5.)
    assert jobs["jct"].to_dict() == pytest.approx({"L": 1000.0, "K": 100.0, "E": 100 + 325 / 0.75})
