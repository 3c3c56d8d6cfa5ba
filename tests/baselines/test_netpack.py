"""NetPack-inspired placement: server choice and contention, by hand.

Bandwidths are in link units (capacity 1 per server). The simulations run the engine's
``network`` perf model on a stub base model in which a distributed job's speed equals its
bandwidth share ``b`` (a purely communication-bound job: rate = b), so JCTs follow from the
shares by hand. (Progressive filling itself is tested in ``tests/perf/test_network.py``.)
"""

import numpy as np
import pytest

from dlsched_gym.baselines import make
from dlsched_gym.baselines.netpack import NetPack, OrderedPlacement
from dlsched_gym.engine import Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.evaluate import expand_grid, simulate_cell
from dlsched_gym.network import NetworkModel
from dlsched_gym.perf import make_perf
from dlsched_gym.workload import from_records


class BandwidthBound:
    """Stub base model: rate 1 on one node; a distributed job runs at its share b (link units).
    The network model passes ring-equivalent Gbit/s ``b x 100 x 2(n-1)/n`` (median link
    100 Gbit/s)."""

    def reset(self, spec, jobs, rng):
        self._n = jobs.num_gpus

    def rate(self, job, gpus, sharers):
        return 1.0

    def rate_with_bandwidth(self, job, gpus, shares, sharers=1):
        n = int(self._n[job])
        return min(shares.values()) / (100.0 * 2 * (n - 1) / n)


# X: 3 GPUs at t=0, Y: 4 GPUs at t=1, 100 s of work each, on 6 servers x 2 GPUs.
JOBS = [("X", 0, 3, 100), ("Y", 1, 4, 100)]


def run(placement):
    rows = [{"job_id": j, "submit_time": t, "num_gpus": g, "duration": d} for j, t, g, d in JOBS]
    sched = make("netpack", placement=placement, batch_seconds=0)
    engine = Engine(from_records(rows), "6x2-V100", perf=NetworkModel(base=BandwidthBound()),
                    timeline_interval=None)
    engine.reset(sched)
    seen = {}
    while engine.next_decision():
        engine.apply(sched.schedule(engine.view))
        if engine.now == 1:
            seen = {"placements": sched.placements(), "rates": sched.network_rates()}
            # the engine's model holds the same placements and shares
            assert engine.perf.placements() == seen["placements"]
            assert engine.perf.shares() == pytest.approx(seen["rates"])
    frame = engine.result(sched.name).jobs_frame().set_index("job_id")
    return seen, frame["jct"].to_dict()


def test_netpack_keeps_a_distributed_job_off_the_congested_link():
    seen, jct = run("netpack")
    # X (3 GPUs > 2 per server): DP, every v_i = r_i - 1/(l_i+1) = 1 - 1 = 0; no exact 3 with
    # weights 2, so totals 4..5: any pair scores 0 + 0 + 1/(1+0) = 1, first pair {0,1}; trim the
    # extra GPU from server 1 (tie -> later). PS: with X added (rate 1) r' = [0,0,1,1,1,1] ->
    # server 2. Links [1,1,1,0,0,0], X's rate 1, residual [0,0,0,1,1,1].
    # Y (4 GPUs): v1 = v2 = 0 - 1/2, v3..v5 = 1 - 1 = 0. Exact 4: {3,4} scores 0+0+1 = 1,
    # {2,3} -1/2+0+1/2 = 0; 5 GPUs {1,3,4}: -1/2+0+0+1/2 = 0 -> {3,4}. PS: r' = [0,0,0,0,0,1]
    # -> server 5. No link is shared: both jobs keep b = 1.
    assert seen["placements"] == {0: ((0, 1), 2), 1: ((3, 4), 5)}
    assert seen["rates"] == pytest.approx({0: 1.0, 1: 1.0})
    # rate = b = 1: X 0-100, Y 1-101.
    assert jct == pytest.approx({"X": 100.0, "Y": 100.0})


def test_least_fragment_shares_the_congested_link_and_both_jobs_slow_down():
    seen, jct = run("least-fragment")
    # Most-used servers first: server 0 full, server 1 (1 used) gives 1, server 2 gives 2,
    # server 3 gives 1 -> Y on {1,2,3}; PS on the fewest links after it, links
    # [1,2,2,1,0,0] -> server 4. Server 1 carries X and Y, server 2 X's PS and Y: both b = 1/2.
    assert seen["placements"] == {0: ((0, 1), 2), 1: ((1, 2, 3), 4)}
    assert seen["rates"] == pytest.approx({0: 0.5, 1: 0.5})
    # X: 1 unit by t=1, then 99 at 0.5 -> ends 1 + 198 = 199. Y: 99 units by t=199 at 0.5,
    # then alone at b = 1 (the engine re-rates it when X ends): ends 200, JCT 199.
    assert jct == pytest.approx({"X": 199.0, "Y": 199.0})


@pytest.mark.parametrize("placement, workers", [
    # used GPUs [2,1,0,0,0,0] (X as above), links [1,1,1,0,0,0]; Y needs 4.
    ("gpu-balance", (2, 3)),      # least used first: servers 2, 3 (2 each)
    ("link-balance", (3, 4)),     # fewest links first: 3, 4
    ("tetris", (3, 4)),           # used*4/4 + links: [3,2,1,0,0,0] -> 3, 4
    ("spread", (2, 3)),           # least used prefix {2,3} holds 4; round-robin 2 + 2
])
def test_placement_baselines(placement, workers):
    seen, _ = run(placement)
    assert seen["placements"][1][0] == workers


def test_default_perf_slows_a_spanning_job_by_its_share():
    # Real throughput model (VGG-16): Y's rate with a half share of its links (least-fragment)
    # is lower than with full links (netpack).
    rows = [{"job_id": j, "submit_time": t, "num_gpus": g, "duration": d, "model": "vgg16",
             "batch_size": 32} for j, t, g, d in JOBS]
    rate = {}
    for placement in ("netpack", "least-fragment"):
        sched = make("netpack", placement=placement, batch_seconds=0)
        engine = Engine(from_records(rows), "6x2-V100", perf="network", timeline_interval=None)
        engine.reset(sched)
        while engine.next_decision() and engine.now < 1:
            engine.apply(sched.schedule(engine.view))
        engine.apply(sched.schedule(engine.view))
        rate[placement] = engine.rate[1]
    assert rate["least-fragment"] < rate["netpack"]


def test_batches_wait_for_the_period():
    rows = [{"job_id": "A", "submit_time": 10, "num_gpus": 1, "duration": 50}]
    sched = make("netpack", batch_seconds=60)
    frame = Engine(from_records(rows), "2x2-V100", perf="network",
                   timeline_interval=None).run(sched).jobs_frame().set_index("job_id")
    # Arrives at 10, placed at the batch boundary 60, runs 50 s on one node (no network): 110.
    assert frame.loc["A", "start_time"] == 60.0
    assert frame.loc["A", "jct"] == 100.0


def test_bad_parameters():
    with pytest.raises(ConfigError):
        NetPack(placement="best")
    with pytest.raises(ConfigError):
        NetPack(ina_capacity=-1)
    with pytest.raises(ConfigError):
        NetPack(batch_seconds=float("nan"))
    with pytest.raises(ConfigError):
        NetPack(waiting="x")
    with pytest.raises(TypeError):
        NetPack(base_perf=object())  # the rate model is the engine's (perf="network")
    with pytest.raises(ConfigError):
        OrderedPlacement("netpack")


@pytest.mark.parametrize("placement", ["netpack", *OrderedPlacement.KINDS])
def test_random_workload_runs_to_completion(placement):
    rng = np.random.default_rng(3)
    rows, t = [], 0.0
    for i in range(60):
        t += float(rng.exponential(30.0))
        rows.append({"job_id": f"j{i}", "submit_time": round(t), "duration": int(rng.integers(20, 600)),
                     "num_gpus": int(rng.choice([1, 2, 3, 4, 6])), "model": "resnet50",
                     "batch_size": 64})
    sched = make("netpack", placement=placement, batch_seconds=30)
    engine = Engine(from_records(rows), "6x2-V100", perf=make_perf("network", ina_capacity=2.0),
                    timeline_interval=None)
    engine.reset(sched)
    assert sched._ina == 2.0  # the scheduler assumes the engine model's INA capacity
    while engine.next_decision():
        engine.apply(sched.schedule(engine.view))
        # the scheduler's estimate and the engine's rates describe the same placements (the PS
        # servers NetPack chose included) and the same shares
        assert sched.placements() == engine.perf.placements()
        assert sched.network_rates() == pytest.approx(engine.perf.shares())
        # the link counts always match the running distributed jobs
        links = np.zeros(6, dtype=int)
        for workers, ps in sched.placements().values():
            links[list(workers)] += 1
            links[ps] += 1
        assert (links == sched.link_counts()).all()
    res = engine.result(sched.name)
    assert (res.state == 3).all() and res.preemptions.sum() == 0


def test_ina_capacity_given_to_the_scheduler_is_its_own_assumption():
    sched = make("netpack", ina_capacity=0.0)
    Engine(from_records([{"job_id": "A", "submit_time": 0, "num_gpus": 1, "duration": 5}]),
           "2x2-V100", perf="network", timeline_interval=None).reset(sched)
    assert sched._ina == 0.0
    sched = make("netpack")
    Engine(from_records([{"job_id": "A", "submit_time": 0, "num_gpus": 1, "duration": 5}]),
           "2x2-V100", timeline_interval=None).reset(sched)  # no network model: PTA = 10
    assert sched._ina == 10.0


def test_grid_cells_select_network_contention_by_name(tmp_path):
    # Two 3-GPU VGG-16 jobs on 3 x 2 GPUs: NetPack puts X on servers {0, 1} (2 + 1 GPUs) and Y
    # on {1, 2}, so they share server 1's link: under perf "network" they slow each other down,
    # under "duration" every job runs its trace duration.
    path = tmp_path / "trace.csv"
    path.write_text("job_id,submit_time,duration,num_gpus,model,batch_size\n"
                    "X,0,100,3,vgg16,32\nY,0,100,3,vgg16,32\n")
    jct = {}
    for name in ("duration", "network"):
        cells = expand_grid([{"name": "netpack", "params": {"batch_seconds": 0}}], [str(path)],
                            ["3x2-V100"], perf=name)
        jct[name] = simulate_cell(cells[0]).record["metrics"]["avg_jct"]
    assert jct["duration"] == 100.0
    assert jct["network"] > 100.0
