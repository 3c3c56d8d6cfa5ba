"""MAST-inspired global scheduler and its pinned baseline: hand-computed cases.

Clusters are built from nodes with regions; region indices follow the sorted region names
(a = 0, b = 1, c = 2). The perf model reproduces trace durations and restarts cost nothing, so a
job's JCT is its waiting time plus its duration. Datasets, replicas and storage are the engine's
(``dataset_size_tb``, ``initial_replicas``, ``ClusterSpec.region_storage_tb``).
"""

from __future__ import annotations

import pytest

from dlsched_gym.baselines import make
from dlsched_gym.cluster import ClusterSpec, Node
from dlsched_gym.engine import Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.workload import from_records


def cluster(*regions: tuple[str, int], **options) -> ClusterSpec:
    """One 4-GPU node per entry ``(region, count)`` x count, one rack per node; ``options`` go to
    the spec (storage, replication bandwidth)."""
    nodes = [Node(gpus=4, region=r, rack=f"{r}{i}") for r, n in regions for i in range(n)]
    return ClusterSpec(nodes=tuple(nodes), name="test", **options)


def simulate(jobs, scheduler, spec, **engine_options):
    """``jobs``: (id, submit, gpus, duration, priority, home region, dataset); the result."""
    rows = [{"job_id": i, "submit_time": s, "num_gpus": g, "duration": d, "priority": p,
             "region": r, "dataset": ds} for i, s, g, d, p, r, ds in jobs]
    res = Engine(from_records(rows), spec, timeline_interval=None, **engine_options).run(scheduler)
    assert not res.stalled and not res.truncated
    return res


def run(jobs, scheduler, spec, **engine_options):
    """The jobs table of :func:`simulate`, indexed by job id."""
    return simulate(jobs, scheduler, spec, **engine_options).jobs_frame().set_index("job_id")


def test_routing_picks_the_least_loaded_region_that_holds_the_data():
    # Regions a, b, c with 4 GPUs each; dataset x lives in a and b, y only in c. All high priority,
    # so the ratio is (high-priority GPUs routed there + the job's) / 4.
    # J1 (2 GPUs, x): a = 2/4 = 0.5, b = 0.5: tie -> a (lower index).
    # J2 (3 GPUs, x): a = (2+3)/4 = 1.25, b = 3/4 = 0.75 -> b.
    # J3 (1 GPU, x):  a = (2+1)/4 = 0.75, b = (3+1)/4 = 1.0 -> a; c is empty but has no x.
    # J4 (1 GPU, y):  only c holds y -> c, ratio 1/4.
    spec = cluster(("a", 1), ("b", 1), ("c", 1))
    jobs = run([("J1", 0, 2, 100, 1, "a", "x"), ("J2", 1, 3, 100, 1, "a", "x"),
                ("J3", 2, 1, 100, 1, "a", "x"), ("J4", 3, 1, 100, 1, "a", "y")], make("mast"), spec,
               dataset_size_tb=1.0, initial_replicas={"x": ["a", "b"], "y": ["c"]})
    assert jobs["mast_region"].to_dict() == {"J1": 0, "J2": 1, "J3": 0, "J4": 2}
    assert jobs["mast_ratio"].to_dict() == {"J1": 0.5, "J2": 0.75, "J3": 0.75, "J4": 0.25}
    assert jobs["start_time"].to_dict() == {"J1": 0.0, "J2": 1.0, "J3": 2.0, "J4": 3.0}


def test_low_priority_jobs_count_all_demand_high_priority_only_high():
    # a and b hold x. L (low, 4 GPUs) -> a: all-demand ratio a = 4/4 = 1 = b, tie -> a.
    # H (high, 4 GPUs): high-only ratio a = 4/4 = 1 = b, tie -> a: it preempts L there at t=1,
    # runs 1-101. L2 (low, 4 GPUs, t=2): all demand a = (4+4+4)/4 = 3, b = 4/4 = 1 -> b, runs
    # 2-102. L restarts in a when H ends: 100 - 1 = 99 s left, ends 101 + 99 = 200.
    spec = cluster(("a", 1), ("b", 1))
    jobs = run([("L", 0, 4, 100, 0, "a", "x"), ("H", 1, 4, 100, 1, "a", "x"),
                ("L2", 2, 4, 100, 0, "a", "x")], make("mast"), spec,
               dataset_size_tb=1.0, initial_replicas={"x": ["a", "b"]})
    assert jobs["mast_region"].to_dict() == {"L": 0, "H": 0, "L2": 1}
    assert jobs["end_time"].to_dict() == {"L": 200.0, "H": 101.0, "L2": 102.0}
    assert jobs["preemptions"].to_dict() == {"L": 1, "H": 0, "L2": 0}


def test_priority_preemption_picks_the_node_with_fewest_victims():
    # Region a: two 4-GPU nodes; region b: one. Best fit at t=0: L1 (1 GPU) -> node 0 (tie, first),
    # L2 (1 GPU) -> node 0 (3 free, the fewest that fit), L3 (3 GPUs) -> node 1 (node 0 has 2).
    # H (high, 4 GPUs, t=100): node 0 needs 2 GPUs -> preempt L1 and L2 (2 jobs); node 1 needs 3
    # -> preempt L3 (1 job): node 1 wins. H runs 100-300. L3 (900 s left) waits for 3 free GPUs:
    # node 0 has 2 until 1000, node 1 frees at 300 -> L3 runs 300-1200. L1, L2 end at 1000.
    # B in region b (high) never preempts in a.
    spec = cluster(("a", 2), ("b", 1))
    jobs = run([("L1", 0, 1, 1000, 0, "a", ""), ("L2", 0, 1, 1000, 0, "a", ""),
                ("L3", 0, 3, 1000, 0, "a", ""), ("H", 100, 4, 200, 1, "a", ""),
                ("B", 100, 4, 50, 1, "b", "")], make("mast-pinned"), spec)
    assert jobs["preemptions"].to_dict() == {"L1": 0, "L2": 0, "L3": 1, "H": 0, "B": 0}
    assert jobs["end_time"].to_dict() == {"L1": 1000.0, "L2": 1000.0, "L3": 1200.0, "H": 300.0,
                                          "B": 150.0}


def test_low_priority_jobs_do_not_preempt_and_backfill_in_their_region():
    # Region a: one 4-GPU node. L1 (low, 4 GPUs, 1000 s) starts at 0. H (high, 2 GPUs, t=10) preempts L1
    # (the only candidate) and runs 10-110. L2 (low, 2 GPUs, t=20) backfills the 2 free GPUs,
    # 20-520 (L1, first in the queue, needs 4). L1 restarts at 520 with 990 s left: ends 1510.
    spec = cluster(("a", 1), ("b", 1))
    jobs = run([("L1", 0, 4, 1000, 0, "a", ""), ("H", 10, 2, 100, 1, "a", ""),
                ("L2", 20, 2, 500, 0, "a", "")], make("mast-pinned"), spec)
    assert jobs["end_time"].to_dict() == {"L1": 1510.0, "H": 110.0, "L2": 520.0}
    assert jobs["preemptions"].to_dict() == {"L1": 1, "H": 0, "L2": 0}


def test_demand_supply_ratio_by_hand():
    # Regions a, b with 4 GPUs each. A, B (high, 4 GPUs, 100 s, home a), C (low, 2 GPUs, 200 s,
    # home b); no datasets, so MAST may use either region.
    # Pinned: a's high demand is 8 GPUs over 0-100 (A runs, B waits) and 4 over 100-200 (B):
    #   (8 x 100 + 4 x 100) / 200 s / 4 GPUs = 1.5; b: high 0, all 2 x 200 / 200 / 4 = 0.5.
    # MAST: A -> a (tie 1.0/1.0), B -> b ((4+4)/4 = 2 vs 4/4 = 1), C (low, all demand):
    #   a = (4+2)/4 = 1.5 = b -> a; C waits for A, runs 100-300. Span 0-300:
    #   a high 4 x 100 / 300 / 4 = 1/3, all (6 x 100 + 2 x 200) / 300 / 4 = 5/6;
    #   b high = all = 4 x 100 / 300 / 4 = 1/3.
    spec = cluster(("a", 1), ("b", 1))
    jobs = [("A", 0, 4, 100, 1, "a", ""), ("B", 0, 4, 100, 1, "a", ""), ("C", 0, 2, 200, 0, "b", "")]
    pinned, mast = make("mast-pinned"), make("mast")
    run(jobs, pinned, spec)
    run(jobs, mast, spec)
    assert pinned.demand_supply() == {"a": {"high": 1.5, "all": 1.5}, "b": {"high": 0.0, "all": 0.5}}
    got = mast.demand_supply()
    assert got["a"] == pytest.approx({"high": 1 / 3, "all": 5 / 6})
    assert got["b"] == pytest.approx({"high": 1 / 3, "all": 1 / 3})


def test_slow_path_replicates_then_reroutes_after_the_copy_delay():
    # Dataset x (1 TB) lives only in a (the home region of its jobs); 100 Gbit/s -> a copy takes
    # 8e12 / 1e11 = 80 s. J0, J1, J2 (high, 4 GPUs, 1000 s) all go to a: ratio 12/4 = 3.
    # Planner at t=100: hot a (3 > 1), 8 GPUs of x queued; to b (ratio 0) moves
    #   min(8, (3 - 0) x 4 x 4 / 8) = 6 GPUs -> copy x to b, 100-180; a 1.5, b 1.5, b already
    #   has x -> stop.
    # At 180 the replica is ready: J1 from a (ratio 12/4 = 3) to b (4/4 = 1); J2: a 8/4 = 2, b
    #   (4+4)/4 = 2, not lower -> stays. J1 runs in b 180-1180; J0 0-1000; J2 1000-2000.
    spec = cluster(("a", 1), ("b", 1), replication_gbps=100.0)
    res = simulate([("J0", 0, 4, 1000, 1, "a", "x"), ("J1", 0, 4, 1000, 1, "a", "x"),
                    ("J2", 0, 4, 1000, 1, "a", "x")], make("mast", plan_seconds=100), spec,
                   dataset_size_tb=1.0)
    jobs = res.jobs_frame().set_index("job_id")
    assert jobs["start_time"].to_dict() == {"J0": 0.0, "J1": 180.0, "J2": 1000.0}
    assert jobs["mast_region"].to_dict() == {"J0": 0, "J1": 1, "J2": 0}
    assert res.replications == [(100.0, "x", "b", 1.0)]  # (start, dataset, region, TB)


def test_planner_evicts_its_idle_replica_when_storage_is_short():
    # b stores 1 TB; x and y (1 TB each) live in a; copies take 80 s (as above).
    # t=0: X0, X1, X2 (x, high, 4 GPUs, 150 s) -> a (ratio 12/4 = 3); X0 runs 0-150, X1 150-300.
    #   Plan at 100: hot a, 8 GPUs of x queued -> copy x to b, 100-180 (b full). At 180 only X2
    #   is queued: a 8/4 = 2 > b (0+4)/4 = 1 -> X2 moves to b, runs 180-330.
    # t=310: Y0, Y1, Y2 (y, high, 4 GPUs, 150 s) -> a (b has no y); Y0 runs 310-460. Plan at
    #   400: a = 12/4 = 3; copying y to b needs 1 TB: b's x copy is the planner's, ready, and no
    #   job routed to b reads x (X2 ended at 330) -> Evict x from b, copy y 400-480. Y1 runs in a
    #   460-610; at 480 Y2 (a 8/4 = 2 > b 1) moves to b, runs 480-630.
    spec = cluster(("a", 1), ("b", 1), replication_gbps=100.0, region_storage_tb={"b": 1.0})
    jobs = [(f"X{i}", 0, 4, 150, 1, "a", "x") for i in range(3)] + \
        [(f"Y{i}", 310, 4, 150, 1, "a", "y") for i in range(3)]
    res = simulate(jobs, make("mast", plan_seconds=100), spec, dataset_size_tb=1.0)
    assert res.replications == [(100.0, "x", "b", 1.0), (400.0, "y", "b", 1.0)]
    frame = res.jobs_frame().set_index("job_id")
    assert frame["end_time"].to_dict() == {"X0": 150.0, "X1": 300.0, "X2": 330.0,
                                           "Y0": 460.0, "Y1": 610.0, "Y2": 630.0}
    assert frame["mast_region"].to_dict() == {"X0": 0, "X1": 0, "X2": 1, "Y0": 0, "Y1": 0, "Y2": 1}


def test_storage_budget_blocks_replication():
    # Same as above, but b's storage (0.5 TB) cannot hold x (1 TB): no copy, all three run in a.
    spec = cluster(("a", 1), ("b", 1), region_storage_tb={"a": 1.0, "b": 0.5})
    res = simulate([("J0", 0, 4, 1000, 1, "a", "x"), ("J1", 0, 4, 1000, 1, "a", "x"),
                    ("J2", 0, 4, 1000, 1, "a", "x")], make("mast", plan_seconds=100), spec,
                   dataset_size_tb=1.0)
    assert res.end_time.tolist() == [1000.0, 2000.0, 3000.0]
    assert res.replications == []


def test_engine_without_datasets_lets_mast_route_anywhere():
    # No dataset_size_tb: x is a label. A, B (high, 4 GPUs, 100 s, home a, x) -> a, then b
    #   ((4+4)/4 = 2 vs 4/4 = 1): both end at 100.
    spec = cluster(("a", 1), ("b", 1))
    jobs = run([("A", 0, 4, 100, 1, "a", "x"), ("B", 0, 4, 100, 1, "a", "x")], make("mast"), spec)
    assert jobs["mast_region"].to_dict() == {"A": 0, "B": 1}
    assert jobs["end_time"].to_dict() == {"A": 100.0, "B": 100.0}


@pytest.mark.parametrize("params", [{"plan_seconds": 0}, {"plan_seconds": -5.0},
                                    {"high_priority": 1.5}, {"dataset_tb": 1.0}])
def test_bad_parameters(params):
    with pytest.raises(ConfigError):
        make("mast", **params)


def test_bad_setups_are_config_errors():
    spec = cluster(("a", 1), ("b", 1))
    with pytest.raises(ConfigError, match="not regions"):
        run([("J", 0, 1, 10, 0, "z", "")], make("mast-pinned"), spec)
    with pytest.raises(ConfigError, match="no region holding dataset 'x' has that many"):
        run([("J", 0, 8, 10, 0, "a", "x")], make("mast"), spec, dataset_size_tb=1.0)


@pytest.mark.parametrize("name", ["mast", "mast-pinned"])
def test_random_multi_region_workload_runs_to_completion(name):
    # No hand values: the engine validates every op (a Start outside the job's routed region is an
    # error) and every job must end. Storage: a holds x, y, z initially (1.5 TB of 2), b and c
    # can take up to four 0.5 TB copies each.
    import numpy as np

    rng = np.random.default_rng(3)
    spec = cluster(("a", 2), ("b", 1), ("c", 3), region_storage_tb={"a": 2.0, "b": 2.0, "c": 2.0})
    rows, t = [], 0.0
    for i in range(150):
        t += float(rng.exponential(30.0))
        rows.append((f"j{i}", round(t), int(rng.choice([1, 2, 4, 8])), int(rng.integers(10, 2000)),
                     int(rng.random() < 0.4), str(rng.choice(["a", "a", "c"])),
                     str(rng.choice(["x", "y", "z"]))))
    # mast-pinned runs jobs in their home region, which may hold no copy of their dataset: its
    # engine does not model datasets.
    if name == "mast":
        sched, data = make(name, plan_seconds=300), {"dataset_size_tb": 0.5}
    else:
        sched, data = make(name), {}
    jobs = run(rows, sched, spec, **data)
    assert (jobs["state"] == "finished").all()
    assert set(jobs["mast_region"].astype(int)) <= {0, 1, 2}
    ratios = sched.demand_supply()
    assert set(ratios) == {"a", "b", "c"} and all(v["high"] <= v["all"] for v in ratios.values())
