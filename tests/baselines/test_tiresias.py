"""Tiresias (discretized 2D-LAS): JCTs computed by hand on one 4-GPU node.

Defaults: one threshold of 3250 GPU-s (queues Q0 and Q1), 60 s rounds, starvation limit 2.
A 4-GPU job crosses 3250 GPU-s after 3250 / 4 = 812.5 s of running; the demotion takes effect at
the next decision point (the round at the next multiple of 60 s).
"""

import pytest

from dlsched_gym.baselines import make
from dlsched_gym.errors import ConfigError


def test_tiresias_and_las_differ(simulate):
    # A (4 GPUs, 200 s) at 0, B (4 GPUs, 100 s) at 30 (the LAS test case).
    jobs = [("A", 0, 4, 200), ("B", 30, 4, 100)]
    frame = simulate(jobs, make("tiresias"))
    # A's service never reaches 3250 GPU-s: both stay in Q0, FIFO, no preemption.
    # A 0-200, B 200-300. (LAS: A 300, B 220 with two preemptions of A.)
    assert frame["jct"].to_dict() == {"A": 200.0, "B": 270.0}
    assert frame["preemptions"].sum() == 0
    las = simulate(jobs, make("las"))
    assert las["jct"].to_dict() == {"A": 300.0, "B": 220.0}


# A (4 GPUs, 1000 s) at 0; B (4 GPUs, 1000 s) at 100.
DEMOTE = [("A", 0, 4, 1000), ("B", 100, 4, 1000)]


def test_tiresias_demotion_preempts(simulate):
    frame = simulate(DEMOTE, make("tiresias"))
    # 100: B waits in Q0 behind running A (same queue: no preemption).
    # A crosses 3250 GPU-s at 812.5 s; round at 840: A -> Q1; B (Q0) preempts it.
    # B runs 840-1840 (demoted to Q1 at the 1680 round, but a running job stays ahead of the
    # waiting jobs of its queue). A's starvation promotion would come at 0 + (1 + 2) x 840 =
    # 2520, too late. 1840: A runs its last 160 s: ends 2000.
    assert frame["jct"].to_dict() == {"A": 2000.0, "B": 1740.0}
    assert frame["preemptions"].to_dict() == {"A": 1, "B": 0}


def test_tiresias_with_restart_overhead(simulate):
    frame = simulate(DEMOTE, make("tiresias"), restart_overhead=30.0)
    # As above; A restarts at 1840 and works from 1870: ends 1870 + 160 = 2030.
    assert frame["jct"].to_dict() == {"A": 2030.0, "B": 1740.0}


# A (4 GPUs, 1000 s) at 0; B (4 GPUs, 1000 s) at 100; C (4 GPUs, 2000 s) at 1000.
STARVE = [("A", 0, 4, 1000), ("B", 100, 4, 1000), ("C", 1000, 4, 2000)]


def test_tiresias_starvation_promotion(simulate):
    frame = simulate(STARVE, make("tiresias"))
    # 840: A demoted to Q1 and preempted by B (A executed 840 s, first started at 0): A's
    #      promotion is due at 0 + (1 + 2) x 840 = 2520 (waited 1680 >= 2 x 840).
    # 1000: C waits in Q0 behind running B.
    # B crosses 3250 GPU-s at 840 + 812.5 = 1652.5; round 1680: B -> Q1 (840 s done), C (Q0)
    #      preempts it.
    # C crosses 3250 at 1680 + 812.5 = 2492.5; round 2520: C -> Q1, and A is promoted to Q0:
    #      A preempts C (840 s done). A runs its last 160 s: 2520-2680.
    # 2680: Q1 holds B (entered 1680) then C (entered 2520): B 2680-2840 (160 s left),
    #      C 2840-4000 (1160 s left).
    assert frame["jct"].to_dict() == {"A": 2680.0, "B": 2740.0, "C": 3000.0}
    assert frame["preemptions"].to_dict() == {"A": 1, "B": 1, "C": 1}


def test_tiresias_without_starvation_promotion(simulate):
    frame = simulate(STARVE, make("tiresias", starvation_limit=0))
    # As above until 2520, where C is demoted to Q1 but nobody is promoted: A and B wait in Q1
    # behind running C (a running job stays ahead of its queue's waiting jobs).
    # C 1680-3680; then FIFO in Q1: A (entered 840) 3680-3840, B (entered 1680) 3840-4000.
    assert frame["jct"].to_dict() == {"A": 3840.0, "B": 3900.0, "C": 2680.0}


def test_tiresias_three_queues(simulate):
    # Thresholds 400 and 2000 GPU-s. A (4 GPUs, 1000 s) at 0; B (4 GPUs, 300 s) at 200.
    frame = simulate([("A", 0, 4, 1000), ("B", 200, 4, 300)],
                     make("tiresias", thresholds=(400, 2000), starvation_limit=0))
    # A crosses 400 GPU-s at 100 s; round 120: A -> Q1. 200: B (Q0) preempts A (200 s done).
    # B crosses 400 at 300; round 300: B -> Q1, behind A there but running: B continues.
    # B crosses 2000 GPU-s at 200 + 500 = 700 > its end at 500: B ends at 500.
    # A resumes 500 with 800 s left: ends 1300.
    assert frame["jct"].to_dict() == {"A": 1300.0, "B": 300.0}


@pytest.mark.parametrize("params, name", [
    ({"thresholds": ()}, "thresholds"),
    ({"thresholds": (3000, 1000)}, "thresholds"),
    ({"thresholds": (-1,)}, "thresholds"),
    ({"round_seconds": 0}, "round_seconds"),
    ({"starvation_limit": -1}, "starvation_limit"),
])
def test_tiresias_bad_parameters(params, name):
    with pytest.raises(ConfigError, match=name):
        make("tiresias", **params)
