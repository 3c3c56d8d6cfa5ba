"""SJF (oracle durations): JCTs computed by hand on one 4-GPU node."""

import pytest

from dlsched_gym.baselines import make
from dlsched_gym.errors import ConfigError

# A holds the node 0-100; B (short, 4 GPUs) and C (longer, 1 GPU) wait for it.
KEYS = [("A", 0, 4, 100), ("B", 10, 4, 60), ("C", 10, 1, 80)]


def test_sjf_orders_by_duration_by_default(simulate):
    jct = simulate(KEYS, make("sjf"))["jct"].to_dict()
    # Order by duration: B (60) before C (80).
    # A 0-100; B 100-160; C 160-240 -> C's JCT 240 - 10 = 230, B's 160 - 10 = 150.
    assert jct == {"A": 100.0, "B": 150.0, "C": 230.0}


def test_sjf_by_gpu_time(simulate):
    jct = simulate(KEYS, make("sjf", key="gpu_time"))["jct"].to_dict()
    # Order by GPU-time: C (80 x 1 = 80) before B (60 x 4 = 240).
    # A 0-100; C 100-180 (1 GPU); B needs 4, 3 free: waits; B 180-240.
    # C: 180 - 10 = 170; B: 240 - 10 = 230.
    assert jct == {"A": 100.0, "B": 230.0, "C": 170.0}


# A holds 2 GPUs 0-100; B (4 GPUs, 50 s) heads the queue; C (1 GPU, 200 s) is behind it.
HOL = [("A", 0, 2, 100), ("B", 10, 4, 50), ("C", 10, 1, 200)]


def test_sjf_strict_head_of_line(simulate):
    jct = simulate(HOL, make("sjf"))["jct"].to_dict()
    # At 10: B needs 4, 2 free: stop, C waits too.
    # At 100: B 100-150; C 150-350. B: 150 - 10 = 140; C: 350 - 10 = 340.
    assert jct == {"A": 100.0, "B": 140.0, "C": 340.0}


def test_sjf_backfill(simulate):
    jct = simulate(HOL, make("sjf", backfill=True))["jct"].to_dict()
    # At 10: B skipped, C starts 10-210. At 100 3 GPUs free, B still waits.
    # At 210: B 210-260. C: 210 - 10 = 200; B: 260 - 10 = 250.
    assert jct == {"A": 100.0, "B": 250.0, "C": 200.0}


def test_sjf_never_preempts(simulate):
    # A long job keeps the node although a much shorter one arrives.
    frame = simulate([("A", 0, 4, 1000), ("B", 1, 4, 1)], make("sjf"))
    assert frame["jct"].to_dict() == {"A": 1000.0, "B": 1000.0}  # B: 1000-1001, 1001 - 1
    assert frame["preemptions"].sum() == 0


def test_sjf_bad_key():
    with pytest.raises(ConfigError, match="'key'"):
        make("sjf", key="size")
