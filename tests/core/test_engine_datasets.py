"""Data placement in the engine (datasets, replicas, storage, replication delay): hand-computed.

Cluster: region a = node 0 (GPUs 0-3), region b = nodes 1 and 2 (GPUs 4-7, 8-11); replication at
10 Gbit/s, so a copy of s TB takes s x 8e12 / 1e10 = 800 x s seconds. The perf model reproduces
trace durations, so a job's run time is its duration once it makes progress.
"""

from __future__ import annotations

import math

import pytest

from dlsched_gym.cluster import ClusterSpec, Node, from_toml
from dlsched_gym.engine import Engine
from dlsched_gym.errors import ClusterSpecError, ConfigError, SchedulerError
from dlsched_gym.scheduler import Evict, Preempt, Replicate, Route, Start
from dlsched_gym.workload import from_records


def cluster(storage=None, gbps=10.0) -> ClusterSpec:
    """Regions a (one 4-GPU node) and b (two 4-GPU nodes)."""
    nodes = (Node(gpus=4, region="a", rack="a0"), Node(gpus=4, region="b", rack="b0"),
             Node(gpus=4, region="b", rack="b1"))
    return ClusterSpec(nodes=nodes, name="two-regions", region_storage_tb=storage or {},
                       replication_gbps=gbps)


def engine(jobs, spec=None, **options) -> Engine:
    """``jobs``: (id, submit, gpus, duration, home region, dataset)."""
    rows = [{"job_id": i, "submit_time": s, "num_gpus": g, "duration": d, "region": r,
             "dataset": ds} for i, s, g, d, r, ds in jobs]
    options.setdefault("dataset_size_tb", {"x": 2.0, "y": 2.0})
    return Engine(from_records(rows), spec or cluster(), timeline_interval=None, **options)


def drive(eng: Engine, script: dict[float, list]) -> list[float]:
    """Run to the end applying ``script[now]`` at each decision point; returns the times."""
    eng.reset()
    times = []
    while eng.next_decision():
        times.append(eng.now)
        eng.apply(script.get(eng.now, []))
    return times


JOBS = [("J0", 0, 4, 5000, "a", "x"), ("J1", 0, 4, 100, "a", "x"), ("J2", 0, 4, 50, "b", "")]


def test_replication_delay_and_view():
    # x (2 TB) starts in a, the home of its jobs. Replicate to b at t=0: 2 x 800 = 1600 s, so
    # ready at 1600, a decision point of its own; b's storage holds x from the start.
    eng = engine([("J0", 0, 4, 5000, "a", "x")])
    eng.reset()
    assert eng.next_decision() and eng.now == 0.0
    view = eng.view
    assert view.datasets_modelled
    assert view.replicas("x") == {"a": 0.0}
    eng.apply([Start(0, [0, 1, 2, 3]), Replicate("x", "b")])
    assert view.replicas("x") == {"a": 0.0, "b": 1600.0}
    assert view.storage_used_tb("b") == 2.0 and view.storage_free_tb("b") == math.inf
    assert view.dataset_size_tb("x") == 2.0
    assert eng.next_decision() and eng.now == 1600.0
    res = eng.result()
    assert res.replications == [(0.0, "x", "b", 2.0)]


def test_start_waits_for_the_copy_in_flight():
    # t=0: J0 (x) in a; copy x to b (ready 1600); J1 (x, 100 s) starts in b on GPUs 4-7 and holds
    # them without progress until 1600: ends 1600 + 100 = 1700. J2 (no dataset, 50 s) on 8-11 is
    # not gated: ends 50. J0 ends 5000.
    eng = engine(JOBS)
    times = drive(eng, {0.0: [Start(0, [0, 1, 2, 3]), Replicate("x", "b"), Route(1, "b"),
                              Start(1, [4, 5, 6, 7]), Start(2, [8, 9, 10, 11])]})
    res = eng.result()
    assert res.end_time.tolist() == [5000.0, 1700.0, 50.0]
    assert res.start_time.tolist() == [0.0, 0.0, 0.0]
    assert times == [0.0, 50.0, 1600.0, 1700.0, 5000.0]


def test_start_after_the_copy_is_ready_is_not_delayed():
    # The copy of x to b is ready at 1600; J1 starts in b then (the copy's own decision point):
    # ends 1600 + 100 = 1700 with no extra wait.
    eng = engine(JOBS)
    drive(eng, {0.0: [Start(0, [0, 1, 2, 3]), Replicate("x", "b"), Start(2, [8, 9, 10, 11])],
                1600.0: [Start(1, [4, 5, 6, 7])]})
    assert eng.result().end_time.tolist() == [5000.0, 1700.0, 50.0]


def test_restart_overhead_and_copy_wait_overlap():
    # J1 runs in a 0-10 (10 of 100 s done), is preempted at 10 and restarts in b at 10 with a
    # 30 s restart overhead; the copy to b is ready at 1600 > 10 + 30, so progress resumes at
    # 1600 and the remaining 90 s end it at 1690.
    eng = engine([("J1", 0, 4, 100, "a", "x"), ("W", 10, 1, 1, "b", "")], restart_overhead=30.0)
    drive(eng, {0.0: [Start(0, [0, 1, 2, 3]), Replicate("x", "b")],
                10.0: [Preempt(0), Start(0, [4, 5, 6, 7]), Start(1, [8])]})
    assert eng.result().end_time.tolist() == [1690.0, 11.0]


def test_jobs_without_datasets_and_engines_without_sizes_are_not_gated():
    # Without dataset_size_tb the dataset column is a label: J1 (x) starts in b at once, ends 100.
    eng = engine(JOBS, dataset_size_tb=None)
    drive(eng, {0.0: [Start(0, [0, 1, 2, 3]), Start(1, [4, 5, 6, 7])]})
    assert eng.result().end_time.tolist()[:2] == [5000.0, 100.0]
    assert not eng.view.datasets_modelled
    with pytest.raises(SchedulerError, match="does not model datasets"):
        eng.apply([Replicate("x", "b")])


def test_bad_ops_name_dataset_region_and_reason():
    eng = engine(JOBS)
    eng.reset()
    eng.next_decision()
    with pytest.raises(SchedulerError, match="region 'b' holds no replica of dataset 'x'"):
        eng.apply([Start(1, [4, 5, 6, 7])])
    assert eng.state[1] == 1  # still queued: the failed Start changed nothing
    with pytest.raises(SchedulerError, match="unknown dataset 'z'"):
        eng.apply([Replicate("z", "b")])
    with pytest.raises(SchedulerError, match="unknown region 'c'"):
        eng.apply([Replicate("x", "c")])
    with pytest.raises(SchedulerError, match=r"Replicate\('x', 'a'\): the region already holds a ready"):
        eng.apply([Replicate("x", "a")])
    with pytest.raises(SchedulerError, match=r"Evict\('x', 'a'\): it is the dataset's last ready"):
        eng.apply([Evict("x", "a")])
    with pytest.raises(SchedulerError, match="holds no replica"):
        eng.apply([Evict("x", "b")])
    eng.apply([Replicate("x", "b")])
    with pytest.raises(SchedulerError, match="in flight until 1600 s"):
        eng.apply([Replicate("x", "b")])
    with pytest.raises(SchedulerError, match=r"Evict\('x', 'b'\): the copy is in flight until 1600"):
        eng.apply([Evict("x", "b")])


def test_storage_full_and_evict():
    # b stores 3 TB: x (2 TB) fits, then y (2 TB) does not (1 TB free). At 1600 x is ready in b;
    # J0 (x) runs in a, so a's copy is in use and cannot go, but b's can: evicting it frees b,
    # and y fits. Evicting a's x instead is refused while J0 runs there.
    spec = cluster(storage={"b": 3.0})
    eng = engine([("J0", 0, 4, 5000, "a", "x"), ("Y", 0, 1, 1, "a", "y")], spec)
    eng.reset()
    eng.next_decision()
    eng.apply([Start(0, [0, 1, 2, 3]), Replicate("x", "b")])
    with pytest.raises(SchedulerError, match=r"Replicate\('y', 'b'\): storage full: the dataset "
                                             r"needs 2 TB, the region has 1 TB free of 3 TB"):
        eng.apply([Replicate("y", "b")])
    while eng.now < 1600.0:
        assert eng.next_decision()
    assert eng.now == 1600.0
    with pytest.raises(SchedulerError, match="job 0 runs in the region and reads the dataset"):
        eng.apply([Evict("x", "a")])
    eng.apply([Evict("x", "b"), Replicate("y", "b")])
    assert eng.view.replicas("x") == {"a": 0.0}
    # y: ready at 1600 + 1600 = 3200; b holds 2 of 3 TB.
    assert eng.view.replicas("y") == {"a": 0.0, "b": 3200.0}
    assert eng.view.storage_free_tb("b") == 1.0


def test_initial_copies_count_in_storage_and_can_be_evicted_once_copied():
    # x and y (2 TB each) start in a: 4 TB > a's 3 TB -> error. With a = 4 TB: copy x to b, ready
    # at 1600; X (x, 5000 s) starts in b at 0, waits for the copy, ends 1600 + 5000 = 6600. At
    # 1600 a's copy of x may go (b's is ready, no job reads x in a): a holds 2 TB (y), b 2 TB.
    with pytest.raises(ConfigError, match="need 4 TB in region 'a', whose storage is 3 TB"):
        engine([("X", 0, 1, 1, "a", "x"), ("Y", 0, 1, 1, "a", "y")], cluster(storage={"a": 3.0}))
    eng = engine([("X", 0, 1, 5000, "a", "x"), ("Y", 0, 1, 1, "a", "y")], cluster(storage={"a": 4.0}))
    drive(eng, {0.0: [Replicate("x", "b"), Start(0, [4]), Start(1, [0])],
                1600.0: [Evict("x", "a")]})
    assert eng.result().end_time.tolist() == [6600.0, 1.0]
    assert eng.replicas[0] == {1: 1600.0}
    assert eng.storage_used == [2.0, 2.0]


def test_default_initial_replica_is_the_most_common_home_region():
    # x: homes a, b, b -> b. y: homes a, b -> tie -> a (lower index). z: home "elsewhere" is not a
    # region -> the region with the most GPUs (b, 8 > 4).
    eng = engine([("1", 0, 1, 1, "a", "x"), ("2", 0, 1, 1, "b", "x"), ("3", 0, 1, 1, "b", "x"),
                  ("4", 0, 1, 1, "a", "y"), ("5", 0, 1, 1, "b", "y"),
                  ("6", 0, 1, 1, "elsewhere", "z")], dataset_size_tb=1.0)
    view = eng.view
    assert [view.replicas(d) for d in "xyz"] == [{"b": 0.0}, {"a": 0.0}, {"b": 0.0}]
    assert view.storage_used_tb("a") == 1.0 and view.storage_used_tb("b") == 2.0
    eng = engine(JOBS, initial_replicas={"x": ["a", "b"]})
    assert eng.view.replicas("x") == {"a": 0.0, "b": 0.0}


@pytest.mark.parametrize(("options", "match"), [
    ({"dataset_size_tb": {"y": 1.0}}, r"no size for datasets \['x'\]"),
    ({"dataset_size_tb": -1.0}, "must be a finite number of TB > 0"),
    ({"dataset_size_tb": None, "initial_replicas": {"x": ["a"]}}, "needs dataset_size_tb"),
    ({"initial_replicas": {"x": ["c"]}}, "must list regions"),
    ({"initial_replicas": {"w": ["a"]}}, "no job reads"),
])
def test_bad_engine_options(options, match):
    with pytest.raises(ConfigError, match=match):
        engine(JOBS, **options)


def test_clone_copies_the_data_placement():
    # x and y (2 TB each) start in a (4 TB); the original copies x to b (2 TB), the clone also y.
    eng = engine([*JOBS, ("Y", 0, 1, 1, "a", "y")])
    eng.reset()
    eng.next_decision()
    eng.apply([Replicate("x", "b")])
    twin = eng.clone()
    twin.apply([Replicate("y", "b")])
    assert eng.view.replicas("y") == {"a": 0.0}
    assert eng.storage_used == [4.0, 2.0] and twin.storage_used == [4.0, 4.0]
    assert len(eng.replication_log) == 1 and len(twin.replication_log) == 2
    # The copy's event is in the clone's heap too: the clone decides at 1600.
    twin.apply([Start(0, [0, 1, 2, 3])])
    assert twin.next_decision() and twin.now == 1600.0


def test_cluster_storage_and_bandwidth_validation(tmp_path):
    with pytest.raises(ClusterSpecError, match="names region 'c'"):
        cluster(storage={"c": 1.0})
    with pytest.raises(ClusterSpecError, match=r"region_storage_tb\['a'\] must be a number"):
        cluster(storage={"a": -1.0})
    with pytest.raises(ClusterSpecError, match="replication_gbps must be"):
        cluster(gbps=0.0)
    path = tmp_path / "c.toml"
    path.write_text('replication_gbps = 40\n[[nodes]]\ngpus = 4\nregion = "a"\n'
                    '[[nodes]]\ngpus = 4\nregion = "b"\n[region_storage_tb]\na = 5\n')
    spec = from_toml(path)
    assert spec.replication_gbps == 40 and spec.storage_tb("a") == 5.0
    assert spec.storage_tb("b") == math.inf
