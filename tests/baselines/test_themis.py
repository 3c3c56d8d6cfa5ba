"""Themis-inspired finish-time fairness (leases, partial-allocation auction): decisions and JCTs
computed by hand.

Notation: on a 1-GPU cluster with N jobs in the system every 1-GPU job's 1/N share is 1/N GPU,
so T_id = N x duration and rho = (elapsed + remaining) / (N x duration). A bid for the GPU is
worth v = (elapsed + lease + remaining) / (elapsed + remaining) (rate 1 everywhere).
"""

import math

import numpy as np
import pytest

from dlsched_gym.baselines import make
from dlsched_gym.baselines.themis import solve_auction
from dlsched_gym.engine import FINISHED, Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.perf import make_perf
from dlsched_gym.workload import from_records


def _engine(jobs, cluster="1x1-V100", **options):
    rows = [{"job_id": j, "submit_time": s, "num_gpus": g, "duration": d} for j, s, g, d in jobs]
    return Engine(from_records(rows), cluster, timeline_interval=None, **options)


def step_until(jobs, sched, t, cluster="1x1-V100", **options):
    """Run the engine with ``sched`` through the decision point at time ``t``; return it."""
    eng = _engine(jobs, cluster, **options)
    eng.reset(sched)
    while eng.next_decision():
        eng.apply(sched.schedule(eng.view))
        if eng.now >= t:
            return eng
    raise AssertionError(f"the simulation ended before t={t}")


# A runs 0-400 (its lease ends with it at 400); B (200 s) waits from 1; C (100 s) arrives at 400.
# At 400, N = 2: rho_B = (399 + 200) / 400 = 1.4975, rho_C = (0 + 100) / 200 = 0.5 (B is worse);
# bids v_B = (399 + 400 + 200) / 599 = 999/599 = 1.668, v_C = (0 + 400 + 100) / 100 = 5.
WAITER = [("A", 0, 1, 400), ("B", 1, 1, 200), ("C", 400, 1, 100)]


@pytest.mark.parametrize("knob", [0.8, 0.5])
def test_the_job_with_the_worst_finish_time_fairness_gets_the_freed_gpu(simulate, knob):
    # ceil((1 - f) x 2) = 1 bidder: B, the worst rho; it wins the GPU although C values it more.
    # B runs 400-600 (JCT 599), then C 600-700 (JCT 300).
    frame = simulate(WAITER, make("themis", lease_seconds=400, fairness_knob=knob), cluster="1x1-V100")
    assert frame["jct"].to_dict() == {"A": 400.0, "B": 599.0, "C": 300.0}
    sched = make("themis", lease_seconds=400, fairness_knob=knob)
    step_until(WAITER, sched, 400)
    assert sched.participants == [1]
    assert sched.rho[1] == pytest.approx(599 / 400)
    assert sched.rho[2] == pytest.approx(0.5)


def test_with_f_zero_every_job_bids_and_the_auction_maximizes_the_product(simulate):
    # f = 0: both bid; max of v_B or v_C alone (one GPU): log 5 > log 1.668 -> C runs 400-500,
    # then B 500-700 (JCT 699).
    frame = simulate(WAITER, make("themis", lease_seconds=400, fairness_knob=0.0), cluster="1x1-V100")
    assert frame["jct"].to_dict() == {"A": 400.0, "B": 699.0, "C": 100.0}
    sched = make("themis", lease_seconds=400, fairness_knob=0.0)
    step_until(WAITER, sched, 400)
    assert sched.participants == [1, 2]  # worst rho first
    # Hidden payment: without C the auction gives B v_B, so C keeps the fraction
    # c_C = 1 / v_B = 599/999 of its lease: it ends at 400 + 400 x 599/999 = 639.84 (not 800).
    assert sched.lease_end[2] == pytest.approx(400 + 400 * 599 / 999)
    # Without the hidden payment C holds the GPU to the next boundary.
    plain = make("themis", lease_seconds=400, fairness_knob=0.0, partial_allocation=False)
    step_until(WAITER, plain, 400)
    assert plain.lease_end[2] == 800.0


def test_with_f_zero_all_jobs_in_the_system_take_part():
    # Three jobs arrive together on one GPU: all three bid (f = 0); with the default f = 0.8
    # only ceil(0.2 x 3) = 1 does. rho = d / (3 d) = 1/3 each: ties go to the lower index.
    jobs = [("A", 0, 1, 100), ("B", 0, 1, 200), ("C", 0, 1, 300)]
    every = make("themis", fairness_knob=0.0)
    step_until(jobs, every, 0)
    assert every.participants == [0, 1, 2]
    one = make("themis")
    step_until(jobs, one, 0)
    assert one.participants == [0]


@pytest.mark.parametrize("lease, expected, preemptions", [
    (100, {"A": 500.0, "B": 590.0}, {"A": 2, "B": 2}),
    (1000, {"A": 300.0, "B": 590.0}, {"A": 0, "B": 0}),
])
def test_lease_expiry_returns_the_gpus_to_the_auction(simulate, lease, expected, preemptions):
    # Lease 100, N = 2 from t = 10, T_id = 600 for both; at each boundary the worse rho wins:
    # 100: A (100 + 200)/600 = 0.5    < B (90 + 300)/600 = 0.65  -> B (A preempted)
    # 200: A (200 + 200)/600 = 0.667  > B (190 + 200)/600 = 0.65 -> A
    # 300: A (300 + 100)/600 = 0.667  < B (290 + 200)/600 = 0.817 -> B
    # 400: A (400 + 100)/600 = 0.833  > B (390 + 100)/600 = 0.817 -> A, done at 500; B 500-600.
    # Lease 1000: nobody's lease expires before A ends at 300; B runs 300-600.
    frame = simulate([("A", 0, 1, 300), ("B", 10, 1, 300)], make("themis", lease_seconds=lease),
                     cluster="1x1-V100")
    assert frame["jct"].to_dict() == expected
    assert frame["preemptions"].to_dict() == preemptions


def test_finish_time_fairness_order_differs_from_least_attained_service():
    # Lease 100. t=0: rho_A = 300/600 = rho_B = 250/500 = 0.5, tie -> A (lower index).
    # t=100: rho_A = (100 + 200)/600 = 0.5 < rho_B = (100 + 250)/500 = 0.7 -> B; A preempted.
    # t=200 (C arrived at 150, N = 3): rho_A = (200 + 200)/900 = 0.444,
    # rho_B = (200 + 150)/750 = 0.467, rho_C = (50 + 300)/900 = 0.389. The one bidder is B,
    # which keeps the GPU; LAS would run C, the only job without attained service.
    jobs = [("A", 0, 1, 300), ("B", 0, 1, 250), ("C", 150, 1, 300)]
    sched = make("themis", lease_seconds=100)
    eng = step_until(jobs, sched, 200)
    assert sched.rho[0] == pytest.approx(400 / 900)
    assert sched.rho[1] == pytest.approx(350 / 750)
    assert sched.rho[2] == pytest.approx(350 / 900)
    assert list(eng.view.running) == [1]
    las_choice = min([0, 1, 2], key=eng.view.attained_service)
    assert [eng.view.attained_service(j) for j in (0, 1, 2)] == [100.0, 100.0, 0.0]
    assert las_choice == 2


# 2 x 2 GPUs, lease 100. t=0: A-D (rho 1 each) take GPUs 0-3 (best fit). B and D end at 250 and
# leave GPUs 1 (node 0) and 3 (node 1). At 250, N = 4 (A, C, P, Q), share 1 GPU:
# rho_P = (245 + 200) / (2 x 200) = 1.1125 (worst), rho_Q = 1010/1000, rho_A = rho_C = 1.0;
# ceil(0.2 x 4) = 1 bidder: P, offered the split pair [1, 3] (best fit will not split it).
SPLIT = [("A", 0, 1, 5000), ("B", 0, 1, 250), ("C", 0, 1, 5000), ("D", 0, 1, 250),
         ("P", 5, 2, 200), ("Q", 240, 1, 1000)]


def test_bids_see_the_locality_penalty_of_a_split_gang():
    pal = make_perf("throughput", gpu_type=False, scaling=False, locality="pal", variability=None,
                    sharing=False)
    sched = make("themis", lease_seconds=100)
    eng = step_until(SPLIT, sched, 250, cluster="2x2-V100", perf=pal)
    # PAL's 1.7x cross-node penalty: done at 245 + 1.7 x 200 = 585, later than waiting a lease
    # (245 + 100 + 200 = 545): v < 1, P declines; Q (v = 1110/1010) takes GPU 1.
    assert sched.participants == [4]
    assert {j: eng.view.allocation(j).tolist() for j in eng.view.running} == {0: [0], 2: [2], 5: [1]}
    # 300: every lease ends; P (worst, rho (295 + 200)/400) gets a whole node at full rate.
    while eng.now < 300:
        assert eng.next_decision()
        eng.apply(sched.schedule(eng.view))
    assert eng.view.allocation(4).tolist() == [0, 1]
    # Without the penalty (duration model) the split pair is worth 545/445 > 1: P runs at 250.
    sched = make("themis", lease_seconds=100)
    eng = step_until(SPLIT, sched, 250, cluster="2x2-V100")
    assert eng.view.allocation(4).tolist() == [1, 3]


def test_solve_auction_by_hand():
    # Capacity 2; bidders worth log 2, log 3 (1 GPU each) and log 5 (2 GPUs): 2 x 3 = 6 > 5.
    opts = [[(1, math.log(2))], [(1, math.log(3))], [(2, math.log(5))]]
    choice, total = solve_auction(opts, 2)
    assert choice == [0, 0, -1]
    assert total == pytest.approx(math.log(6))
    # Exhaustive: 1.9 (2 GPUs) beats 1.0 (1 GPU). Greedy (limit 1): gain per GPU 1.0 > 0.95 takes
    # the first bidder, and the second no longer fits.
    opts = [[(1, 1.0)], [(2, 1.9)]]
    assert solve_auction(opts, 2) == ([-1, 0], 1.9)
    assert solve_auction(opts, 2, exhaustive_limit=1) == ([0, -1], 1.0)
    # An elastic bidder upgrades from 1 to 2 GPUs when the extra GPU is worth it.
    assert solve_auction([[(1, 1.0), (2, 1.5)]], 2, exhaustive_limit=1) == ([1], 1.5)


@pytest.mark.parametrize("param, bad", [("lease_seconds", 0), ("lease_seconds", "x"),
                                        ("fairness_knob", 1.5), ("fairness_knob", -0.1),
                                        ("fairness_knob", "x"), ("exhaustive_limit", 0),
                                        ("exhaustive_limit", 2.5), ("partial_allocation", "yes")])
def test_bad_parameters(param, bad):
    with pytest.raises(ConfigError, match=param):
        make("themis", **{param: bad})


@pytest.mark.parametrize("seed, predictor", [(0, "oracle"), (1, "noisy"), (2, "history")])
def test_runs_a_random_workload_to_the_end(seed, predictor):
    rng = np.random.default_rng(seed)
    rows, t = [], 0.0
    for i in range(80):
        t += float(rng.exponential(40.0))
        g = int(rng.choice([1, 1, 2, 4, 8]))
        elastic = rng.random() < 0.3
        rows.append({"job_id": f"j{i}", "submit_time": round(t), "num_gpus": g,
                     "duration": round(float(np.exp(rng.normal(5.0, 1.2)))) + 1,
                     "min_gpus": 1 if elastic else g, "max_gpus": 8 if elastic else g})
    eng = Engine(from_records(rows), "2x4-V100", predictor=predictor, restart_overhead=5.0,
                 perf="throughput", timeline_interval=None)
    res = eng.run(make("themis", lease_seconds=120, exhaustive_limit=64))
    assert (res.state == FINISHED).all()
    assert not res.stalled
