"""Pollux (lite): goodput speed-ups, the p = -1 power mean, the restart penalty and interference
avoidance. Expected values computed by hand (arithmetic in the comments).

Made-up profiles: every step takes 1 s whatever the per-GPU batch m <= 10, no synchronisation
cost, M0 = 10. On K GPUs the best batch is M = 10 K (memory limit), throughput 10 K samples/s,
goodput 10 K (phi + 10) / (phi + 10 K), so the speed-up over 1 GPU is
s(K) = K (phi + 10) / (phi + 10 K):

- "hi" (phi = 1000): s(2) = 2020/1020 = 1.9804, s(3) = 3030/1030 = 2.9417, s(4) = 4040/1040 = 3.8846;
- "mid" (phi = 10): s(K) = 2K / (1 + K): s(2) = 1.3333, s(3) = 1.5;
- "lo" (phi = 1): s(K) = 11 K / (1 + 10 K): s(2) = 1.0476, s(3) = 1.0645.

With p = -1 the scheduler minimises the sum of 1/s over jobs (the power mean is
J / sum(1/s)); a move's gain is the drop of that sum.
"""

import numpy as np
import pytest

from dlsched_gym.baselines import make
from dlsched_gym.baselines.pollux import power_mean, restart_factor
from dlsched_gym.engine import FINISHED, Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.goodput import AppParams
from dlsched_gym.scheduler import Resize, Start
from dlsched_gym.workload import from_records
from tests.baselines.test_smoke import _workload


def profile(phi):
    return AppParams(alpha_grad=1.0, beta_grad=0.0, alpha_local=0.0, beta_local=0.0,
                     alpha_node=0.0, beta_node=0.0, gamma=1.0, phi=phi, init_batch=10,
                     max_batch=1000, max_local_batch=10, target_samples=1e6)


PROFILES = {"hi": profile(1000.0), "mid": profile(10.0), "lo": profile(1.0)}


class Recorder:
    """Wraps a scheduler and records (time, ops) of every decision that returned ops."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.round_seconds = inner.round_seconds
        self.log = []

    def reset(self, spec, jobs, rng):
        self.inner.reset(spec, jobs, rng)

    def schedule(self, view):
        ops = list(self.inner.schedule(view))
        if ops:
            self.log.append((view.now, ops))
        return ops


def job(jid, model, gpus, duration, lo=None, hi=None, submit=0):
    return {"job_id": jid, "submit_time": submit, "num_gpus": gpus, "duration": duration,
            "model": model, "min_gpus": lo or gpus, "max_gpus": hi or gpus}


def run(rows, cluster, **params):
    rec = Recorder(make("pollux", profiles=PROFILES, **params))
    res = Engine(from_records(rows), cluster, timeline_interval=None).run(rec)
    assert (res.state == FINISHED).all()
    return rec.log, res.jobs_frame().set_index("job_id")


def first_sizes(log):
    return {op.job: len(op.gpus) for op in log[0][1] if isinstance(op, Start)}


def test_high_noise_scale_gets_more_gpus():
    # Both admitted at 1 GPU, 2 free. Gains of 1/s: hi +1: 1 - 1/1.9804 = 0.4950;
    # hi +2: (1 - 1/2.9417) / 2 = 0.3300; lo +1: 1 - 1/1.0476 = 0.0455 -> hi to 2.
    # Next: hi 2 -> 3: 1/1.9804 - 1/2.9417 = 0.1650 > lo's 0.0455 -> hi to 3.
    # Full: a transfer hi 3 -> 2, lo 1 -> 2 changes the sum by +0.1650 - 0.0455 > 0: none.
    log, _ = run([job("a", "hi", 1, 1000, 1, 4), job("b", "lo", 1, 1000, 1, 4)], "1x4-V100")
    assert log[0][0] == 0.0
    assert first_sizes(log) == {0: 3, 1: 1}


def test_power_mean_minus_one_prefers_the_fairer_allocation():
    # X = (1, 3): p = -1: 2 / (1 + 1/3) = 1.5; p = 1: 2.
    # Y = (2, 1.8): p = -1: 2 / (0.5 + 0.5556) = 1.8947; p = 1: 1.9.
    assert power_mean([1, 3], -1) == pytest.approx(1.5)
    assert power_mean([2, 1.8], -1) == pytest.approx(2 / (0.5 + 1 / 1.8))
    assert power_mean([1, 3], 1) == pytest.approx(2.0)
    assert power_mean([2, 1.8], 1) == pytest.approx(1.9)
    assert power_mean([0, 5], -1) == 0.0


def test_p_minus_one_splits_where_p_one_maximises_the_sum():
    # hi and mid on 4 GPUs, both start at 1.
    # p = -1: hi +1: 0.4950 > mid +1: 1 - 1/1.3333 = 0.25 -> hi 2; then hi 2 -> 3: 0.1650 <
    #   mid 1 -> 2: 0.25 -> mid 2. Result (2, 2): mean 2 / (0.5050 + 0.75) = 1.594 beats
    #   (3, 1): 2 / (0.3399 + 1) = 1.493.
    # p = 1 (sum of s): hi +1: 0.9804, hi 2 -> 3: 0.9613 > mid +1: 0.3333 -> (3, 1), sum 3.942 > 3.314.
    rows = [job("a", "hi", 1, 1000, 1, 4), job("b", "mid", 1, 1000, 1, 4)]
    assert first_sizes(run(rows, "1x4-V100")[0]) == {0: 2, 1: 2}
    assert first_sizes(run(rows, "1x4-V100", p=1.0)[0]) == {0: 3, 1: 1}


def resize_times(log, j):
    return [t for t, ops in log for op in ops if isinstance(op, Resize) and op.job == j]


def test_reallocation_waits_until_the_gain_beats_the_restart_penalty():
    # t = 0: hi (elastic 1-4) and a rigid 2-GPU job of an unprofiled model: hi 1 -> 2 (gain
    # 0.4950); the rigid job ends at t = 100 (duration model: rate 1). At each 60 s round hi
    # could grow to 4 on the 2 free GPUs; with delta = 300 s, factor (T - 0) / (T + 300):
    #   T = 120: 0.2857 x 3.8846 = 1.110 < s(2) = 1.9804; 180: 0.375 -> 1.457; 240: 0.4444 ->
    #   1.726; 300: 0.5 -> 1.942 (3 GPUs: 1.471): no gain, no resize.
    #   T = 360: 0.5455 x 3.8846 = 2.119 > 1.9804 -> resize to 4 at t = 360.
    rows = [job("a", "hi", 1, 100_000, 1, 4), job("b", "other", 2, 100)]
    log, _ = run(rows, "1x4-V100", restart_delay=300.0)
    assert first_sizes(log) == {0: 2, 1: 2}
    assert resize_times(log, 0)[0] == 360.0
    # delta = 0: factor 1, hi grows at the first round after the rigid job ends (t = 120).
    log, _ = run(rows, "1x4-V100", restart_delay=0.0)
    assert resize_times(log, 0)[0] == 120.0
    # Factor values: (T - S delta) / (T + delta), floored at 0.
    assert restart_factor(360.0, 0, 300.0) == pytest.approx(360 / 660)
    assert restart_factor(100.0, 4, 30.0) == 0.0


def test_arrival_takes_gpus_from_an_elastic_job():
    # t = 0: hi alone grows 1 -> 4 (per-GPU gains 0.4950, then 0.1650, then 0.0825, each the best
    # step). A second hi job arrives at t = 30 and is admitted at the t = 60 round. The first
    # one's changed allocations carry factor (60 - 0) / (60 + 30) = 2/3:
    #   admission: 4 -> 3 frees a GPU (u = -1 / (2.9417 x 2/3) = -0.5099);
    #   transfer a 3 -> 2 (u = -1 / (1.9804 x 2/3) = -0.7574, change -0.2475), b 1 -> 2 (+0.4950):
    #   +0.2475 > 0, applied. Next: b 2 -> 3 (+0.1650) against a 2 -> 1 (-1.5 + 0.7574 = -0.7426),
    #   a 2 -> 3 (+0.2475) against b 2 -> 1 (-0.4950): no move. Result 2 + 2.
    rows = [job("a", "hi", 1, 100_000, 1, 4), job("b", "hi", 1, 100_000, 1, 4, submit=30)]
    log, _ = run(rows, "1x4-V100")
    assert first_sizes(log) == {0: 4}
    t, ops = log[1]
    assert t == 60.0
    assert [(type(op).__name__, op.job, len(op.gpus)) for op in ops] == \
        [("Resize", 0, 2), ("Start", 1, 2)]


def nodes_of(op, gpus_per_node=4):
    return set((np.asarray(op.gpus) // gpus_per_node).tolist())


def test_two_distributed_jobs_do_not_share_a_node():
    # 3 nodes x 4 GPUs; two rigid 6-GPU jobs must each span 2 nodes, so any placement of both
    # shares a node. With avoidance: a on nodes 0 (4) and 1 (2); b could only use node 2
    # (node 1 holds a distributed job): 4 < 6 -> b waits; a ends at 100, b starts at the
    # round at 120.
    rows = [job("a", "m", 6, 100), job("b", "m", 6, 100)]
    log, frame = run(rows, "3x4-V100")
    assert nodes_of(log[0][1][0]) == {0, 1}
    assert frame.loc["b", "start_time"] == 120.0
    placed = [op for _, ops in log for op in ops if isinstance(op, Start)]
    assert [len(nodes_of(op)) for op in placed] == [2, 2]
    # Without avoidance b takes node 2 and the 2 GPUs left on node 1 at t = 0.
    log, frame = run(rows, "3x4-V100", interference_avoidance=False)
    assert frame.loc["b", "start_time"] == 0.0
    a, b = log[0][1]
    assert nodes_of(a) & nodes_of(b) == {1}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("elastic", [False, True])
def test_random_workloads_run_to_completion(seed, elastic):
    wl = _workload(seed)
    if elastic:
        t = wl.table.copy()
        t["min_gpus"] = 1
        t["max_gpus"] = 8
        wl = wl.replace(t)
    res = Engine(wl, "2x4-V100", restart_overhead=seed * 7.0, resize_overhead=30.0,
                 timeline_interval=None).run(make("pollux"))
    assert (res.state == FINISHED).all()
    finished = res.state == FINISHED
    if not elastic:
        assert ((res.end_time - res.submit_time)[finished] >= res.duration[finished] - 1e-6).all()


def test_bad_parameters():
    with pytest.raises(ConfigError, match="'round_seconds'"):
        make("pollux", round_seconds=0)
    with pytest.raises(ConfigError, match="'p'"):
        make("pollux", p="x")
    with pytest.raises(ConfigError, match="must be goodput.AppParams"):
        make("pollux", profiles={"a": 1})
    with pytest.raises(ConfigError, match="'interference_avoidance'"):
        make("pollux", interference_avoidance=1)
