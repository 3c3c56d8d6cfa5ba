"""Lyra (EuroSys'23), Lyra-inspired: reclaiming by least preemption cost, MCKP extra workers,
loaned capacity; the generated diurnal inference series. Expected values computed by hand."""

import numpy as np
import pytest

from dlsched_gym.baselines import make
from dlsched_gym.baselines._lyra_pool import cluster_with_inference_pool, diurnal_inference_schedule
from dlsched_gym.cluster import ClusterSpec, Node
from dlsched_gym.engine import Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.metrics import summarize
from dlsched_gym.scheduler import Start
from dlsched_gym.workload import from_records
from tests.scripted import Scripted


def elastic(lo, hi):
    return {"min_gpus": lo, "max_gpus": hi}


# ---------------------------------------------------------------------------------------------
# Reclaiming
# ---------------------------------------------------------------------------------------------

def _state_with_jobs(jobs, starts):
    """An engine after its first decision, with ``starts`` = {job index: GPU ids} started at 0.

    Cluster: node 0 training (2 GPUs: 0, 1); lent inference nodes 1 (GPUs 2, 3), 2 (GPUs 4, 5),
    3 (GPU 6)."""
    spec = ClusterSpec(nodes=(Node(gpus=2), Node(gpus=2, pool="inference"),
                              Node(gpus=2, pool="inference"), Node(gpus=1, pool="inference")),
                       inference_schedule=((0.0, 3),))
    rows = [{"job_id": name, "submit_time": 0.0, "duration": 1000.0, "num_gpus": g, **extra}
            for name, g, extra in jobs]
    eng = Engine(from_records(rows), spec, timeline_interval=None)
    script = Scripted({0.0: lambda v: [Start(j, g) for j, g in starts.items()]})
    eng.reset(script)
    assert eng.next_decision()
    eng.apply(script.schedule(eng.view))
    lyra = make("lyra")
    lyra.reset(eng.spec, eng.jobs, np.random.default_rng(0))
    return eng, lyra


def test_reclaim_picks_least_preemption_cost_not_fewest_busy_gpus():
    # Job E (elastic, min 1) holds GPU 0 (training) and GPUs 2, 3 (node 1); rigid job R holds
    # GPU 6 (node 3). Cost of node 1: E keeps 3 - 2 = 1 >= min 1 GPU, it shrinks: 0 jobs
    # preempted. Node 2: empty, cost 0, 0 busy GPUs. Node 3: R must go: cost 1.
    # k = 1: node 2 (cost 0, 0 busy) wins; k = 2: then node 1 (cost 0, 2 busy) beats node 3
    # (cost 1, 1 busy), which the engine's default (fewest busy GPUs) would have picked.
    eng, lyra = _state_with_jobs([("E", 1, elastic(1, 3)), ("R", 1, elastic(1, 1))], {0: [0, 2, 3], 1: [6]})
    lent = np.array([1, 2, 3])
    assert lyra.choose_reclaim(eng.view, lent, 1) == [2]
    assert lyra.choose_reclaim(eng.view, lent, 2) == [2, 1]


def test_reclaim_recomputes_costs_after_each_pick():
    # E (elastic, min 2) holds GPUs 2, 3 (node 1) and 4, 5 (node 2); R (rigid) holds GPU 6 (node 3).
    # First pick: nodes 1 and 2 both cost 0 (E keeps 4 - 2 = 2 >= 2), 2 busy GPUs each: the lower
    # index, node 1; E shrinks to 2 GPUs. Now node 2 would leave E with 0 < 2: cost 1 with 2 busy
    # GPUs, node 3 costs 1 with 1 busy GPU: node 3. Picking by the initial costs would return
    # [1, 2] and preempt E.
    eng, lyra = _state_with_jobs([("E", 2, elastic(2, 4)), ("R", 1, elastic(1, 1))],
                                 {0: [2, 3, 4, 5], 1: [6]})
    assert lyra.choose_reclaim(eng.view, np.array([1, 2, 3]), 2) == [1, 3]


# One training GPU (node 0) and one inference GPU (node 1), lent from 0, reclaimed at 100.
# Job E: elastic 1..2 GPUs, requests 1, 300 s on 1 GPU (duration model: rate = GPUs / 1).
LOAN = ClusterSpec(nodes=(Node(gpus=1), Node(gpus=1, pool="inference")),
                   inference_schedule=((0.0, 1), (100.0, 0)))
E_JOB = [("E", 0, 1, 300, elastic(1, 2))]


def test_loaned_capacity_is_used_and_elastic_job_shrinks_before_the_reclaim(simulate):
    # t=0: base demand 1 GPU on the training node (GPU 0); MCKP: 1 free GPU (loaned GPU 1),
    # value 300/1 - 300/2 = 150 > 0: E starts on GPUs 0, 1 at rate 2.
    # t=99 (1 s notice): 198 s of work done; node 1 will be reclaimed; E keeps 1 >= min 1 GPU:
    # Resize to GPU 0 (5 s resize overhead) -> progress again from 104 at rate 1, 102 s left:
    # ends at 206. At 100 node 1 is empty: no forced preemption.
    frame = simulate(E_JOB, make("lyra"), cluster=LOAN, restart_overhead=30.0, resize_overhead=5.0)
    assert frame["end_time"].to_dict() == {"E": 206.0}
    assert frame["preemptions"].to_dict() == {"E": 0}


def test_without_notice_the_reclaim_preempts(simulate):
    # Same start; at 100 the engine reclaims node 1 and preempts E (200 s done at rate 2). Lyra
    # restarts it at once on GPU 0 alone (node 1 offline): 30 s restart overhead, then 100 s
    # at rate 1: ends at 230.
    frame = simulate(E_JOB, make("lyra", reclaim_notice=0.0), cluster=LOAN, restart_overhead=30.0,
                     resize_overhead=5.0)
    assert frame["end_time"].to_dict() == {"E": 230.0}
    assert frame["preemptions"].to_dict() == {"E": 1}


def test_without_loaning_or_elasticity(simulate):
    # Pool never lent: E runs on GPU 0 alone, 0-300. Rigid (elastic=False) with loaning: E runs
    # at its requested 1 GPU (training node preferred), 0-300, so the reclaim at 100 hits nobody.
    never = ClusterSpec(nodes=LOAN.nodes)
    assert simulate(E_JOB, make("lyra"), cluster=never)["end_time"].to_dict() == {"E": 300.0}
    assert simulate(E_JOB, make("lyra", elastic=False), cluster=LOAN)["end_time"].to_dict() == {"E": 300.0}


def test_rigid_job_runs_on_loaned_server_when_training_is_full():
    # Training GPU 0 busy with A (0-100); B (rigid, 1 GPU, 50 s) goes to loaned GPU 1 at 0: ends
    # at 50 (it would wait until 100 without loaning). Available GPU-s: 2 x 100; busy: 100 + 50.
    spec = ClusterSpec(nodes=LOAN.nodes, inference_schedule=((0.0, 1),))
    wl = from_records([{"job_id": "A", "submit_time": 0, "duration": 100, "num_gpus": 1},
                       {"job_id": "B", "submit_time": 0, "duration": 50, "num_gpus": 1}])
    res = Engine(wl, spec, timeline_interval=None).run(make("lyra"))
    assert res.jobs_frame()["end_time"].tolist() == [100.0, 50.0]
    assert summarize(res)["gpu_utilization"] == pytest.approx(150 / 200)


# ---------------------------------------------------------------------------------------------
# Knapsack of extra workers
# ---------------------------------------------------------------------------------------------

def test_knapsack_gives_the_extra_gpu_to_the_larger_jct_reduction(simulate):
    # 3 GPUs; A (100 s) and B (400 s), elastic 1..2, both at 0. Base: 1 GPU each; 1 GPU left.
    # Values (linear scaling): A 100 - 50 = 50, B 400 - 200 = 200: B gets it, rate 2.
    # A ends at 100. Then B (200 s left) keeps its 2 GPUs (k = 1: value 200 - 100 = 100; k = 0
    # would change its size: -30): ends at 200.
    jobs = [("A", 0, 1, 100, elastic(1, 2)), ("B", 0, 1, 400, elastic(1, 2))]
    frame = simulate(jobs, make("lyra"), cluster="1x3")
    assert frame["end_time"].to_dict() == {"A": 100.0, "B": 200.0}


class _Curves:
    """Rate model: job 0 scales linearly; job 1 gets only 1.1x from 2 GPUs."""

    name = "test-curves"

    def reset(self, spec, jobs, rng):
        pass

    def rate(self, job, gpus, sharers):
        n = len(gpus)
        return float(n) if job == 0 else (1.0 if n == 1 else 1.1)


def test_knapsack_uses_the_scaling_curve(simulate):
    # Same jobs, but B's second GPU adds only 10 %: values A 100 - 100/2 = 50, B 400 - 400/1.1 =
    # 36.4: A gets the extra GPU and ends at 50. At 50: B has 350 s left; growing it is worth
    # 350 - 350/1.1 = 31.8 < resize_cost 40: it stays on 1 GPU and ends at 400.
    jobs = [("A", 0, 1, 100, elastic(1, 2)), ("B", 0, 1, 400, elastic(1, 2))]
    frame = simulate(jobs, make("lyra", resize_cost=40.0), cluster="1x3", perf=_Curves())
    assert frame["end_time"].to_dict() == {"A": 50.0, "B": 400.0}


def test_queued_base_demand_takes_back_extra_workers(simulate):
    # 2 GPUs. A (elastic 1..2, 200 s) alone at 0: base 1 + extra 1, rate 2. B (rigid 1 GPU, 50 s)
    # arrives at 50: A has 100 s done; its extra GPU goes to B's base demand; A shrinks to 1 GPU.
    # B: 50-100. A: 100 s left at rate 1 from 50; at 100 B's GPU is free again: growing A
    # (50 s left) is worth 50 - 25 = 25 < 30 (resize_cost): it stays, ends at 150.
    jobs = [("A", 0, 1, 200, elastic(1, 2)), ("B", 50, 1, 50, elastic(1, 1))]
    frame = simulate(jobs, make("lyra"), cluster="1x2")
    assert frame["end_time"].to_dict() == {"A": 150.0, "B": 100.0}


# ---------------------------------------------------------------------------------------------
# Parameters and the inference pool helpers
# ---------------------------------------------------------------------------------------------

def test_bad_parameters():
    with pytest.raises(ConfigError, match="reclaim_notice"):
        make("lyra", reclaim_notice=-1)
    with pytest.raises(ConfigError, match="resize_cost"):
        make("lyra", resize_cost=float("nan"))
    with pytest.raises(ConfigError, match="'elastic'"):
        make("lyra", elastic="yes")


def test_diurnal_schedule_by_hand():
    # 10 nodes, demand 0.2 at the trough, 1.0 at the 12:00 peak, sampled every 6 h, 1 node headroom.
    # 0 h: 0.2 -> 2 serving -> 10 - 2 - 1 = 7 lendable; 6 h: 0.2 + 0.8 x 0.5 = 0.6 -> 6 -> 3;
    # 12 h: 1.0 -> 10 -> 0 (clipped); 18 h: 0.6 -> 3.
    sched = diurnal_inference_schedule(10, 1, trough_demand=0.2, peak_demand=1.0, peak_hour=12,
                                       step_seconds=6 * 3600, headroom_nodes=1)
    assert sched == ((0.0, 7), (21600.0, 3), (43200.0, 0), (64800.0, 3))
    # two days: only changes are listed, so day 2 repeats the four entries shifted by 86400 s
    assert len(diurnal_inference_schedule(10, 2, trough_demand=0.2, peak_demand=1.0, peak_hour=12,
                                          step_seconds=6 * 3600)) == 8
    with pytest.raises(ConfigError, match="peak_demand"):
        diurnal_inference_schedule(10, 1, trough_demand=0.5, peak_demand=0.4)
    with pytest.raises(ConfigError, match="num_nodes"):
        diurnal_inference_schedule(0, 1)


def test_cluster_with_inference_pool():
    spec = cluster_with_inference_pool("2x4-V100", 3, gpus_per_node=2, schedule=((0.0, 2),))
    assert spec.num_gpus == 2 * 4 + 3 * 2
    assert spec.node_pool_inference.tolist() == [False, False, True, True, True]
    assert {n.gpu_type for n in spec.nodes} == {"V100"}
    with pytest.raises(ConfigError, match="inference_nodes"):
        cluster_with_inference_pool("2x4", 0)
