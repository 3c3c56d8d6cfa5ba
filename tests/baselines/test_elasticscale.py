"""ElasticScale / EasyScale (fixed logical workers, 60 s rounds, increments ranked by speed-up gain
per GPU, waste and growth limits): allocations and JCTs computed by hand.

The engine runs ``ThroughputModel(execution="easyscale")`` with only the GPU-type factor on
(scaling off), so a job with P logical workers, requesting ``req`` GPUs, runs at rate
``E / (req x norm)``: E the effective speed of its GPUs (``perf.est_balance``, V100 = 1) and
``norm = P / (req x ceil(P / req))`` (1 whenever req = P, as below).
"""

import numpy as np
import pytest

from dlsched_gym.baselines import make
from dlsched_gym.baselines.elasticscale import ElasticScale, ElasticScaleHomo
from dlsched_gym.cluster import ClusterSpec, Node
from dlsched_gym.engine import FINISHED, Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.perf import make_perf, type_ratio
from dlsched_gym.scheduler import Resize, Start
from dlsched_gym.workload import from_records

TYPE_ONLY = dict(scaling=False, locality=None, variability=None, sharing=False)
#: GPUs 0-1: V100 (node 0); GPUs 2-3: P100 (node 1).
V100_P100 = ClusterSpec(nodes=(Node(gpus=2, gpu_type="V100"), Node(gpus=2, gpu_type="P100")),
                        name="2xV100+2xP100")


def run(jobs, scheduler, cluster, **engine_options):
    """Simulate ``jobs`` = [(job_id, submit, num_gpus, min_gpus, max_gpus, duration, model)];
    returns (JCT by job id, [(time, job id, GPU count)] for every Start and Resize)."""
    rows = [{"job_id": i, "submit_time": s, "num_gpus": n, "min_gpus": lo, "max_gpus": hi,
             "duration": d, "model": m, "batch_size": 64} for i, s, n, lo, hi, d, m in jobs]
    eng = Engine(from_records(rows), cluster, timeline_interval=None,
                 perf=make_perf("throughput", execution="easyscale", **TYPE_ONLY), **engine_options)
    eng.reset(scheduler)
    log = []
    while eng.next_decision():
        ops = scheduler.schedule(eng.view)
        for op in ops:
            if type(op) in (Start, Resize):
                log.append((eng.now, str(eng.jobs.job_id[op.job]), len(op.gpus)))
        eng.apply(ops)
    res = eng.result()
    assert not res.stalled and (res.state == FINISHED).all()
    frame = res.jobs_frame().set_index("job_id")
    return {k: pytest.approx(v) for k, v in frame["jct"].items()}, log


def test_the_free_gpu_goes_to_the_larger_gain_per_gpu():
    # 3 V100s. A: P = 3, D = 300; B: P = 2, D = 100. Rates E/3 for A (1 GPU 1/3; 2 GPUs, loads
    # (2, 1), E = 1.5 -> 1/2; 3 GPUs 1) and E/2 for B (1 GPU 1/2; 2 GPUs 1).
    # t=0: each gets its smallest proposal, 1 GPU, in arrival order; 1 GPU left.
    # t=60: A's increment: 1/3 -> 1/2, inc_perf 1 + 0.5 = 1.5 (waste 1 - 1.5/2 = 0.25 <= 0.3);
    #       B's: 1/2 -> 1, inc_perf 2. B gets the GPU. B: 30 done by 60, 70 more at rate 1 -> 130.
    # t=120: nothing free. t=180: A 1 -> 2 GPUs (growth 2x caps it at 2), 60 done by then.
    # t=240: A 2 -> 3 (1/2 -> 1, inc_perf 2), 60 + 30 = 90 done; 210 at rate 1 -> ends 450.
    jcts, log = run([("A", 0, 3, 1, 3, 300, "ResNet-50"), ("B", 0, 2, 1, 2, 100, "ResNet-50")],
                    make("elasticscale"), "1x3-V100")
    assert log == [(0, "A", 1), (0, "B", 1), (60, "B", 2), (180, "A", 2), (240, "A", 3)]
    assert jcts == {"A": 450.0, "B": 130.0}


@pytest.mark.parametrize("name, max_waste, grows", [("elasticscale", 0.3, False),
                                                    ("elasticscale", 0.4, True),
                                                    ("elasticscale_homo", 0.4, False)])
def test_the_waste_limit_stops_a_slow_gpu_that_would_mostly_idle(name, max_waste, grows):
    # CycleGAN, P = 3, min 2 GPUs, D = 300; p = its P100/V100 ratio (0.543).
    p = type_ratio("CycleGAN", "P100")
    assert 0.5 < p < 1.4 / 2.3  # the range in which the arithmetic below holds
    # t=0: 2 V100s (the fastest type): loads (2, 1), E = 3/2 -> rate 1/2.
    # t=60: only P100s are free. +1 P100: the third worker finishes at 1/p = 1.84 < 2 there, so
    # loads (1, 1, 1), iteration 1/p, E = 3p = 1.63 > 1.5: faster, but of the capacity 2 + p the
    # waste is 1 - 3p / (2 + p) = 0.36 (> 0.3 for p < 1.4/2.3).
    # Not granted: 300 / (1/2) = 600. Granted (max_waste 0.4): 30 done by 60, then rate p.
    # EasyScale-homo never mixes types.
    jcts, log = run([("J", 0, 3, 2, 3, 300, "CycleGAN")], make(name, max_waste=max_waste), V100_P100)
    if grows:
        assert log == [(0, "J", 2), (60, "J", 3)]
        assert jcts == {"J": 60 + 270 / p}
    else:
        assert log == [(0, "J", 2)]
        assert jcts == {"J": 600.0}


@pytest.mark.parametrize("max_growth, sizes, jct", [
    # 1 -> 2 -> 4 -> 8 GPUs at 0, 60, 120, 180 (rate n/8): 7.5 + 15 + 30 done by 180, then
    # 47.5 at rate 1 -> 227.5. At n = 2 the choice is +1 (3 GPUs, loads (3, 3, 2), E = 8/3,
    # inc_perf 1 + (4/3 - 1) = 1.33) or +2 (E = 4, inc_perf 1 + 1/2 = 1.5): +2.
    (2.0, [1, 2, 4, 8], 227.5),
    # growth 4x: at n = 1, +1 (E 2, inc_perf 2), +2 (E 8/3, 1.83) or +3 (E 4, inc_perf 2): the tie
    # goes to the larger speed, 4 GPUs at 60; 8 at 120: 7.5 + 30 done by 120, 62.5 more -> 182.5.
    (4.0, [1, 4, 8], 182.5),
])
def test_the_growth_limit_caps_each_rounds_growth(max_growth, sizes, jct):
    jcts, log = run([("J", 0, 8, 1, 8, 100, "ResNet-50")], make("elasticscale", max_growth=max_growth),
                    "1x8-V100")
    assert [n for _, _, n in log] == sizes
    assert [t for t, _, _ in log] == [60.0 * i for i in range(len(sizes))]
    assert jcts == {"J": jct}


def test_the_logical_worker_count_bounds_the_allocation():
    # P = 3 on 8 free V100s: 1 -> 2 (loads (2, 1), E = 1.5) -> 3 GPUs, never more: rate E/3 =
    # 1/3, 1/2, 1: 20 + 30 done by 120, 50 more -> 170.
    jcts, log = run([("J", 0, 3, 1, 3, 100, "ResNet-50")], make("elasticscale"), "1x8-V100")
    assert log == [(0, "J", 1), (60, "J", 2), (120, "J", 3)]
    assert jcts == {"J": 170.0}


def test_heter_mixes_types_homo_does_not():
    # ResNet-50, P = 4, D = 400; p = its P100/V100 ratio (0.635). Rate E/4.
    p = type_ratio("ResNet-50", "P100")
    assert 0.5 < p < 2 / 3
    # t=0: 1 V100 (E 1). t=60: +1 V100 (E 2, inc_perf 2) beats +1 P100 (loads (3, 1), E 4/3).
    # t=120: no V100 left. +1 P100: loads (2, 1, 1), E still 2: no gain. +2 P100: loads
    # (1, 1, 1, 1), iteration 1/p, E = 4p = 2.54, waste 1 - 4p / (2 + 2p) = 0.22: granted (heter).
    # heter: 15 + 30 done by 120, then rate p: 120 + 355/p. homo: rate 1/2 from 60: 60 + 385/0.5.
    heter, log = run([("J", 0, 4, 1, 4, 400, "ResNet-50")], make("easyscale"), V100_P100)
    assert log == [(0, "J", 1), (60, "J", 2), (120, "J", 4)]
    assert heter == {"J": 120 + 355 / p}
    homo, log = run([("J", 0, 4, 1, 4, 400, "ResNet-50")], make("easyscale_homo"), V100_P100)
    assert log == [(0, "J", 1), (60, "J", 2)]
    assert homo == {"J": 830.0}


def test_arrivals_wait_for_the_round_and_resizes_pay_the_overhead():
    # 3 V100s. A (P = 2, D = 100) runs on 1 GPU from 0 at rate 1/2. B arrives at 30 and waits
    # for the 60 s round, where it gets 1 GPU first (queued jobs before increments); A's
    # increment (+1: 1/2 -> 1) takes the last GPU. A: 30 done by 60, no progress during the 10 s
    # resize overhead, then 70 at rate 1 -> ends 140. B (1 GPU, D = 50): 60 -> 110, JCT 80.
    jcts, log = run([("A", 0, 2, 1, 2, 100, "ResNet-50"), ("B", 30, 1, 1, 1, 50, "ResNet-50")],
                    make("elasticscale"), "1x3-V100", resize_overhead=10.0)
    assert log == [(0, "A", 1), (60, "B", 1), (60, "A", 2)]
    assert jcts == {"A": 140.0, "B": 80.0}


def test_registry_names_and_aliases():
    assert type(make("easyscale")) is ElasticScale
    assert type(make("easyscale_homo")) is ElasticScaleHomo
    assert make("elasticscale").round_seconds == 60.0


@pytest.mark.parametrize("param, bad", [("round_seconds", 0), ("max_waste", 1.0), ("max_waste", -0.1),
                                        ("max_growth", 1.0), ("max_growth", float("nan"))])
def test_bad_parameters(param, bad):
    with pytest.raises(ConfigError, match=param):
        make("elasticscale", **{param: bad})


@pytest.mark.parametrize("name", ["elasticscale", "elasticscale_homo"])
def test_a_random_heterogeneous_workload_runs_to_the_end(name):
    rng = np.random.default_rng(5)
    models = ["ResNet-50", "Transformer", "Recommendation", "A3C", "CycleGAN", "LM"]
    rows, t = [], 0.0
    for i in range(50):
        t += float(rng.exponential(60.0))
        n = int(rng.choice([1, 2, 4, 8]))
        rows.append({"job_id": f"j{i}", "submit_time": round(t), "num_gpus": n, "min_gpus": 1,
                     "max_gpus": n, "duration": float(np.exp(rng.normal(6.0, 1.0))),
                     "model": models[i % len(models)], "batch_size": 64})
    spec = ClusterSpec(nodes=tuple(Node(gpus=4, gpu_type=g) for g in ("V100", "P100", "K80")),
                       name="3x4-mixed")
    res = Engine(from_records(rows), spec, perf=make_perf("throughput", execution="easyscale"),
                 resize_overhead=5.0, timeline_interval=None).run(make(name))
    assert (res.state == FINISHED).all()
    assert res.preemptions.sum() == 0
