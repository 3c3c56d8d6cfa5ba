"""Heet-inspired elastic scheduling on heterogeneous hosts: placements, trades, resizes and JCTs
computed by hand.

Price used below (defaults lambda = 1, beta = 4): p(u) = expm1(4 u) / expm1(4), expm1(4) = 53.598:
p(1/8) = 0.012104, p(1/4) = 0.032059, p(1/2) = 0.119203, p(3/4) = 0.356085, p(1) = 1.
Cost of (host type h, n GPUs) = (T + restart) (1 + n p(u after taking n)), T = remaining / rate.
"""

import math

import numpy as np
import pytest

from dlsched_gym.baselines import make
from dlsched_gym.baselines.heet import host_types, job_sizes, price
from dlsched_gym.cluster import ClusterSpec, Node
from dlsched_gym.engine import FINISHED, Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.perf import make_perf, type_ratio
from dlsched_gym.scheduler import Start
from dlsched_gym.workload import from_records

# Eight 1-GPU hosts (listed first) and one 4-GPU host, all V100: a gang spanning hosts pays PAL's
# 1.7 locality penalty, so elastic jobs scale well only on the 4-GPU host.
ONES_AND_A_FOUR = ClusterSpec(nodes=tuple([Node(gpus=1)] * 8 + [Node(gpus=4)]), name="8x1+1x4")
ONE_V100_ONE_K80 = ClusterSpec(nodes=(Node(gpus=1, gpu_type="V100"), Node(gpus=1, gpu_type="K80")),
                               name="1xV100+1xK80")


def linear_perf(**options):
    """Gavel's per-type ratios and PAL's locality penalty, linear scaling, nothing else."""
    options = {"variability": None, "sharing": False, "scaling": False, "locality": "pal"} | options
    return make_perf("throughput", **options)


def test_price_and_sizes_by_hand():
    assert price(0.0, 4.0) == 0.0 and price(1.0, 4.0) == pytest.approx(1.0)
    assert price(0.5, 4.0) == pytest.approx(math.expm1(2.0) / math.expm1(4.0))  # 0.119203
    assert job_sizes(1, 4, 8) == [1, 2, 4]
    assert job_sizes(3, 12, 8) == [3, 4, 8]  # powers of two in [3, 12] and both ends, <= 8
    assert job_sizes(6, 6, 8) == [6]  # rigid
    types, index = host_types(ONES_AND_A_FOUR)
    assert types == [("V100", 1, 100.0), ("V100", 4, 100.0)]
    assert index.tolist() == [0] * 8 + [1]


@pytest.mark.parametrize("name, host, jct", [("heet", [8], 250.0), ("heet_blind", [0, 1, 2, 3], 425.0)])
def test_elastic_job_goes_where_it_scales(simulate, name, host, jct):
    # One job, 1..4 GPUs, 1000 s on 1 GPU. Rates: 4-GPU host n (1, 2, 4); 1-GPU hosts 1, 2/1.7,
    # 4/1.7 = 1, 1.176, 2.353.
    # heet, 4-GPU host: n=1 1000 (1 + p(1/4)) = 1032.1; n=2 500 (1 + 2 p(1/2)) = 619.2;
    #   n=4 250 x 5 = 1250. 1-GPU hosts (8 GPUs): n=1 1000 (1 + p(1/8)) = 1012.1;
    #   n=2 850 (1 + 2 p(1/4)) = 904.5; n=4 425 (1 + 4 p(1/2)) = 627.6. -> 4-GPU host, n=2, then
    #   the 2 idle GPUs there raise its throughput: n=4, rate 4, JCT 250.
    # heet_blind predicts the mean over hosts (1, 1.588, 3.176) everywhere, so only the price
    #   differs: 1-GPU hosts n=4 = 314.8 x 1.4768 = 464.9 beats the 4-GPU host's best
    #   (n=2: 629.6 x 1.2384 = 779.7) -> 4 GPUs spanning 1-GPU hosts, rate 2.353, JCT 425.
    job = ("A", 0, 1, 1000, {"min_gpus": 1, "max_gpus": 4})
    perf = linear_perf()
    frame = simulate([job], make(name), cluster=ONES_AND_A_FOUR, perf=perf)
    assert frame.loc["A", "jct"] == pytest.approx(jct, rel=1e-3)
    eng = Engine(from_records([{"job_id": "A", "submit_time": 0, "num_gpus": 1, "duration": 1000,
                                "min_gpus": 1, "max_gpus": 4}]), ONES_AND_A_FOUR, perf=perf,
                 timeline_interval=None)
    sched = make(name)
    eng.reset(sched)
    assert eng.next_decision()
    (op,) = sched.schedule(eng.view)
    assert sorted(set(eng.spec.gpu_node[op.gpus].tolist())) == host


def _first_ops(jobs, sched, cluster, perf):
    eng = Engine(from_records(jobs), cluster, perf=perf, timeline_interval=None)
    eng.reset(sched)
    assert eng.next_decision()
    return sched.schedule(eng.view)


SWAP_JOBS = [{"job_id": "A", "submit_time": 0, "num_gpus": 1, "duration": 100, "model": "ResNet-50",
              "batch_size": 64},
             {"job_id": "B", "submit_time": 0, "num_gpus": 1, "duration": 100000,
              "model": "Recommendation", "batch_size": 2048}]


@pytest.mark.parametrize("trade_gain, a_on_v100", [(0.05, True), (10.0, False)])
def test_trading_swaps_host_types_when_normalized_throughput_rises(trade_gain, a_on_v100):
    ka, kb = type_ratio("ResNet-50", "K80"), type_ratio("Recommendation", "K80")  # ~0.139, ~0.950
    # Both hosts hold 1 GPU, so p = p(1) = 1 and every cost is 2 T. The matching minimizes
    # T_A + T_B: A on V100, B on K80: 100 + 100000 / kb = 105,363; A on K80, B on V100:
    # 100 / ka + 100000 = 100,719 -> A on the K80.
    # Trading: normalized throughputs (rate / best 1-GPU rate): A on K80 ka, B on V100 1; swapped
    # 1 + kb = 1.95 > (1 + ka) (1 + 0.05) -> swap. With trade_gain = 10 no swap qualifies.
    assert 100 / ka + 100000 < 100 + 100000 / kb
    ops = _first_ops(SWAP_JOBS, make("heet", trade_gain=trade_gain), ONE_V100_ONE_K80, linear_perf())
    assert all(type(op) is Start for op in ops)
    on = {op.job: op.gpus.tolist() for op in ops}
    assert on == ({0: [0], 1: [1]} if a_on_v100 else {0: [1], 1: [0]})


def test_trading_then_migration_jcts(simulate):
    kb = type_ratio("Recommendation", "K80")
    jobs = [(r["job_id"], 0, 1, r["duration"], {"model": r["model"], "batch_size": r["batch_size"]})
            for r in SWAP_JOBS]
    frame = simulate(jobs, make("heet"), cluster=ONE_V100_ONE_K80, perf=linear_perf(),
                     restart_overhead=30.0)
    # A on the V100 (after the swap) ends at 100. At the round at 300 B (on the K80, 300 kb work
    # done) finishes sooner on the V100 even after a 30 s restart: preempted and restarted there,
    # progress resumes at 330 at rate 1: ends at 330 + 100000 - 300 kb.
    assert frame.loc["A", "jct"] == pytest.approx(100.0)
    assert frame.loc["B", "jct"] == pytest.approx(330 + 100000 - 300 * kb)
    assert frame["preemptions"].to_dict() == {"A": 0, "B": 1}


def test_rigid_jobs_run_shortest_first_without_resizes(simulate):
    jobs = [("A", 0, 2, 1000), ("B", 0, 1, 100), ("C", 0, 1, 200)]
    frame = simulate(jobs, make("heet"), cluster="1x2-V100")
    # Round 0, one host type of 2 GPUs, one job per assignment:
    #   A 1000 (1 + 2 p(1)) = 3000, B 100 (1 + p(1/2)) = 111.9, C 223.8 -> B;
    #   then 1 GPU left: A does not fit, C 200 (1 + p(1)) = 400 -> C.
    # B ends at 100, C at 200; A (2 GPUs) starts at 200 and ends at 1200. No preemption.
    assert frame["jct"].to_dict() == {"A": 1200.0, "B": 100.0, "C": 200.0}
    assert frame["preemptions"].sum() == 0


def test_running_job_grows_into_freed_gpus_and_pays_the_resize(simulate):
    jobs = [("A", 0, 1, 3000, {"min_gpus": 1, "max_gpus": 4}),
            ("B", 0, 2, 200, {"min_gpus": 2, "max_gpus": 2})]
    frame = simulate(jobs, make("heet"), cluster="1x4-V100", resize_overhead=20.0)
    # Duration model: rate n / num_gpus. Round 0: A n=1 3096.2, n=2 1500 x 1.2384 = 1857.6,
    # n=4 750 x 5 = 3750; B (rigid 2) 200 x 1.2384 = 247.7 -> B first. 2 GPUs left: A n=1
    # 3000 (1 + p(3/4)) = 4068.3, n=2 1500 x 3 = 4500 -> n=1; the idle GPU raises A to 2.
    # B ends at 200; the GPUs idle until the round at 300. A (2400 left): n=2 (kept)
    # 1200 x 1.2384 = 1486.1 < n=4 (600 + 30 restart) x 5 = 3150, then trading: 2 idle GPUs,
    # 2400 / 4 + 30 = 630 < 2400 / 2 -> resize to 4 at 300; 20 s overhead, 2400 / 4 = 600 s:
    # ends at 920.
    assert frame["jct"].to_dict() == {"A": 920.0, "B": 200.0}
    assert frame["preemptions"].sum() == 0


@pytest.mark.parametrize("param, bad", [("round_seconds", 0), ("price_weight", -1.0),
                                        ("price_steepness", float("nan")), ("restart_seconds", "x"),
                                        ("trade_gain", -0.1), ("type_aware", 1)])
def test_bad_parameters(param, bad):
    with pytest.raises(ConfigError, match=param):
        make("heet", **{param: bad})


def test_job_larger_than_every_host_type_is_an_error():
    jobs = [{"job_id": "big", "submit_time": 0, "num_gpus": 3, "duration": 10}]
    spec = ClusterSpec(nodes=(Node(gpus=2, gpu_type="V100"), Node(gpus=2, gpu_type="K80")), name="2+2")
    with pytest.raises(ConfigError, match="'big' needs at least 3 GPUs of one host type"):
        Engine(from_records(jobs), spec, perf=linear_perf(), timeline_interval=None).run(make("heet"))


@pytest.mark.parametrize("name", ["heet", "heet_blind"])
def test_runs_a_random_heterogeneous_elastic_workload_to_the_end(name):
    rng = np.random.default_rng(5)
    models = ["ResNet-50", "Recommendation", "Transformer", "A3C", "vgg16"]
    rows, t = [], 0.0
    for i in range(60):
        t += float(rng.exponential(150.0))
        g = int(rng.choice([1, 1, 2, 4]))
        rows.append({"job_id": f"j{i}", "submit_time": round(t), "num_gpus": g,
                     "min_gpus": max(1, g // 2), "max_gpus": 2 * g if i % 3 else g,
                     "duration": float(np.exp(rng.normal(6.5, 1.0))), "model": models[i % 5],
                     "batch_size": 64})
    slow = Node(gpus=4, gpu_type="V100", bandwidth_gbps=10.0)
    spec = ClusterSpec(nodes=(Node(gpus=8, gpu_type="V100"), slow, slow, Node(gpus=4, gpu_type="K80"),
                              Node(gpus=4, gpu_type="K80")), name="mixed")
    perf = make_perf("throughput", variability=None, locality="bandwidth")
    res = Engine(from_records(rows), spec, perf=perf, restart_overhead=30.0, resize_overhead=10.0,
                 timeline_interval=None).run(make(name))
    assert (res.state == FINISHED).all()
    assert (res.end_time >= res.submit_time).all()


def test_type_blindness_changes_nothing_on_one_host_type():
    # One host type: the mean over host types is that type's prediction, so both variants decide
    # alike and every job ends at the same time.
    rng = np.random.default_rng(2)
    rows, t = [], 0.0
    for i in range(40):
        t += float(rng.exponential(100.0))
        g = int(rng.choice([1, 2, 4]))
        rows.append({"job_id": f"j{i}", "submit_time": round(t), "num_gpus": g, "min_gpus": 1,
                     "max_gpus": 2 * g, "duration": float(np.exp(rng.normal(6.0, 1.0))),
                     "model": "ResNet-50", "batch_size": 64})
    perf = make_perf("throughput", variability=None, locality="pal")
    ends = [Engine(from_records(rows), "2x4-V100", perf=perf, resize_overhead=10.0,
                   timeline_interval=None).run(make(name)).end_time for name in ("heet", "heet_blind")]
    np.testing.assert_array_equal(ends[0], ends[1])
    assert np.isfinite(ends[0]).all()
