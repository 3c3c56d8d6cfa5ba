"""Cloud pool, regions, the lendable inference pool, GPU-type requests and what-if clones."""

from __future__ import annotations

import pytest

from dlsched_gym.baselines import make
from dlsched_gym.cluster import CloudPool, ClusterSpec, Node
from dlsched_gym.engine import Engine
from dlsched_gym.errors import ClusterSpecError, SchedulerError, WorkloadError
from dlsched_gym.metrics import summarize
from dlsched_gym.scheduler import Offload, Preempt, Route, Start
from tests.scripted import Scripted


def test_offload_runs_in_cloud_and_costs(make_workload):
    # 1x1 cluster, cloud at $3/GPU-hour. Job 0 (2 GPUs, 1800 s) is offloaded at 0: ends at 1800 and
    # costs 2 GPUs x 0.5 h x $3 = $3. Job 1 runs locally 0-100.
    spec = ClusterSpec(nodes=(Node(gpus=2),), cloud=CloudPool(price_per_gpu_hour=3.0))
    wl = make_workload([(0, 1800, 2), (0, 100, 1)])
    res = Engine(wl, spec).run(Scripted({0.0: lambda v: [Offload(0), Start(1)]}))
    s = summarize(res)
    assert res.jobs_frame()["end_time"].tolist() == [1800.0, 100.0]
    assert s["cloud_gpu_hours"] == pytest.approx(1.0) and s["cloud_cost"] == pytest.approx(3.0)
    # the cloud's GPUs are not the cluster's: 1 GPU busy for 100 s out of 2 GPUs x 1800 s
    assert s["gpu_utilization"] == pytest.approx(100 / 3600)


def test_offload_needs_a_cloud_and_can_be_pulled_back(make_workload):
    wl = make_workload([(0, 100, 1)])
    with pytest.raises(SchedulerError, match="has no cloud pool"):
        Engine(wl, "1x1").run(Scripted({0.0: lambda v: [Offload(0)]}))
    spec = ClusterSpec(nodes=(Node(gpus=1),), cloud=CloudPool(price_per_gpu_hour=1.0))
    # cloud 0-40 (40 s done), pulled back at 40 and started locally: ends at 40 + 60 = 100;
    # cost 40 GPU-s = 1/90 GPU-h at $1.
    script = {0.0: lambda v: [Offload(0)], 40.0: lambda v: [Preempt(0), Start(0)]}
    from dlsched_gym.scheduler import Wake
    res = Engine(wl, spec).run(Scripted(script, first=[Wake(40.0)]))
    assert res.jobs_frame()["end_time"].tolist() == [100.0]
    assert summarize(res)["cloud_cost"] == pytest.approx(40 / 3600)


def test_route_restricts_nodes(make_workload):
    spec = ClusterSpec(nodes=(Node(gpus=2, region="eu"), Node(gpus=2, region="us")))
    wl = make_workload([(0, 10, 2)])
    res = Engine(wl, spec).run(Scripted({0.0: lambda v: [Route(0, "us"), Start(0)]}))
    assert res.jobs_frame()["end_time"].tolist() == [10.0]
    with pytest.raises(SchedulerError, match=r"GPUs \[0, 1\] are outside the nodes it may use"):
        Engine(wl, spec).run(Scripted({0.0: lambda v: [Route(0, "us"), Start(0, [0, 1])]}))
    with pytest.raises(SchedulerError, match="unknown region 'asia'"):
        Engine(wl, spec).run(Scripted({0.0: lambda v: [Route(0, "asia")]}))


def test_region_demand_supply(make_workload):
    # eu: 2 GPUs, us: 2 GPUs. Job 0 (2 GPUs, 100 s) routed to us and started at 0; job 1 (2 GPUs,
    # 100 s) routed to us at 0, waits, runs 100-200; job 2 (1 GPU, 50 s) started unrouted at 0 on
    # GPU 0 (eu) and counts there from its start. Makespan 200 s.
    # us: 4 GPUs demanded 0-100, 2 GPUs 100-200 -> 600 GPU-s / (2 GPUs x 200 s) = 1.5;
    # eu: 1 GPU 0-50 -> 50 / (2 x 200) = 0.125.
    spec = ClusterSpec(nodes=(Node(gpus=2, region="eu"), Node(gpus=2, region="us")))
    wl = make_workload([(0, 100, 2), (0, 100, 2), (0, 50, 1)])
    first = {0.0: lambda v: [Route(0, "us"), Route(1, "us"), Start(0), Start(2, [0])],
             100.0: lambda v: [Start(1)]}
    res = Engine(wl, spec).run(Scripted(first))
    s = summarize(res)
    assert s["demand_supply[us]"] == pytest.approx(1.5)
    assert s["demand_supply[eu]"] == pytest.approx(0.125)
    assert s["max_region_demand_supply"] == pytest.approx(1.5)
    # one region: no demand metrics
    assert "max_region_demand_supply" not in summarize(Engine(wl, "1x4").run(make("fifo")))


def test_gpu_type_request(make_workload):
    spec = ClusterSpec(nodes=(Node(gpus=1, gpu_type="K80"), Node(gpus=1, gpu_type="V100")))
    wl = make_workload([(0, 10, 1, {"gpu_type": "V100"})])
    eng = Engine(wl, spec)
    res = eng.run(make("fifo"))
    assert res.jobs_frame()["end_time"].tolist() == [10.0]
    with pytest.raises(WorkloadError, match="requests GPU type 'A100'"):
        Engine(make_workload([(0, 10, 1, {"gpu_type": "A100"})]), spec)


def test_inference_pool_lends_and_reclaims(make_workload):
    # One training node (1 GPU) and two 1-GPU inference nodes, lent from t=0, one reclaimed at 50.
    # FIFO: jobs 0, 1, 2 (100 s each) start at 0 on GPUs 0, 1, 2. At 50 the node with the fewest busy
    # GPUs (tie: the higher index, node 2) is reclaimed and job 2 is preempted with 50 s done; it
    # restarts at 100 when job 0 ends on GPU 0 and finishes at 150.
    spec = ClusterSpec(nodes=(Node(gpus=1), Node(gpus=1, pool="inference"),
                              Node(gpus=1, pool="inference")),
                       inference_schedule=((0.0, 2), (50.0, 1)))
    wl = make_workload([(0, 100, 1), (0, 100, 1), (0, 100, 1)])
    res = Engine(wl, spec).run(make("fifo"))
    assert res.jobs_frame()["end_time"].tolist() == [100.0, 100.0, 150.0]
    s = summarize(res)
    assert s["forced_preemptions"] == 1
    # available GPU-s: 3 GPUs x 50 s + 2 GPUs x 100 s = 350; busy: 100 + 100 + 50 + 50 = 300
    assert s["gpu_utilization"] == pytest.approx(300 / 350)
    with pytest.raises(ClusterSpecError, match="inference_schedule"):
        ClusterSpec(nodes=(Node(gpus=1, pool="inference"),), inference_schedule=((0.0, 2),))


def test_clone_forecasts_without_touching_the_original(make_workload):
    # FIFO on 1x1: jobs 0 (0 s, 100 s), 1 (10 s, 50 s), 2 (20 s, 30 s).
    # At t=10 a clone without future arrivals predicts job 1 ends at 150 (after job 0);
    # the real run ends job 1 at 150 too, and job 2 (unknown to the clone) at 180.
    wl = make_workload([(0, 100, 1), (10, 50, 1), (20, 30, 1)])
    eng = Engine(wl, "1x1")
    fifo = make("fifo")
    eng.reset(fifo)
    forecast = {}
    while eng.next_decision():
        if eng.now == 10.0:
            what_if = eng.clone(arrivals=False)
            forecast = what_if.continue_run(make("fifo")).jobs_frame()["end_time"].tolist()
        eng.apply(fifo.schedule(eng.view))
    real = eng.result("fifo").jobs_frame()["end_time"].tolist()
    assert forecast[:2] == [100.0, 150.0] and forecast[2] != forecast[2]  # job 2 never arrives
    assert real == [100.0, 150.0, 180.0]


def test_annotations_become_columns_and_prediction_error(make_workload):
    # Job 0 (100 s) predicted 110 s: error 10 %; job 1 (50 s, waits 100 s -> JCT 150) predicted 75 s:
    # error 50 %. MAPE = 30 %, within 10 %: one of two.
    wl = make_workload([(0, 100, 1), (0, 50, 1)])

    def first(view):
        view.annotate(0, "predicted_jct", 110.0)
        view.annotate(1, "predicted_jct", 75.0)
        return [Start(0)]

    res = Engine(wl, "1x1").run(Scripted({0.0: first, 100.0: lambda v: [Start(1)]}))
    assert res.jobs_frame()["predicted_jct"].tolist() == [110.0, 75.0]
    s = summarize(res)
    assert s["jct_prediction_mape"] == pytest.approx(0.30)
    assert s["jct_prediction_within_10pct"] == 0.5


def test_before_reclaim_hook_can_shrink_instead_of_preempting(make_workload):
    # Node 0 (training, 1 GPU) + node 1 (inference, 1 GPU) lent 0-100. An elastic job (1..2 GPUs,
    # 300 s at 2 GPUs... requested 2) runs on both at rate 1; at 100 the hook shrinks it to GPU 0:
    # 100 of 300 units done, 200 left at rate 1/2 -> ends at 100 + 400 = 500, never preempted.
    spec = ClusterSpec(nodes=(Node(gpus=1), Node(gpus=1, pool="inference")),
                       inference_schedule=((0.0, 1), (100.0, 0)))
    wl = make_workload([(0, 300, 2, {"min_gpus": 1, "max_gpus": 2})])

    class Shrinker(Scripted):
        def before_reclaim(self, view, nodes):
            return [Resize(0, [0])]

    from dlsched_gym.scheduler import Resize
    res = Engine(wl, spec).run(Shrinker({0.0: lambda v: [Start(0, [0, 1])]}))
    s = summarize(res)
    assert res.jobs_frame()["end_time"].tolist() == [500.0]
    assert "forced_preemptions" not in s and s["preemptions"] == 0


def test_pool_events_after_the_last_job_do_not_dilute_utilization(make_workload):
    spec = ClusterSpec(nodes=(Node(gpus=1), Node(gpus=1, pool="inference")),
                       inference_schedule=((0.0, 1), (1000.0, 0)))
    res = Engine(make_workload([(0, 100, 1)]), spec).run(make("fifo"))
    # 1 busy GPU of 2 available over 0-100
    assert summarize(res)["gpu_utilization"] == pytest.approx(0.5)


def test_what_if_with_predicted_work_knows_only_the_predictor(make_workload):
    # One 100 s job; the "noisy" predictor's estimate differs from 100. A clone with predicted work
    # finishes it at the predicted duration, a clone with true work at 100.
    wl = make_workload([(0, 100, 1)])
    eng = Engine(wl, "1x1", predictor="noisy")
    eng.reset()
    assert eng.next_decision()
    eng.apply([Start(0)])
    guess = eng.predictor.duration(0)
    assert guess != 100.0
    predicted = eng.view.what_if()
    predicted.continue_run(make("fifo"), result=False)
    true = eng.clone(arrivals=False)
    true.continue_run(make("fifo"), result=False)
    assert predicted.end_time[0] == pytest.approx(guess) and true.end_time[0] == 100.0


def test_gang_spans_the_small_nodes_it_is_restricted_to(make_workload):
    # One 8-GPU A100 node and two 4-GPU V100 nodes. Job 0 asks for 6 V100 GPUs: it fits in the
    # cluster's largest node but in no node it may use, so consolidated placement spans the two V100
    # nodes (4 + 2) at t=0 and it ends at 10. Job 1 (4 A100 GPUs) takes the A100 node; job 2 (4 V100
    # GPUs) fits in one V100 node, so it is not split over the 2 + 0 GPUs left and waits for job 0.
    spec = ClusterSpec(nodes=(Node(gpus=8, gpu_type="A100"), Node(gpus=4, gpu_type="V100"),
                              Node(gpus=4, gpu_type="V100")))
    wl = make_workload([(0, 10, 6, {"gpu_type": "V100"}), (0, 10, 4, {"gpu_type": "A100"}),
                        (0, 10, 4, {"gpu_type": "V100"})])
    res = Engine(wl, spec).run(make("fifo-backfill"))
    assert res.jobs_frame()["end_time"].tolist() == [10.0, 10.0, 20.0]
