"""EasyScale execution (``ThroughputModel(execution="easyscale")``) and :func:`perf.est_balance`:
a job keeps ``max_gpus`` logical workers whatever GPUs it holds; values computed by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dlsched_gym import perf
from dlsched_gym.cluster import ClusterSpec, Node
from dlsched_gym.engine import JobTable
from dlsched_gym.errors import ConfigError
from dlsched_gym.workload import from_records

#: Only the GPU-type factor on (scaling off: S(n) = n).
TYPE_ONLY = dict(scaling=False, locality=None, variability=None, sharing=False)
#: Nodes 0-1 hold V100s (GPUs 0-3), node 2 P100s (4-5), node 3 K80s (6-7).
MIXED = ClusterSpec(nodes=(Node(gpus=2, gpu_type="V100"), Node(gpus=2, gpu_type="V100"),
                           Node(gpus=2, gpu_type="P100"), Node(gpus=2, gpu_type="K80")),
                    name="4xV100+2xP100+2xK80")


def _model(spec, rows, **options):
    """A reset ThroughputModel over jobs ``(num_gpus, min_gpus, max_gpus, model)``."""
    wl = from_records([{"job_id": f"j{i}", "submit_time": 0.0, "duration": 100.0, "num_gpus": n,
                        "min_gpus": lo, "max_gpus": hi, "model": m, "batch_size": 64}
                       for i, (n, lo, hi, m) in enumerate(rows)])
    model = perf.ThroughputModel(**options)
    model.reset(spec, JobTable(wl.table), np.random.default_rng(0))
    return model


def _rate(model, job, gpus):
    return model.rate(job, np.asarray(gpus, dtype=np.int64), 1)


# ---------------------------------------------------------------------------------------------
# est_balance
# ---------------------------------------------------------------------------------------------

def test_est_balance_by_hand():
    # 3 workers on speeds (1, 0.5): worker 1 -> GPU 0 (finishes at 1 vs 2); worker 2: GPU 0 at
    # 2/1 = 2, GPU 1 at 1/0.5 = 2, a tie -> the faster GPU 0; worker 3: GPU 0 at 3, GPU 1 at 2
    # -> GPU 1. Loads (2, 1): iteration max(2/1, 1/0.5) = 2, effective 3/2 = 1.5, capacity 1.5.
    b = perf.est_balance([1.0, 0.5], 3)
    assert b.ests == (2, 1)
    assert b.iteration_time == 2.0
    assert b.effective_speed == 1.5
    assert b.waste == 0.0
    # 4 workers on 3 equal GPUs: (2, 1, 1), iteration 2, effective 4/2 = 2 of capacity 3.
    b = perf.est_balance([1.0, 1.0, 1.0], 4)
    assert b.ests == (2, 1, 1)
    assert b.effective_speed == 2.0
    assert b.waste == pytest.approx(1 / 3)
    # A GPU ten times slower gets nothing: (2, 0), iteration 2, effective 1 of capacity 1.1.
    b = perf.est_balance([1.0, 0.1], 2)
    assert b.ests == (2, 0)
    assert b.effective_speed == 1.0
    assert b.waste == pytest.approx(1 - 1 / 1.1)
    # Fewer workers than GPUs: one each on the two fastest, the third idles.
    assert perf.est_balance([0.5, 1.0, 1.0], 2).ests == (0, 1, 1)


@pytest.mark.parametrize("seed", range(5))
def test_est_balance_is_optimal_against_every_assignment(seed):
    rng = np.random.default_rng(seed)
    speeds = rng.uniform(0.1, 1.0, size=3).round(3).tolist()
    for p in range(1, 8):
        best = min(max(e / v for e, v in zip(ests, speeds))
                   for ests in itertools.product(range(p + 1), repeat=3) if sum(ests) == p)
        got = perf.est_balance(speeds, p)
        assert sum(got.ests) == p
        assert got.iteration_time == pytest.approx(best)


@pytest.mark.parametrize("speeds, workers, match", [
    ([], 2, "empty"), ([1.0, 0.0], 2, "> 0"), ([1.0, float("inf")], 2, "> 0"),
    ([1.0], 0, "logical_workers"), ([1.0], 1.5, "logical_workers"), ([1.0], True, "logical_workers")])
def test_est_balance_bad_input(speeds, workers, match):
    with pytest.raises(ConfigError, match=match):
        perf.est_balance(speeds, workers)


# ---------------------------------------------------------------------------------------------
# ThroughputModel(execution="easyscale")
# ---------------------------------------------------------------------------------------------

def test_easyscale_rates_on_mixed_types_by_hand():
    # ResNet-50 asking for 2 GPUs with 4 logical workers. Scaling off: rate = (E / n) x n / req
    # / norm = E / (req norm), norm = P / (req ceil(P / req)) = 4 / (2 x 2) = 1, so rate = E / 2.
    es = _model(MIXED, [(2, 1, 4, "ResNet-50")], execution="easyscale", **TYPE_ONLY)
    ddp = _model(MIXED, [(2, 1, 4, "ResNet-50")], **TYPE_ONLY)
    p = perf.type_ratio("ResNet-50", "P100")  # 0.635
    k = perf.type_ratio("ResNet-50", "K80")   # 0.139
    assert 0.5 < p < 2 / 3 and k < 0.25
    # requested allocation (2 V100s): loads (2, 2), E = 4 / 2 = 2 -> rate 1, as in the trace
    assert _rate(es, 0, [0, 1]) == pytest.approx(1.0)
    # 1 V100: all 4 workers on it, E = 1 -> 1/2
    assert _rate(es, 0, [0]) == pytest.approx(0.5)
    # V100 + P100: worker 2 goes to the P100 (1/p = 1.58 < 2), workers 3 and 4 to the V100
    # (2 and 3 < 2/p = 3.15): loads (3, 1), iteration max(3, 1/p) = 3, E = 4/3 -> rate 2/3.
    # In lock-step (ddp) the pair runs at the P100's speed: rate p < 2/3.
    assert _rate(es, 0, [0, 4]) == pytest.approx(2 / 3)
    assert _rate(ddp, 0, [0, 4]) == pytest.approx(p)
    # V100 + K80: the K80 would finish a worker at 1/k = 7.2 > 4: it idles, loads (4, 0), E = 1
    # -> 1/2; ddp drags the V100 down to the K80: k.
    assert _rate(es, 0, [0, 6]) == pytest.approx(0.5)
    assert _rate(ddp, 0, [0, 6]) == pytest.approx(k)
    # 2 V100 + 1 K80: loads (2, 2, 0): E = 2, the K80 adds nothing -> 1
    assert _rate(es, 0, [0, 1, 6]) == pytest.approx(1.0)
    # 2 V100 + 2 P100: loads (1, 1, 1, 1) (a third worker on a V100 would finish at 2 > 1/p):
    # iteration 1/p, E = 4p -> 2p
    assert _rate(es, 0, [0, 1, 4, 5]) == pytest.approx(2 * p)


def test_easyscale_logical_workers_that_do_not_divide_the_gpus():
    # 4 workers, 3 requested V100s: norm = 4 / (3 x ceil(4/3)) = 4/6 = 2/3.
    spec = ClusterSpec(nodes=(Node(gpus=4, gpu_type="V100"),), name="1x4-V100")
    es = _model(spec, [(3, 1, 4, "ResNet-50")], execution="easyscale", **TYPE_ONLY)
    ddp = _model(spec, [(3, 1, 4, "ResNet-50")], **TYPE_ONLY)
    # 3 GPUs: loads (2, 1, 1), E = 2, rate = E / (req norm) = 2 / (3 x 2/3) = 1 (requested)
    assert _rate(es, 0, [0, 1, 2]) == pytest.approx(1.0)
    # 2 GPUs: loads (2, 2), E = 2: as fast as 3 GPUs (the third one only evens nothing out)
    assert _rate(es, 0, [0, 1]) == pytest.approx(1.0)
    # 4 GPUs: loads (1, 1, 1, 1), E = 4 -> 4 / 2 = 2
    assert _rate(es, 0, [0, 1, 2, 3]) == pytest.approx(2.0)
    # ddp: linear in the GPU count, n / 3
    assert [_rate(ddp, 0, list(range(n))) for n in (2, 3, 4)] == pytest.approx([2 / 3, 1.0, 4 / 3])


def test_easyscale_equals_ddp_when_every_gpu_holds_one_worker():
    # Rigid jobs (max_gpus = num_gpus) on V100s, every factor on (measured scaling, PAL locality,
    # PAL32 variability < 1.12x, so each GPU keeps exactly one worker): the same rate either way.
    spec = ClusterSpec(nodes=(Node(gpus=4, gpu_type="V100"), Node(gpus=4, gpu_type="V100")),
                       name="2x4-V100")
    rows = [(2, 2, 2, "ResNet-50"), (4, 4, 4, "Transformer"), (8, 8, 8, "bert")]
    es, ddp = (_model(spec, rows, execution=e) for e in ("easyscale", "ddp"))
    for job, gpus in [(0, [0, 1]), (0, [3, 4]), (1, [0, 1, 2, 3]), (1, [2, 3, 4, 5]), (2, list(range(8)))]:
        assert _rate(es, job, gpus) == pytest.approx(_rate(ddp, job, gpus))


def test_execution_default_and_bad_value():
    assert perf.ThroughputModel().execution == "ddp"
    with pytest.raises(ConfigError, match="execution must be one of"):
        perf.make_perf("throughput", execution="pollux")
