"""Gandiva (time-slicing, packing, migration, grow-shrink): JCTs computed by hand."""

import numpy as np
import pytest

from dlsched_gym.baselines import make
from dlsched_gym.cluster import ClusterSpec, Node
from dlsched_gym.engine import FINISHED, Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.perf import make_perf, pair_factor
from dlsched_gym.workload import from_records

SHARED_GPU = ClusterSpec(nodes=(Node(gpus=1),), gpu_share_limit=2, name="1x1-V100-share2")
# Rates: 1 alone on a V100; Gavel's measured pair factor when co-located.
PERF = make_perf("throughput", variability=None, locality=None, scaling=False)


def test_gandiva_time_slices_two_jobs_on_one_gpu(simulate):
    frame = simulate([("A", 0, 1, 120), ("B", 0, 1, 60)], make("gandiva"), cluster="1x1-V100")
    # 0: A starts (queue order), B waits. 60: A's quantum is over and B has waited longer
    # than A (queued 0 < 60): A suspended after 60 s of work, B runs 60-120 and ends.
    # 120: A resumes for its last 60 s: ends 180.
    assert frame["jct"].to_dict() == {"A": 180.0, "B": 120.0}
    assert frame["preemptions"].to_dict() == {"A": 1, "B": 0}


def test_gandiva_packs_a_compatible_pair(simulate):
    jobs = [("A", 0, 1, 600, {"model": "ResNet-18", "batch_size": 32}),
            ("B", 0, 1, 300, {"model": "A3C", "batch_size": 0})]
    frame = simulate(jobs, make("gandiva"), cluster=SHARED_GPU, perf=PERF)
    fa = pair_factor("ResNet-18", 32, "A3C", 0)  # 1.0: ResNet-18 does not slow down
    fb = pair_factor("A3C", 0, "ResNet-18", 32)  # ~0.802
    assert fa == 1.0 and fb == pytest.approx(0.802419)
    # 0: A starts; B does not fit and is packed on A's GPU (0.19 + 0.72 GB of model state).
    # 60: measured fa + fb = 1.80 >= 1: the pair stays. B ends at 300 / fb; A at 600 / 1.
    assert frame["jct"].to_dict() == pytest.approx({"A": 600.0, "B": 300.0 / fb})
    assert frame["preemptions"].to_dict() == {"A": 0, "B": 0}


def test_gandiva_undoes_a_packing_that_loses_throughput(simulate):
    rn50 = {"model": "ResNet-50", "batch_size": 64}
    frame = simulate([("A", 0, 1, 600, rn50), ("B", 0, 1, 600, rn50)], make("gandiva"),
                     cluster=SHARED_GPU, perf=PERF)
    f = pair_factor("ResNet-50", 64, "ResNet-50", 64)  # 0.498125
    assert f == 0.498125
    # 0-60 packed: each does 60 f = 29.8875 s of work. 60: 2 f = 0.99625 < 1: B suspended,
    # never packed with A again. A (quantum expired at 60) ties with B (queued at 60): the
    # running job stays. From then on, 60 s slices: A runs [60, 120], [180, 240], ...;
    # B [120, 180], ... A needs 570.1125 s more: 9 slices + 30.1125 s -> ends
    # 60 + 9 x 120 + 30.1125 = 1170.1125. B has 29.8875 + 9 x 60 = 569.8875 done, resumes at
    # 1170.1125 and ends 30.1125 s later: 1200.225.
    assert frame["jct"].to_dict() == pytest.approx({"A": 1170.1125, "B": 1200.225})
    assert frame["preemptions"].to_dict() == {"A": 9, "B": 10}


@pytest.mark.parametrize("migration, j4", [(True, 100.0), (False, 900.0)])
def test_gandiva_migrates_to_defragment(simulate, migration, j4):
    jobs = [("J1", 0, 1, 1000), ("J2", 0, 1, 100), ("J3", 10, 1, 1000), ("J4", 200, 2, 100)]
    frame = simulate(jobs, make("gandiva", migration=migration), cluster="2x2-V100")
    # Best fit: J1, J2 on node 0, J3 on node 1. J2 ends at 100: one free GPU per node.
    # 200: J4 needs 2 GPUs on one node. With migration, J1 (node 0 comes first among the nodes
    # with the most free GPUs) moves to node 1 and J4 runs 200-300. Without, the quota says it
    # fits but no node has 2 free GPUs: J4 waits for J1 to end at 1000 and ends at 1100.
    assert frame["jct"].to_dict() == {"J1": 1000.0, "J2": 100.0, "J3": 1000.0, "J4": j4}
    assert frame["preemptions"].sum() == 0


def test_gandiva_grows_and_shrinks_elastic_jobs(simulate):
    jobs = [("A", 0, 1, 400, {"min_gpus": 1, "max_gpus": 4}),
            ("B", 100, 1, 100, {"min_gpus": 1, "max_gpus": 1})]
    frame = simulate(jobs, make("gandiva"), cluster="1x4-V100")
    # Duration model: rate = GPUs / requested. 0-60 on 1 GPU: 60 done. 60 (quantum): nobody
    # waits, A grows to 4 GPUs: 60-100 at rate 4 -> 220 done. 100: B waits: A shrinks to 1,
    # B starts, nobody waits, A grows onto the 2 idle GPUs: rate 3, 180 left -> ends 160.
    # B runs 100-200.
    assert frame["jct"].to_dict() == {"A": 160.0, "B": 100.0}


@pytest.mark.parametrize("param, bad", [("quantum", 0), ("quantum", -1), ("packing", "yes"),
                                        ("migration", 1), ("grow_shrink", None)])
def test_gandiva_bad_parameters(param, bad):
    with pytest.raises(ConfigError, match=param):
        make("gandiva", **{param: bad})


@pytest.mark.parametrize("seed", [0, 1])
def test_gandiva_runs_random_workloads_to_the_end(seed):
    # Every mechanism at once (sharing, elastic jobs, fragmentation on 4-GPU nodes); the engine
    # validates every op, and every job must finish.
    rng = np.random.default_rng(seed)
    models = [("ResNet-18", 32), ("ResNet-50", 64), ("A3C", 0), ("Transformer", 64), ("LM", 20)]
    rows, t = [], 0.0
    for i in range(80):
        t += float(rng.exponential(30.0))
        n = int(rng.choice([1, 1, 1, 2, 4]))
        m, b = models[int(rng.integers(len(models)))]
        rows.append({"job_id": f"j{i}", "submit_time": round(t), "num_gpus": n,
                     "duration": float(np.exp(rng.normal(5.0, 1.0))), "model": m, "batch_size": b,
                     "min_gpus": n, "max_gpus": n * int(rng.choice([1, 2]))})
    spec = ClusterSpec(nodes=tuple(Node(gpus=4) for _ in range(2)), gpu_share_limit=2, name="2x4-share2")
    res = Engine(from_records(rows), spec, perf=PERF, restart_overhead=5.0, resize_overhead=2.0,
                 timeline_interval=None).run(make("gandiva"))
    assert (res.state == FINISHED).all()
