"""Lucid (ASPLOS'23): profiler, GPU-time order, indolent packing; values computed by hand.

Packing tests use one 1-GPU node with ``gpu_share_limit=2`` and the throughput perf model with
only the sharing factor on (a job alone runs at rate 1; co-located, at its Gavel pair factor).
Sharing scores from the Gavel pair table: ResNet-18 at batch 32 and Transformer at batch 256
score 1 (average co-located speed in [0.85, 0.95)); ResNet-50 at batch 64 scores 2.
"""

import dataclasses
import math

import numpy as np
import pytest

from dlsched_gym.baselines import make
from dlsched_gym.baselines.lucid import sharing_score
from dlsched_gym.cluster import uniform
from dlsched_gym.engine import Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.perf import make_perf, pair_factor
from dlsched_gym.workload import from_records

R18 = {"model": "resnet18", "batch_size": 32}
R50 = {"model": "resnet50", "batch_size": 64}
TRF = {"model": "transformer", "batch_size": 256}


def shared(nodes, gpus):
    return dataclasses.replace(uniform(nodes, gpus), gpu_share_limit=2)


def sharing_perf():
    return make_perf("throughput", gpu_type=False, scaling=False, locality=None, variability=None,
                     sharing=True)


def lucid(**params):
    params.setdefault("profiler_nodes", 0)
    params.setdefault("estimator", "predictor")
    params.setdefault("packing", "always")
    return make("lucid", **params)


def test_scores_from_the_pair_table():
    assert (sharing_score("resnet18", 32), sharing_score("transformer", 256),
            sharing_score("resnet50", 64)) == (1, 1, 2)


def test_packs_an_affine_pair(simulate):
    jobs = [("A", 0, 1, 100, R18), ("B", 10, 1, 100, R18)]
    frame = simulate(jobs, lucid(), cluster=shared(1, 1), perf=sharing_perf())
    # 0: A alone on the GPU. 10: B (score 1 + A's 1 = 2; GPU-time 100 <= 2 x 100) shares A's GPU.
    # Gavel measures ResNet-18@32 with itself at speed 1.0: A ends 100, B ends 110.
    assert pair_factor("resnet18", 32, "resnet18", 32) == 1.0
    assert frame["jct"].to_dict() == {"A": 100.0, "B": 100.0}
    assert frame["start_time"].to_dict() == {"A": 0.0, "B": 10.0}


def test_does_not_pack_an_incompatible_pair(simulate):
    jobs = [("C", 0, 1, 100, R50), ("D", 10, 1, 100, R50)]
    frame = simulate(jobs, lucid(), cluster=shared(1, 1), perf=sharing_perf())
    # Scores 2 + 2 > 2: D waits for C (ends 100), runs 100-200: JCT 190.
    assert frame["jct"].to_dict() == {"C": 100.0, "D": 190.0}


def test_co_located_speed_from_the_pair_factors(simulate):
    jobs = [("T", 0, 1, 100, TRF), ("R", 10, 1, 100, R18)]
    frame = simulate(jobs, lucid(), cluster=shared(1, 1), perf=sharing_perf())
    ft = pair_factor("transformer", 256, "resnet18", 32)  # 0.895511 (Gavel)
    fr = pair_factor("resnet18", 32, "transformer", 256)  # 0.426887 (Gavel)
    # 10: R packs on T's GPU (1 + 1 <= 2). T has 90 s of work left at speed ft: ends
    # 10 + 90 / ft = 110.50. R did (90 / ft) x fr = 42.90 by then and finishes the 57.10 left
    # alone: ends 110.50 + 100 - 42.90 = 167.60.
    t_end = 10 + 90 / ft
    r_end = t_end + 100 - (90 / ft) * fr
    assert frame.loc["T", "end_time"] == pytest.approx(t_end)
    assert frame.loc["R", "end_time"] == pytest.approx(r_end)
    assert (round(t_end, 2), round(r_end, 2)) == (110.50, 167.60)


def test_partner_must_not_be_much_shorter(simulate):
    jobs = [("A", 0, 1, 100, R18), ("B", 10, 1, 300, R18)]
    frame = simulate(jobs, lucid(), cluster=shared(1, 1), perf=sharing_perf())
    # B's GPU-time 300 > 2 x A's 100: not packed; B runs 100-400, JCT 390.
    assert frame["jct"].to_dict() == {"A": 100.0, "B": 390.0}


@pytest.mark.parametrize("threshold, b_jct", [(0.3, 100.0), (0.5, 190.0)])
def test_arrival_rate_switch(simulate, threshold, b_jct):
    jobs = [("A", 0, 1, 100, R18), ("B", 10, 1, 100, R18)]
    sched = lucid(packing="adaptive", pack_threshold=threshold)
    frame = simulate(jobs, sched, cluster=shared(1, 1), perf=sharing_perf())
    # At 10, two submissions in the last 3000 s: forecast 2 x 600 / 3000 = 0.4 per 10 min.
    # 0.4 > 0.3: packing on, B shares A's GPU (JCT 100); 0.4 <= 0.5: off, B waits (100-200).
    assert frame.loc["B", "jct"] == b_jct


def test_profiling_comes_before_main_scheduling(simulate):
    # Two 2-GPU nodes; node 1 is the profiling pool. Jobs of at most 1 x 1 = 1 GPU are profiled
    # for at most 50 s. S (1 GPU, 30 s) and L (1 GPU, 200 s) profile on node 1 from 0; B (2 GPUs)
    # is too big for the profiler and starts at once on node 0 (0-100).
    jobs = [("S", 0, 1, 30), ("L", 0, 1, 200), ("B", 0, 2, 100)]
    sched = lucid(profiler_nodes=1, profile_seconds=50, profile_factor=1, packing="never")
    frame = simulate(jobs, sched, cluster="2x2")
    # S ends inside the profiler at 30 (never enters the main queue). L is stopped at 50 with
    # 150 s left; node 0 is busy with B until 100; L runs there 100-250.
    assert frame["end_time"].to_dict() == {"S": 30.0, "L": 250.0, "B": 100.0}
    assert frame["start_time"].to_dict() == {"S": 0.0, "L": 0.0, "B": 0.0}
    assert frame["preemptions"].to_dict() == {"S": 0, "L": 1, "B": 0}
    # Only jobs entering the main queue get a GPU-time estimate (oracle x GPUs).
    est = frame["estimated_gpu_time"].to_dict()
    assert math.isnan(est["S"]) and est["L"] == 200.0 and est["B"] == 200.0


def test_profiler_is_least_gpu_first_without_backfill(simulate):
    # Profiling pool: node 1 (2 GPUs), cap 2 x 1 = 2 GPUs, T_prof 20 s. P2 (2 GPUs, 10 s) at 0
    # occupies it; at 5 Q2 (2 GPUs, 10 s) and Q1 (1 GPU, 10 s) queue. LGF: Q1 before Q2.
    jobs = [("P2", 0, 2, 10), ("Q2", 5, 2, 10), ("Q1", 5, 1, 10)]
    sched = lucid(profiler_nodes=1, profile_seconds=20, profile_factor=2, packing="never")
    frame = simulate(jobs, sched, cluster="2x2")
    # 10: P2 ends in the profiler. Q1 (1 GPU) starts 10-20; Q2 needs 2, 1 left: waits (LGF is
    # strict). 20: Q1 ends; Q2 runs 20-30. Nothing ever ran on node 0.
    assert frame["end_time"].to_dict() == {"P2": 10.0, "Q2": 30.0, "Q1": 20.0}


def test_orders_by_estimated_gpu_time_with_backfill(simulate):
    # One 2-GPU node, oracle estimates. W (2 GPUs, 50 s) at 0; at 10 X (2 GPUs, 100 s: GPU-time
    # 200), Y (1 GPU, 150 s: 150), Z (1 GPU, 250 s: 250).
    jobs = [("W", 0, 2, 50), ("X", 10, 2, 100), ("Y", 10, 1, 150), ("Z", 10, 1, 250)]
    frame = simulate(jobs, lucid(packing="never"), cluster="1x2", predictor="oracle")
    # 50: order Y (150), X (200), Z (250). Y starts; X needs 2 GPUs, 1 free: skipped; Z
    # backfills: Y 50-200, Z 50-300, X 300-400. (SJF by duration would start X first.)
    assert frame["jct"].to_dict() == {"W": 50.0, "X": 390.0, "Y": 190.0, "Z": 290.0}


def test_learned_estimate_uses_finished_jobs_only(simulate):
    # One 2-GPU node, no profiler, learned estimator. A (user a, 1000 s) and B (user b, 10 s)
    # run at 0; C (user c, 2000 s) takes B's GPU at 10. At 1000 A ends and P (user a, 5 s) and Q
    # (user b, 50 s) arrive, all in the first hour, same VC, size and (no) model.
    jobs = [("A", 0, 1, 1000, {"user": "a"}), ("B", 0, 1, 10, {"user": "b"}),
            ("C", 10, 1, 2000, {"user": "c"}),
            ("P", 1000, 1, 5, {"user": "a"}), ("Q", 1000, 1, 50, {"user": "b"})]
    frame = simulate(jobs, lucid(estimator="learned", packing="never"), cluster="1x2")
    # Before any job finished the estimate is 3600 s: A, B 3600 GPU-s; C (after B finished at
    # 10; fit on B alone: log 10, no effect) 10. At 1000 the fit uses A and B: mu = (ln 1000 +
    # ln 10) / 2 = ln 100; the user effect is the residual sum over (count + 5):
    # a: ln 10 / 6, b: -ln 10 / 6; every other feature sees residuals summing to 0.
    # P = 100 x 10^(1/6) = 146.78, Q = 100 x 10^(-1/6) = 68.13: Q runs first (1000-1050), then
    # P (1050-1055), although P is shorter.
    est = frame["estimated_gpu_time"].to_dict()
    assert est["A"] == est["B"] == pytest.approx(3600.0)
    assert est["C"] == pytest.approx(10.0)
    assert est["P"] == pytest.approx(100 * 10 ** (1 / 6))
    assert est["Q"] == pytest.approx(100 * 10 ** (-1 / 6))
    assert frame["jct"].to_dict() == {"A": 1000.0, "B": 10.0, "C": 2000.0, "P": 55.0, "Q": 50.0}


@pytest.mark.parametrize("params, name", [
    ({"profiler_nodes": -1}, "profiler_nodes"),
    ({"profile_seconds": 0}, "profile_seconds"),
    ({"packing": "sometimes"}, "packing"),
    ({"estimator": "ebm"}, "estimator"),
    ({"max_pack_gpus": 0}, "max_pack_gpus"),
])
def test_bad_parameters(params, name):
    with pytest.raises(ConfigError, match=f"'{name}'"):
        make("lucid", **params)


def test_packing_needs_a_shared_cluster(simulate):
    with pytest.raises(ConfigError, match="'packing'"):
        simulate([("A", 0, 1, 10)], make("lucid", profiler_nodes=0), cluster="1x1")
    with pytest.raises(ConfigError, match="'profiler_nodes'"):
        simulate([("A", 0, 1, 10)], make("lucid", profiler_nodes=1, packing="never"),
                 cluster="1x1")


@pytest.mark.parametrize("seed", [0, 1])
def test_random_workload_runs_to_completion(seed):
    # 60 random jobs on two 4-GPU nodes (one profiles), models from the Gavel mix: every job ends,
    # the engine validates every op (share limit 2, packing only onto exclusive jobs' GPUs).
    rng = np.random.default_rng(seed)
    models = [R18, R50, TRF]
    rows = [{"job_id": f"j{i}", "submit_time": float(t), "duration": float(rng.integers(30, 900)),
             "num_gpus": int(rng.choice([1, 1, 2, 4])), "user": f"u{rng.integers(3)}",
             **models[rng.integers(3)]}
            for i, t in enumerate(np.cumsum(rng.exponential(30.0, 60)).round())]
    eng = Engine(from_records(rows), shared(2, 4), perf=sharing_perf(), timeline_interval=None)
    res = eng.run(make("lucid", profile_seconds=60, pack_threshold=0.0))
    frame = res.jobs_frame()
    assert (frame["state"] == "finished").all()
    assert frame["packed_with"].notna().any()
