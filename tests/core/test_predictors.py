"""Duration predictors: oracle, noisy (seeded), history (finished jobs only)."""

from __future__ import annotations

import numpy as np
import pytest

from dlsched_gym.engine import JobTable
from dlsched_gym.errors import ConfigError
from dlsched_gym.predictors import make_predictor
from dlsched_gym.workload import from_records


def _jobs():
    recs = [{"submit_time": i, "duration": d, "num_gpus": g, "user": u}
            for i, (d, g, u) in enumerate([(100, 1, "a"), (300, 1, "a"), (50, 2, "a"), (10, 1, "b")])]
    wl = from_records(recs)
    return JobTable(wl.table), wl.table["duration"].to_numpy()


def test_oracle_and_noisy():
    jobs, d = _jobs()
    o = make_predictor("oracle")
    o.reset(jobs, d, np.random.default_rng(0))
    assert o.duration(1) == 300.0
    a, b = make_predictor("noisy", sigma=0.5), make_predictor("noisy", sigma=0.5)
    a.reset(jobs, d, np.random.default_rng(7))
    b.reset(jobs, d, np.random.default_rng(7))
    assert [a.duration(i) for i in range(4)] == [b.duration(i) for i in range(4)]
    assert a.duration(0) != 100.0
    with pytest.raises(ConfigError):
        make_predictor("noisy", sigma=-1)
    with pytest.raises(ConfigError, match="unknown predictor"):
        make_predictor("crystal-ball")


def test_history_uses_only_finished_jobs():
    jobs, d = _jobs()
    h = make_predictor("history", default=999.0)
    h.reset(jobs, d, np.random.default_rng(0))
    assert h.duration(1) == 999.0            # nothing finished yet
    h.observe(0, 100.0)
    assert h.duration(1) == 100.0            # same user, same GPUs
    h.observe(1, 300.0)
    assert h.duration(2) == 200.0            # user a, 2 GPUs unseen -> user mean (100+300)/2
    assert h.duration(3) == 200.0            # user b unseen -> global mean
