"""PAL and Packed-Sticky: placements and JCTs computed by hand on tiny clusters.

The perf model here is a hand-set version of the ``throughput`` model's variability and locality
factors: a job runs at 1 / (slowdown of its slowest GPU for its class) / (lambda if it spans
nodes), so every JCT below is plain arithmetic.
"""

import numpy as np
import pytest

from dlsched_gym.baselines import make
from dlsched_gym.baselines.pal import slowdown_tiers
from dlsched_gym.errors import ConfigError
from dlsched_gym.perf import MODEL_INFO, canonical_model


class HandPerf:
    """rate = 1 / max_{g} slowdown[class][g] / (penalty if the gang spans nodes)."""

    name = "hand"

    def __init__(self, slowdown: dict[str, list[float]], penalty: float = 1.7) -> None:
        self.slowdown = slowdown
        self.penalty = penalty

    def reset(self, spec, jobs, rng):
        self._node = spec.gpu_node
        names = [canonical_model(jobs.names["model"][m]) for m in jobs.model]
        self._cls = [MODEL_INFO[k]["cls"] if k else "A" for k in names]

    def rate(self, job, gpus, sharers):
        pv = self.slowdown.get(self._cls[job], self.slowdown["A"])
        r = 1.0 / max(pv[g] for g in gpus.tolist())
        if len(set(self._node[gpus].tolist())) > 1:
            r /= self.penalty
        return r


RESNET = {"model": "resnet50"}  # class A
NCF = {"model": "ncf"}  # class D


def test_pal_avoids_the_slow_gpu(simulate):
    # One node, GPU 0 is 1.5x slower. A: 2 GPUs, 100 s.
    perf = HandPerf({"A": [1.5, 1.0, 1.0, 1.0]})
    jobs = [("A", 0, 2, 100, RESNET)]
    # PAL: tiers 0.8 (GPUs 1-3) and 1.2 (GPU 0); "within" at tier 0.8 -> GPUs 1, 2: 100 s.
    assert simulate(jobs, make("pal"), perf=perf)["jct"]["A"] == 100.0
    # Packed-Sticky: first free GPUs 0, 1 -> slowest 1.5: 150 s.
    assert simulate(jobs, make("packed-sticky"), perf=perf)["jct"]["A"] == 150.0


def test_pal_stays_in_one_node_when_the_penalty_outweighs_variability(simulate):
    # Two nodes of two GPUs; on each node the second GPU is 1.2x slower. B: 2 GPUs, 100 s.
    pv = [1.0, 1.2, 1.0, 1.2]
    jobs = [("B", 0, 2, 100, RESNET)]
    # Tiers: centroids 1.0, 1.2, median 1.1 -> sf 1/1.1 = 0.909 and 1.2/1.1 = 1.091.
    # lambda = 1.7: costs 0.909 (within: no node has two 0.909 GPUs), 1.091 (within: node 0,
    # GPUs 0-1) < 0.909 x 1.7 = 1.545 (across) -> one node, slowest 1.2: 120 s.
    frame = simulate(jobs, make("pal"), cluster="2x2-V100", perf=HandPerf({"A": pv}, 1.7))
    assert frame["jct"]["B"] == pytest.approx(120.0)
    # lambda = 1.1: across at tier 0.909 costs 1.0 < 1.091 -> GPUs 0 and 2, 1.0 x 1.1: 110 s.
    frame = simulate(jobs, make("pal", locality_penalty=1.1), cluster="2x2-V100",
                     perf=HandPerf({"A": pv}, 1.1))
    assert frame["jct"]["B"] == pytest.approx(110.0)


def test_pal_replaces_at_a_round_and_packed_sticky_does_not(simulate):
    # One node of two GPUs, GPU 1 twice as slow. A: 1 GPU 150 s, B: 1 GPU 300 s, both at 0.
    perf = HandPerf({"A": [1.0, 2.0]})
    jobs = [("A", 0, 1, 150, RESNET), ("B", 0, 1, 300, RESNET)]
    # 0: A -> GPU 0 (best tier), B -> GPU 1 (rate 0.5). A ends at 150; GPU 0 idles to the round.
    # 200 (round): B has done 100 s, moves to GPU 0 (preempted, restarted): 200 s more -> 400.
    frame = simulate(jobs, make("pal", round_seconds=100), cluster="1x2-V100", perf=perf)
    assert frame["jct"].to_dict() == {"A": 150.0, "B": 400.0}
    assert frame["preemptions"].to_dict() == {"A": 0, "B": 1}
    # With a 10 s restart overhead B works from 210: ends 410.
    frame = simulate(jobs, make("pal", round_seconds=100), cluster="1x2-V100", perf=perf,
                     restart_overhead=10.0)
    assert frame["jct"]["B"] == 410.0
    # Packed-Sticky keeps B on GPU 1: 300 x 2 = 600.
    frame = simulate(jobs, make("packed-sticky", round_seconds=100), cluster="1x2-V100", perf=perf)
    assert frame["jct"].to_dict() == {"A": 150.0, "B": 600.0}


def test_jobs_wait_for_the_next_round(simulate):
    # A arrives at 30 on an idle cluster; the next round is at 100: JCT 70 + 50 = 120.
    for name in ("pal", "packed-sticky"):
        frame = simulate([("A", 30, 1, 50)], make(name, round_seconds=100))
        assert frame["jct"]["A"] == 120.0


def test_pal_places_class_a_first(simulate):
    # Two GPUs; for class A GPU 1 is 2x slower, for class D 1.1x. FIFO order: D (ncf) then A.
    perf = HandPerf({"A": [1.0, 2.0], "D": [1.0, 1.1]})
    jobs = [("D", 0, 1, 100, NCF), ("A", 0, 1, 100, RESNET)]
    # The fitting prefix {D, A} is re-sorted by class: A -> GPU 0 (100 s), D -> GPU 1 (110 s).
    frame = simulate(jobs, make("pal"), cluster="1x2-V100", perf=perf)
    assert frame["jct"].to_dict() == {"D": pytest.approx(110.0), "A": 100.0}
    # Packed-Sticky in FIFO order: D -> GPU 0 (100 s), A -> GPU 1 (200 s).
    frame = simulate(jobs, make("packed-sticky"), cluster="1x2-V100", perf=perf)
    assert frame["jct"].to_dict() == {"D": 100.0, "A": 200.0}


def test_head_of_line_blocking(simulate):
    # One node of four GPUs. A (3 GPUs, 100 s), B (2 GPUs, 50 s), C (1 GPU, 50 s), all at 0.
    # Prefix by demand <= 4: A only (3 + 2 > 4). A placed; B does not fit -> stop: C waits
    # although a GPU is free. 100 (round 100 s): A ends, B and C start: both end at 150.
    jobs = [("A", 0, 3, 100), ("B", 0, 2, 50), ("C", 0, 1, 50)]
    frame = simulate(jobs, make("pal", round_seconds=100))
    assert frame["jct"].to_dict() == {"A": 100.0, "B": 150.0, "C": 150.0}


def test_packed_sticky_soft_consolidation_and_las_preemption(simulate):
    # Two nodes of two GPUs, LAS, 100 s rounds. A (3 GPUs, 300 s) at 0: no node holds it,
    # soft consolidation takes GPUs 0, 1 (node 0) and 2. B (2 GPUs, 100 s) at 50: waits for the
    # round at 100, where A has 300 GPU-s > B's 0: B first; only GPU 3 is free, so A (the last
    # in the order) is preempted and B takes node 0 (best fit among nodes with 2 free) -> B ends
    # at 200 (JCT 150). 200: A restarts with 200 s left -> ends 400.
    jobs = [("A", 0, 3, 300), ("B", 50, 2, 100)]
    frame = simulate(jobs, make("packed-sticky", policy="las", round_seconds=100), cluster="2x2-V100")
    assert frame["jct"].to_dict() == {"A": 400.0, "B": 150.0}
    assert frame["preemptions"].to_dict() == {"A": 1, "B": 0}


def test_slowdown_tiers_by_hand():
    # Three clear groups: silhouette 1.0 at K = 3; centroids 1, 2, 3, median 2.
    v = np.array([1, 1, 1, 2, 2, 2, 3, 3, 3], dtype=float)
    np.testing.assert_allclose(slowdown_tiers(v), [0.5] * 3 + [1.0] * 3 + [1.5] * 3)
    # At most 2 base tiers (the artifact's effective K1): {1, 2} and {4}: SSE 1.5 < 6.
    # Centroids 1.5 and 4, median 2.75 -> 1.5 / 2.75 and 4 / 2.75.
    v = np.array([1, 1, 1, 2, 2, 2, 4, 4, 4], dtype=float)
    np.testing.assert_allclose(slowdown_tiers(v, max_base_tiers=2),
                               [1.5 / 2.75] * 6 + [4 / 2.75] * 3)
    # An outlier: ten 1.0, ten 1.1 and 3.0; mean 24 / 21 = 1.143, sd 0.428 -> 3.0 > 2.43 is an
    # outlier: K = 2 + 1; centroids 1.0, 1.1, 3.0, median 1.1.
    v = np.array([1.0] * 10 + [1.1] * 10 + [3.0])
    np.testing.assert_allclose(slowdown_tiers(v), [1 / 1.1] * 10 + [1.0] * 10 + [3 / 1.1])
    assert (slowdown_tiers(np.ones(5)) == 1).all()


def test_pal_tiers_read_from_the_perf_model():
    # The throughput model's class-A slowdowns reach PAL through rate_with: its tiers are
    # monotone in the true per-GPU slowdown.
    from dlsched_gym.engine import Engine
    from dlsched_gym.perf import make_perf
    from dlsched_gym.workload import from_records

    wl = from_records([{"job_id": "A", "submit_time": 0, "num_gpus": 1, "duration": 10,
                        "model": "resnet50", "batch_size": 32}])
    eng = Engine(wl, "4x4-V100", perf=make_perf("throughput", variability="longhorn"),
                 timeline_interval=None)
    pal = make("pal")
    eng.run(pal)
    rates = np.array([eng.perf.rate(0, np.array([g]), 1) for g in range(16)])
    sf = pal.tiers(eng.view, 0)
    order = np.argsort(-rates, kind="stable")  # fastest GPU first: tiers never decrease
    assert (np.diff(sf[order]) >= 0).all() and len(np.unique(sf)) >= 2


@pytest.mark.parametrize("params, word", [
    ({"policy": "sjf"}, "policy"), ({"round_seconds": 0}, "round_seconds"),
    ({"locality_penalty": 0.5}, "locality_penalty"), ({"max_base_tiers": 1}, "max_base_tiers"),
])
def test_bad_parameters(params, word):
    with pytest.raises(ConfigError, match=word):
        make("pal", **params)


@pytest.mark.parametrize("policy", ["fifo", "las", "srtf"])
@pytest.mark.parametrize("name", ["pal", "packed-sticky"])
def test_random_workload_runs_to_completion(name, policy):
    # The engine validates every op; every job must finish, never faster than on ideal GPUs.
    from dlsched_gym.engine import FINISHED, Engine
    from dlsched_gym.perf import make_perf
    from dlsched_gym.workload import from_records

    rng = np.random.default_rng(1)
    t, rows = 0.0, []
    for i in range(60):
        t += float(rng.exponential(60.0))
        rows.append({"job_id": f"j{i}", "submit_time": round(t),
                     "duration": float(np.exp(rng.normal(6.0, 1.0))) + 1,
                     "num_gpus": int(rng.choice([1, 1, 2, 3, 4, 6, 8])),
                     "model": str(rng.choice(["resnet50", "bert", "vgg16", "ncf"]))})
    perf = make_perf("throughput", gpu_type=False, scaling=False, sharing=False,
                     variability="longhorn")
    res = Engine(from_records(rows), "4x4-V100", perf=perf, restart_overhead=5.0,
                 timeline_interval=None).run(make(name, policy=policy, round_seconds=120))
    assert (res.state == FINISHED).all()
    assert ((res.end_time - res.submit_time) >= res.duration - 1e-6).all()


def test_pal_keeps_a_job_whose_gpus_do_not_change(simulate):
    # Two nodes of two GPUs, node 0 1.2x slower; A: 3 GPUs (more than a node: PM-First), 102 s.
    # PM-First takes GPUs 2, 3 (best tier), then 0: slowest 1.2, spans nodes (1.7):
    # 102 x 1.2 x 1.7 = 208.08 s. LAS decides at every round (100, 200): the same GPUs come
    # back each time, so A is never restarted.
    perf = HandPerf({"A": [1.2, 1.2, 1.0, 1.0]})
    frame = simulate([("A", 0, 3, 102, RESNET)], make("pal", policy="las", round_seconds=100),
                     cluster="2x2-V100", perf=perf)
    assert frame["jct"]["A"] == pytest.approx(208.08)
    assert frame["preemptions"]["A"] == 0
