"""Gavel (max-min fairness / LAS in 360 s rounds; agnostic and heterogeneity-aware): allocations
and JCTs computed by hand."""

import numpy as np
import pytest

from dlsched_gym.baselines import make
from dlsched_gym.baselines.gavel import max_min_allocation
from dlsched_gym.cluster import ClusterSpec, Node
from dlsched_gym.engine import FINISHED, Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.perf import make_perf, type_ratio
from dlsched_gym.scheduler import Start
from dlsched_gym.workload import from_records

ONE_V100_ONE_K80 = ClusterSpec(nodes=(Node(gpus=1, gpu_type="V100"), Node(gpus=1, gpu_type="K80")),
                               name="1xV100+1xK80")
# Two ResNet-50 jobs (V100/K80 ratio about 7.2) and two Recommendation jobs (about 1.05).
MIXED = [("A1", "ResNet-50", 64), ("A2", "ResNet-50", 64),
         ("B1", "Recommendation", 2048), ("B2", "Recommendation", 2048)]


def first_round(name):
    rows = [{"job_id": j, "submit_time": 0, "num_gpus": 1, "duration": 1e5, "model": m,
             "batch_size": b} for j, m, b in MIXED]
    perf = make_perf("throughput", variability=None, locality=None, sharing=False, scaling=False)
    eng = Engine(from_records(rows), ONE_V100_ONE_K80, perf=perf, timeline_interval=None)
    sched = make(name)
    eng.reset(sched)
    assert eng.next_decision()
    return sched, sched.schedule(eng.view)


def test_gavel_perf_gives_the_v100_to_the_jobs_with_the_larger_v100_k80_ratio():
    sched, ops = first_round("gavel_perf")
    x = sched.allocation
    ka, kb = type_ratio("ResNet-50", "K80"), type_ratio("Recommendation", "K80")  # ~0.139, ~0.950
    # Throughputs relative to V100: A (1, ka) on (V100, K80), B (1, kb). Proportional share
    # (1 V100 of 2 GPUs, 1 K80 of 2): P_A = (1 + ka) / 2, P_B = (1 + kb) / 2.
    # Max-min of f_j = (X_jV + k_j X_jK) / P_j with 4 jobs on 2 GPUs: A (K80 worth little to it)
    # gets no K80 time; the Bs get all of the K80 and v each of the V100:
    #   f_A = (1/2 - v) / P_A = f_B = (v + kb/2) / P_B  =>  v = (P_B - kb P_A) / (2 (P_A + P_B)).
    pa, pb = (1 + ka) / 2, (1 + kb) / 2
    v = (pb - kb * pa) / (2 * (pa + pb))  # ~0.1405: each A gets ~0.3595 of the V100
    for j in (0, 1):
        assert x[j]["K80"] == 0.0
        assert x[j]["V100"] == pytest.approx(0.5 - v, abs=1e-5)
    assert x[2]["V100"] + x[3]["V100"] == pytest.approx(2 * v, abs=1e-5)
    assert x[2]["K80"] + x[3]["K80"] == pytest.approx(1.0, abs=1e-5)
    # Round 1: V100 first (fastest type), priority X * 1e9: A1 (tie with A2, lower index);
    # then the K80: A2 has X = 0 there, so a B job.
    assert type(ops[0]) is Start and ops[0].job == 0 and list(ops[0].gpus) == [0]
    assert ops[1].job in (2, 3) and list(ops[1].gpus) == [1]


def test_gavel_agnostic_equalizes_time_whatever_the_type():
    sched, ops = first_round("gavel")
    # Throughput 1 everywhere: max-min of the time fractions, 4 jobs on 2 GPUs -> 1/2 each,
    # split over the types in whatever way the LP returns.
    for j in range(4):
        assert sum(sched.allocation[j].values()) == pytest.approx(0.5, abs=1e-5)
    assert len(ops) == 2


@pytest.mark.parametrize("duration, expected", [(720, {"A": 1080.0, "B": 1440.0}),
                                                (600, {"A": 960.0, "B": 1320.0})])
def test_gavel_rounds_share_one_gpu_fairly(simulate, duration, expected):
    frame = simulate([("A", 0, 1, duration), ("B", 0, 1, duration)], make("gavel"), cluster="1x1-V100")
    # X = 1/2 each. Round 0: both unserved, priority 0.5e9, tie -> A (lower index).
    # 360: A ran 1 of 1 rounds: 0.5 / 1 = 0.5; B unserved: 0.5e9 -> B, A preempted.
    # 720: both ran 1 of 2 rounds: 0.5 / 0.5 = 1, tie -> A.
    # duration 720: A ends at 1080 with the round; B runs 1080-1440.
    # duration 600: A ends at 720 + 240 = 960; the GPU idles until the round at 1080; B ends 1320.
    assert frame["jct"].to_dict() == expected
    assert frame["preemptions"].to_dict() == {"A": 1, "B": 1}


def test_gavel_weights_time_by_gpu_count(simulate):
    jobs = [("A", 0, 2, 1080), ("B", 0, 1, 360), ("C", 100, 1, 360)]
    frame = simulate(jobs, make("gavel"), cluster="1x2-V100")
    # 0: max min(2 x_A, x_B) s.t. 2 x_A + x_B <= 2, x <= 1: min = 1 (x_B = 1 caps it); the
    # second LP fills the GPUs: x_A = 1/2. Priorities 0.5e9 (A) < 1e9 (B): B runs; A (2 GPUs)
    # no longer fits the 1 GPU left. C arrives at 100 and waits for the round.
    # 360: B done; {A, C}: x_C = 1, x_A = 1/2 -> C runs 360-720 (JCT 620); A runs 720-1800.
    assert frame["jct"].to_dict() == {"A": 1800.0, "B": 360.0, "C": 620.0}
    assert frame["start_time"].to_dict() == {"A": 720.0, "B": 0.0, "C": 360.0}


def test_max_min_allocation_by_hand():
    # One 2-GPU type; jobs of 1 and 2 GPUs with coefficient s_j: max min(x0, 2 x1) with
    # x0 + 2 x1 <= 2 -> x0 = 1 (capped), then the rest to job 1: x1 = 1/2.
    x = max_min_allocation(np.array([[1.0], [2.0]]), np.array([1.0, 2.0]), np.array([2.0]))
    assert x.tolist() == [[1.0], [0.5]]
    # A job that cannot use any type gets nothing and does not hold the others back.
    x = max_min_allocation(np.array([[1.0], [0.0]]), np.array([1.0, 1.0]), np.array([1.0]))
    assert x.tolist() == [[1.0], [0.0]]


@pytest.mark.parametrize("name", ["gavel", "gavel_perf"])
@pytest.mark.parametrize("bad", [0, -360, float("nan"), "x"])
def test_gavel_bad_round(name, bad):
    with pytest.raises(ConfigError, match="round_seconds"):
        make(name, round_seconds=bad)


@pytest.mark.parametrize("name", ["gavel", "gavel_perf"])
def test_gavel_runs_a_random_heterogeneous_workload_to_the_end(name):
    rng = np.random.default_rng(3)
    models = [m for _, m, _ in MIXED] + ["Transformer", "A3C"]
    rows, t = [], 0.0
    for i in range(60):
        t += float(rng.exponential(200.0))
        rows.append({"job_id": f"j{i}", "submit_time": round(t), "num_gpus": int(rng.choice([1, 1, 2, 4])),
                     "duration": float(np.exp(rng.normal(7.0, 1.0))), "model": models[i % len(models)],
                     "batch_size": 64})
    spec = ClusterSpec(nodes=tuple(Node(gpus=4, gpu_type=t) for t in ("V100", "P100", "K80")),
                       name="3x4-mixed")
    perf = make_perf("throughput", variability=None)
    res = Engine(from_records(rows), spec, perf=perf, restart_overhead=10.0,
                 timeline_interval=None).run(make(name))
    assert (res.state == FINISHED).all()
