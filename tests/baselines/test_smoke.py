"""Every classic baseline runs random workloads to the end (the engine validates every op)."""

import numpy as np
import pytest

from dlsched_gym.baselines import make
from dlsched_gym.baselines.las import Las
from dlsched_gym.baselines.srtf import Srtf
from dlsched_gym.engine import FINISHED, REJECTED, Engine
from dlsched_gym.workload import from_records

CASES = [
    ("fifo", {}, "oracle"),
    ("fifo", {"backfill": True}, "oracle"),
    ("sjf", {}, "oracle"),
    ("sjf", {"key": "gpu_time", "backfill": True}, "oracle"),
    ("srtf", {}, "oracle"),
    ("srtf", {}, "noisy"),
    ("las", {}, "oracle"),
    ("tiresias", {}, "oracle"),
    ("tiresias", {"thresholds": (100, 1000, 10000), "round_seconds": 7}, "oracle"),
    ("qssf", {}, "history"),
    ("qssf", {"backfill": True}, "history"),
    ("edf", {}, "oracle"),
    ("edf", {"admission_control": True, "backfill": False}, "noisy"),
    ("elasticscale", {}, "oracle"),
    ("elasticscale_homo", {}, "oracle"),
    ("themis", {}, "oracle"),
    ("themis", {"fairness_knob": 0.0}, "noisy"),
    ("pollux", {}, "oracle"),
    ("heet", {}, "oracle"),
]


def _workload(seed: int, n: int = 120):
    rng = np.random.default_rng(seed)
    rows = []
    t = 0.0
    for i in range(n):
        t += float(rng.exponential(40.0))
        d = float(np.exp(rng.normal(5.0, 1.2)))
        rows.append({"job_id": f"j{i}", "submit_time": round(t), "duration": round(d) + 1,
                     "num_gpus": int(rng.choice([1, 1, 2, 3, 4, 8])),
                     "user": f"u{rng.integers(4)}",
                     "deadline": float(t + d * rng.uniform(0.8, 3.0)) if rng.random() < 0.7
                     else np.nan})
    return from_records(rows)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name, params, predictor", CASES)
def test_runs_to_completion(name, params, predictor, seed):
    wl = _workload(seed)
    eng = Engine(wl, "2x4-V100", predictor=predictor, restart_overhead=seed * 7.0,
                 timeline_interval=None)
    res = eng.run(make(name, **params))
    finished = res.state == FINISHED
    rejected = res.state == REJECTED
    assert (finished | rejected).all()
    if not params.get("admission_control"):
        assert not rejected.any()
    jct = (res.end_time - res.submit_time)[finished]
    assert (jct >= res.duration[finished] - 1e-6).all()
    if name in ("fifo", "sjf", "qssf", "edf"):
        assert res.preemptions.sum() == 0


def _full_scan(self, view, best):
    """Reference for ``contested``: evaluate every running job's priority."""
    return sorted(k for k in ((self.priority(view, r), 0, r) for r in self._size) if k > best)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cls, predictor", [(Las, "oracle"), (Srtf, "oracle"), (Srtf, "noisy")])
def test_incremental_contested_matches_a_full_scan(cls, predictor, seed):
    reference = type("Reference", (cls,), {"contested": _full_scan})
    wl = _workload(seed, 150)
    runs = [Engine(wl, "2x4-V100", predictor=predictor, restart_overhead=seed * 5.0,
                   timeline_interval=None).run(s) for s in (cls(), reference())]
    assert runs[0].preemptions.sum() > 0
    np.testing.assert_array_equal(runs[0].end_time, runs[1].end_time)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiresias_with_one_unreachable_queue_is_fifo_backfill(seed):
    # With no demotion and no promotion every job stays in Q0: FIFO order, greedy fill.
    wl = _workload(seed, 150)
    a = Engine(wl, "2x4-V100", timeline_interval=None).run(
        make("tiresias", thresholds=(1e15,), starvation_limit=0))
    b = Engine(wl, "2x4-V100", timeline_interval=None).run(make("fifo", backfill=True))
    np.testing.assert_array_equal(a.end_time, b.end_time)
