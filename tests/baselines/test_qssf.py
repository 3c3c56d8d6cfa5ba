"""QSSF (Helios): order by predicted GPU-time; JCTs computed by hand on one 4-GPU node."""

import pytest

from dlsched_gym.baselines import make
from dlsched_gym.errors import ConfigError

# A (user x, 2 GPUs, 100 s) and D (user z, 2 GPUs, 1000 s) at 0; B (user y, 4 GPUs, 300 s) at
# 50; C (user x, 2 GPUs, 800 s) at 150.
JOBS = [
    ("A", 0, 2, 100, {"user": "x"}),
    ("D", 0, 2, 1000, {"user": "z"}),
    ("B", 50, 4, 300, {"user": "y"}),
    ("C", 150, 2, 800, {"user": "x"}),
]


def test_qssf_with_history_estimates(simulate):
    frame = simulate(JOBS, make("qssf"), predictor="history")
    # B arrives at 50 before any job finished: default estimate 3600 s -> 3600 x 4 = 14400 GPU-s.
    # A finishes at 100 (2 GPUs free; B needs 4, waits).
    # C arrives at 150: user x with 2 GPUs has the finished A (100 s) -> 100 x 2 = 200 GPU-s,
    # ahead of B: C runs 150-950. B waits until D ends at 1000: B 1000-1300.
    assert frame["jct"].to_dict() == {"A": 100.0, "D": 1000.0, "B": 1250.0, "C": 800.0}


def test_qssf_with_oracle_is_sjf_by_gpu_time(simulate):
    frame = simulate(JOBS, make("qssf"), predictor="oracle")
    # True GPU-times: B 300 x 4 = 1200 before C 800 x 2 = 1600. At 150 the head B needs 4 GPUs,
    # 2 are free: strict order, C waits. 1000: B 1000-1300. 1300: C 1300-2100.
    assert frame["jct"].to_dict() == {"A": 100.0, "D": 1000.0, "B": 1250.0, "C": 1950.0}


def test_qssf_backfill(simulate):
    frame = simulate(JOBS, make("qssf", backfill=True), predictor="oracle")
    # At 150 B (head) does not fit, C does: C 150-950; B 1000-1300 as with the history estimates.
    assert frame["jct"].to_dict() == {"A": 100.0, "D": 1000.0, "B": 1250.0, "C": 800.0}


def test_qssf_estimate_is_taken_at_arrival(simulate):
    # G (user p, 2 GPUs, 100 s) and H (user q, 2 GPUs, 50 s) fill the node at 0.
    # X (user p, 3 GPUs, 10 s) at 20 and Y (user q, 4 GPUs, 20 s) at 30 arrive before anything
    # finished: default estimates 3600 x 3 = 10800 (X) and 3600 x 4 = 14400 (Y): X first.
    jobs = [
        ("G", 0, 2, 100, {"user": "p"}),
        ("H", 0, 2, 50, {"user": "q"}),
        ("X", 20, 3, 10, {"user": "p"}),
        ("Y", 30, 4, 20, {"user": "q"}),
    ]
    frame = simulate(jobs, make("qssf"), predictor="history")
    # Estimates refreshed at 100 would give X 100 x 3 = 300 (user p) and Y 50 x 4 = 200 (user q),
    # Y first; QSSF keeps the arrival-time estimates.
    # 50: H ends, 2 GPUs free, X (3 GPUs) heads the queue: wait. 100: G ends: X 100-110;
    # Y needs 4: 110-130. X: 110 - 20 = 90; Y: 130 - 30 = 100.
    assert frame["jct"].to_dict() == {"G": 100.0, "H": 50.0, "X": 90.0, "Y": 100.0}


def test_qssf_bad_backfill():
    with pytest.raises(ConfigError, match="'backfill'"):
        make("qssf", backfill="yes")
