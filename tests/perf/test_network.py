"""The network-contention perf model and the engine's coupled-rate hook, by hand.

Bandwidth shares are in link units (capacity 1 per server; every node here has the default
100 Gbit/s link, the median). A distributed job's rate follows ``ThroughputModel``'s formula
with all factors off: ``r(b) = 1 / (1 + bits / (b x 100e9) x ips)``, ``bits`` its fp32 gradient
size (ResNet-50: 25.6M parameters x 32 bits) and ``ips`` the measured iterations per second of
its requested allocation (``perf.iterations_per_second``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlsched_gym import perf
from dlsched_gym.cluster import ClusterSpec, Node
from dlsched_gym.engine import FINISHED, REJECTED, Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.network import NetworkModel, default_ps, steady_state
from dlsched_gym.scheduler import Preempt, Resize, Start, Wake
from dlsched_gym.workload import from_records
from tests.core.test_engine_properties import RandomLegal
from tests.scripted import Scripted

# --------------------------------------------------------------------------- progressive filling

# Four jobs on four unit links: A on servers {0,1} with its PS on 3; B {0,2}; C {1,2}; D {2,3}
# (B, C, D without PS, as a candidate job is estimated).
WORKERS = [(0, 1), (0, 2), (1, 2), (2, 3)]
PS = [3, -1, -1, -1]


def test_progressive_filling_with_ample_ina_capacity():
    rates, residual = steady_state(np.ones(4), WORKERS, PS, ina_capacity=10.0)
    # INA on: every link carries one flow per job. Loads: s0 {A,B}=2, s1 {A,C}=2, s2 {B,C,D}=3,
    # s3 {D, A's PS}=2. Step 1: inc = min(1/2, 1/2, 1/3, 1/2) = 1/3 (INA: 10/4 > 1/3); s2 is the
    # bottleneck: B, C, D freeze at 1/3. Residuals: s0 1-2/3 = 1/3, s1 1/3, s2 0, s3 1/3.
    # Step 2: only A, load 1 on s0, s1, s3: inc = 1/3, A = 2/3; every residual 0.
    assert rates == pytest.approx([2 / 3, 1 / 3, 1 / 3, 1 / 3])
    assert residual == pytest.approx([0, 0, 0, 0])


def test_progressive_filling_falls_back_to_the_parameter_server():
    rates, residual = steady_state(np.ones(4), WORKERS, PS, ina_capacity=0.8)
    # Step 1: INA share 0.8/4 = 0.2 < 1/3: every job +0.2, INA used up, nobody freezes.
    #   Residuals: s0 1-0.4 = 0.6, s1 0.6, s2 1-0.6 = 0.4, s3 1-0.4 = 0.6.
    # Step 2 (no INA: A's PS link carries one flow per worker server = 2): loads s0 2, s1 2,
    #   s2 3, s3 1+2 = 3; shares .3, .3, .4/3 = 2/15, .2 -> inc 2/15 at s2: B, C, D freeze at
    #   0.2 + 2/15 = 1/3. Residuals: s0 .6-4/15 = 1/3, s1 1/3, s2 0, s3 .6-6/15 = .2.
    # Step 3: A alone: loads s0 1, s1 1, s3 2: shares 1/3, 1/3, .1 -> inc .1: A = 0.2+2/15+.1
    #   = 13/30 (2/3 with INA). Residuals: s0 = s1 = 1/3-.1 = 7/30, s3 0.
    assert rates == pytest.approx([13 / 30, 1 / 3, 1 / 3, 1 / 3])
    assert residual == pytest.approx([7 / 30, 7 / 30, 0, 0])


def test_no_ina_counts_one_ps_flow_per_worker_server():
    rates, _ = steady_state(np.ones(4), WORKERS, PS, ina_capacity=0.0)
    # Loads: s0 2, s1 2, s2 3, s3 1 + 2 = 3 -> inc 1/3; s2 and s3 saturate, all jobs freeze.
    assert rates == pytest.approx([1 / 3] * 4)


def test_default_ps_is_the_least_linked_server_counting_the_job():
    assert default_ps(np.array([0, 0, 0]), (0, 1)) == 2
    assert default_ps(np.array([1, 1, 1]), (1, 2)) == 0
    assert default_ps(np.array([0, 0]), (0, 1)) == 0  # ties: the lowest index


# --------------------------------------------------------------------------- the perf model

def test_registry_and_options():
    model = perf.make_perf("network")
    assert isinstance(model, NetworkModel) and model.ina_capacity == 10.0
    assert perf.make_perf("network", ina_capacity=0).ina_capacity == 0.0
    with pytest.raises(ConfigError, match="ina_capacity"):
        perf.make_perf("network", ina_capacity=-1)
    with pytest.raises(ConfigError, match="ina_capacity"):
        perf.make_perf("network", ina_capacity="x")
    with pytest.raises(ConfigError, match="bad option"):
        perf.make_perf("network", locality="pal")
    with pytest.raises(ConfigError, match="base"):
        NetworkModel(base=object())
    with pytest.raises(ConfigError, match="configure the given base"):
        NetworkModel(base=perf.ThroughputModel(), gpu_type=True)


RESNET_BITS = 25.6e6 * 32


def r(b):
    """The rate of a 2-GPU ResNet-50 (batch 64) job at bandwidth share ``b``."""
    ips = perf.iterations_per_second("ResNet-50", 64, 2)
    return 1.0 / (1.0 + RESNET_BITS / (b * 100e9) * ips)


def workload(*rows):
    """(name, num_gpus, duration) rows, all submitted at 0, ResNet-50 at batch 64."""
    return from_records([{"job_id": n, "submit_time": 0.0, "num_gpus": g, "duration": d,
                          "model": "ResNet-50", "batch_size": 64} for n, g, d in rows])


# 3 servers x 2 GPUs (GPUs 0-1 on server 0, 2-3 on 1, 4-5 on 2). A on servers {0,1}, B on {1,2},
# C (one GPU) on server 0. Default PSs: A: links after its workers [1,1,0] -> server 2; B: links
# [1,1,1] -> after its workers [1,2,2] -> server 0. Link loads (INA on: a PS link carries one
# flow): s0 {A, B's PS} 2, s1 {A, B} 2, s2 {A's PS, B} 2 -> both jobs get 1/2 (INA 10/2 = 5 does
# not bind). Once A is gone B is alone on every link it uses: share 1.
WL = workload(("A", 2, 100.0), ("B", 2, 200.0), ("C", 1, 50.0), ("D", 2, 10.0))
START = [Start(0, [0, 2]), Start(1, [3, 4]), Start(2, [1])]


def simulate(script):
    engine = Engine(WL, "3x2-V100", perf="network", timeline_interval=None)
    res = engine.run(Scripted(script))
    return engine, dict(zip(res.jobs_frame()["job_id"], res.jobs_frame()["end_time"]))


def test_two_jobs_sharing_a_link_get_half_and_the_survivor_is_re_rated():
    engine = Engine(WL, "3x2-V100", perf="network", timeline_interval=None)
    engine.reset(Scripted({}))
    engine.next_decision()
    engine.apply(START)
    assert engine.perf.placements() == {0: ((0, 1), 2), 1: ((1, 2), 0)}
    assert engine.perf.shares() == pytest.approx({0: 0.5, 1: 0.5})
    assert engine.rate[0] == pytest.approx(r(0.5)) and engine.rate[1] == pytest.approx(r(0.5))
    assert engine.rate[2] == 1.0  # one server: no network term, whoever shares its link
    # A ends at 100 / r(1/2). B has done the same 100 units by then and does its other 100 at
    # r(1): it ends 100 / r(1) later (without re-rating it would end at 200 / r(1/2)).
    _, end = simulate({0.0: lambda v: [*START]})
    t_a = 100 / r(0.5)
    assert end["A"] == pytest.approx(t_a)
    assert end["B"] == pytest.approx(t_a + 100 / r(1.0))
    assert end["B"] < 200 / r(0.5) - 1
    assert end["C"] == 50.0


def test_a_planners_what_if_rate_estimates_the_share_there():
    engine = Engine(WL, "3x2-V100", perf="network", timeline_interval=None)
    engine.reset(Scripted({}))
    engine.next_decision()
    engine.apply(START)
    # D on servers {0, 2}: links [2,2,2] -> after D's workers [3,2,3] -> PS on server 1. Every
    # link then carries 3 flows: D would get 1/3 (A and B too).
    assert engine.view.rate_with(3, np.array([1, 5])) == pytest.approx(r(1 / 3))
    assert engine.view.rate_with(0, np.array([0, 2])) == pytest.approx(r(0.5))  # A where it is
    assert engine.view.rate_with(3, np.array([5])) == 0.5  # one GPU of two: linear, no network
    assert engine.perf.shares() == pytest.approx({0: 0.5, 1: 0.5})  # queries change nothing


def test_resize_off_the_shared_link_re_rates_the_other_job():
    # t=10: A moves to GPUs 0, 1 (server 0 only): no network term, rate 1; B alone: share 1.
    _, end = simulate({0.0: lambda v: [Start(0, [0, 2]), Start(1, [3, 4]), Wake(10.0)],
                       10.0: lambda v: [Resize(0, [0, 1])]})
    done = 10 * r(0.5)
    assert end["A"] == pytest.approx(10 + 100 - done)
    assert end["B"] == pytest.approx(10 + (200 - done) / r(1.0))


def test_preemption_re_rates_the_other_job():
    # 0-10: A and B at r(1/2). t=10: A preempted, B alone at r(1). t=20: A restarts on servers
    # {0, 2}: links (B: workers 1, 2, PS 0) [1,1,1], after A's workers [2,1,2] -> A's PS on
    # server 1; loads s0 {A, B's PS} 2, s1 {B, A's PS} 2, s2 {A, B} 2: both at 1/2 again. A has
    # less left, ends first; then B alone at r(1).
    engine, end = simulate({0.0: lambda v: [*START, Wake(10.0)],
                            10.0: lambda v: [Preempt(0), Wake(20.0)],
                            20.0: lambda v: [Start(0, [0, 5])]})
    rh, rf = r(0.5), r(1.0)
    a_end = 20 + (100 - 10 * rh) / rh
    b_left = 200 - 10 * rh - 10 * rf - (a_end - 20) * rh
    assert end["A"] == pytest.approx(a_end)
    assert end["B"] == pytest.approx(a_end + b_left / rf)
    assert engine.preemptions[0] == 1


def test_a_what_if_clone_has_its_own_network_state():
    engine = Engine(WL, "3x2-V100", perf="network", timeline_interval=None)
    engine.reset(Scripted({}))
    engine.next_decision()
    engine.apply(START)
    clone = engine.clone()
    clone.continue_run(Scripted({}))
    assert clone.state[:2] == [FINISHED, FINISHED] and clone.perf is not engine.perf
    assert engine.perf.placements() == {0: ((0, 1), 2), 1: ((1, 2), 0)}
    assert engine.perf.shares() == pytest.approx({0: 0.5, 1: 0.5})
    engine.continue_run(Scripted({}))
    assert engine.end_time[:2] == clone.end_time[:2]


def test_parameter_server_hint():
    engine = Engine(WL, "3x2-V100", perf="network", timeline_interval=None)
    engine.reset(Scripted({}))
    engine.next_decision()
    engine.perf.set_parameter_server(0, 1)  # A's PS on its own worker server 1: that link
    engine.apply([Start(0, [0, 2])])        # carries 2 of A's flows -> A gets 1/2 alone
    assert engine.perf.placements() == {0: ((0, 1), 1)}
    assert engine.rate[0] == pytest.approx(r(0.5))
    with pytest.raises(ConfigError, match="PS server"):
        engine.perf.set_parameter_server(1, 3)


# --------------------------------------------------------------------------- random ops

def check_consistent(engine):
    """The model holds exactly the running jobs that span servers, its shares are the steady
    state of those placements, and every running job's engine rate is the model's current rate
    (no job was left at a stale rate)."""
    model = engine.perf
    node = engine.spec.gpu_node
    spanning = {j for j, g in engine.alloc.items() if len(set(node[g].tolist())) > 1}
    placed = model.placements()
    assert set(placed) == spanning
    ids = list(placed)
    rates, _ = steady_state(model.capacity, [placed[j][0] for j in ids], [placed[j][1] for j in ids],
                            model.ina_capacity)
    assert model.shares() == pytest.approx(dict(zip(ids, rates.tolist())))
    for j, g in engine.alloc.items():
        sharers = int(engine.gpu_load[g].max())
        assert engine.rate[j] == pytest.approx(model.rate(j, g, sharers), rel=1e-12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(st.floats(0, 300), st.floats(1, 300), st.integers(1, 4),
                               st.booleans()), min_size=1, max_size=15),
       nodes=st.integers(2, 4), gpus=st.integers(1, 3), share=st.integers(1, 2),
       ina=st.sampled_from([0.0, 0.5, 10.0]), seed=st.integers(0, 2**16))
def test_random_legal_ops_keep_every_rate_current(rows, nodes, gpus, share, ina, seed):
    records = [{"job_id": f"j{i}", "submit_time": t, "duration": d, "num_gpus": g,
                "max_gpus": g + 1 if elastic else g, "model": "ResNet-50", "batch_size": 64}
               for i, (t, d, g, elastic) in enumerate(rows)]
    spec = ClusterSpec(tuple(Node(gpus=gpus, bandwidth_gbps=50.0 if i == 0 else 100.0)
                             for i in range(nodes)), gpu_share_limit=share)
    if max(g for _, _, g, _ in rows) > spec.num_gpus:
        return
    engine = Engine(from_records(records), spec, perf=perf.make_perf("network", ina_capacity=ina),
                    seed=seed, timeline_interval=None)
    sched = RandomLegal(seed, None)
    engine.reset(sched)
    while engine.next_decision():
        check_consistent(engine)
        engine.apply(sched.schedule(engine.view))
        check_consistent(engine)
    assert all(s in (FINISHED, REJECTED) for s in engine.state) or engine.stalled
    assert engine.perf.placements() == {} or engine.alloc
