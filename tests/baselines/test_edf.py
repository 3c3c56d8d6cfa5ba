"""EDF, with and without admission control: JCTs computed by hand on one 4-GPU node."""

import math

import pytest

from dlsched_gym.baselines import make
from dlsched_gym.errors import ConfigError

# A (4 GPUs, 100 s, no deadline) at 0; B (4 GPUs, 100 s, deadline 1000) at 10;
# C (2 GPUs, 50 s, deadline 300) at 20; D (2 GPUs, 60 s, no deadline) at 30.
NAN = math.nan
JOBS = [
    ("A", 0, 4, 100, {"deadline": NAN}),
    ("B", 10, 4, 100, {"deadline": 1000.0}),
    ("C", 20, 2, 50, {"deadline": 300.0}),
    ("D", 30, 2, 60, {"deadline": NAN}),
]


def test_edf_orders_by_deadline_and_backfills(simulate):
    frame = simulate(JOBS, make("edf"))
    # At 100 the order is C (300), B (1000), D (none). C 100-150; B (4 GPUs) does not fit in
    # the 2 left and is skipped; D fits: 100-160. 160: B 160-260.
    assert frame["jct"].to_dict() == {"A": 100.0, "B": 250.0, "C": 130.0, "D": 130.0}


def test_edf_strict(simulate):
    frame = simulate(JOBS, make("edf", backfill=False))
    # At 100: C 100-150, then B does not fit: stop. 150: B 150-250. 250: D 250-310.
    assert frame["jct"].to_dict() == {"A": 100.0, "B": 240.0, "C": 130.0, "D": 280.0}


# All 4-GPU, 100 s jobs: A (no deadline) at 0; B (deadline 250) at 10; C (deadline 250) at 20;
# D (deadline 450) at 30.
AC = [
    ("A", 0, 4, 100, {"deadline": NAN}),
    ("B", 10, 4, 100, {"deadline": 250.0}),
    ("C", 20, 4, 100, {"deadline": 250.0}),
    ("D", 30, 4, 100, {"deadline": 450.0}),
]


def test_edf_without_admission_control_misses_a_deadline(simulate):
    frame = simulate(AC, make("edf"))
    # A 0-100; B 100-200; C (deadline 250, ahead of D) 200-300, late; D 300-400.
    assert frame["jct"].to_dict() == {"A": 100.0, "B": 190.0, "C": 280.0, "D": 370.0}


def test_edf_admission_control_rejects_a_job_that_would_be_late(simulate):
    frame = simulate(AC, make("edf", admission_control=True))
    # 10: replay: A frees the node at 100, B 100-200 <= 250: admitted.
    # 20: replay: A until 100, B (same deadline, earlier) 100-200, C 200-300 > 250: rejected.
    # 30: replay: A until 100, B 100-200, D 200-300 <= 450: admitted.
    # Run: A 0-100, B 100-200, D 200-300.
    assert frame.loc["C", "state"] == "rejected"
    jct = frame["jct"].drop("C").to_dict()
    assert jct == {"A": 100.0, "B": 190.0, "D": 270.0}


@pytest.mark.parametrize("param", ["admission_control", "backfill"])
def test_edf_bad_flags(param):
    with pytest.raises(ConfigError, match=param):
        make("edf", **{param: 1})
