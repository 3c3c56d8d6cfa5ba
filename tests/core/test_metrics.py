"""Summary metrics on hand-computed schedules."""

from __future__ import annotations

import pytest

from dlsched_gym.baselines import make
from dlsched_gym.engine import Engine
from dlsched_gym.metrics import finish_time_fairness, summarize


def test_jct_queueing_and_utilization(make_workload):
    # 1x2 cluster, FIFO. A (1 GPU, 100 s) runs 0-100; B (2 GPUs, 100 s) waits for A: 100-200.
    # JCTs 100, 200 (avg 150); queueing 0, 100 (avg 50); busy GPU-s 100 + 200 = 300 of 2 x 200.
    res = Engine(make_workload([(0, 100, 1), (0, 100, 2)]), "1x2").run(make("fifo"))
    s = summarize(res)
    assert (s["avg_jct"], s["avg_queueing_delay"], s["makespan"]) == (150.0, 50.0, 200.0)
    assert s["gpu_utilization"] == pytest.approx(300 / 400)


def test_finish_time_fairness_by_hand(make_workload):
    # Same schedule. Jobs in the system: 2 over 0-100, 1 over 100-200.
    # A: life 0-100, N = 2, T_id = 100 x max(1, 1 x 2 / 2) = 100, rho = 100 / 100 = 1.
    # B: life 0-200, N = (2 x 100 + 1 x 100) / 200 = 1.5, T_id = 100 x max(1, 2 x 1.5 / 2) = 150,
    #    rho = 200 / 150 = 4/3.
    res = Engine(make_workload([(0, 100, 1), (0, 100, 2)]), "1x2").run(make("fifo"))
    assert finish_time_fairness(res) == pytest.approx([1.0, 4 / 3])
    s = summarize(res)
    assert s["max_finish_time_fairness"] == pytest.approx(4 / 3)
    assert s["avg_finish_time_fairness"] == pytest.approx(7 / 6)
