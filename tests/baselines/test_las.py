"""LAS (least attained GPU-service, preemptive, 60 s rounds): JCTs computed by hand."""

import pytest

from dlsched_gym.baselines import make
from dlsched_gym.errors import ConfigError

# One 4-GPU node: A (4 GPUs, 200 s) at 0; B (4 GPUs, 100 s) at 30.
JOBS = [("A", 0, 4, 200), ("B", 30, 4, 100)]


def test_las_switches_to_the_job_with_less_service(simulate):
    frame = simulate(JOBS, make("las"))
    # Service in GPU-s = 4 x executed time.
    # 30: A has 120 > B's 0: A preempted (30 s done), B runs.
    # 60 (round): B 120 = A 120, tie: the running job stays.
    # 120: B 360 > A 120: B preempted (90 s done), A runs.
    # 180: A 120 + 240 = 360 = B 360: A stays.
    # 240: A 600 > B 360: A preempted (30 + 120 = 150 s done), B runs its last 10 s: ends 250.
    # 250: A runs its last 50 s: ends 300.
    assert frame["jct"].to_dict() == {"A": 300.0, "B": 220.0}
    assert frame["preemptions"].to_dict() == {"A": 2, "B": 1}


def test_las_with_restart_overhead(simulate):
    frame = simulate(JOBS, make("las"), restart_overhead=10.0)
    # Same switches (service counts the time a job holds GPUs, overhead included):
    # 30: A preempted after 30 s of work; B starts (first start: no overhead).
    # 120: B preempted after 90 s; A restarts, works from 130.
    # 180: A's service 120 + 4 x 60 = 360 = B's: A stays.
    # 240: A preempted after 30 + 110 = 140 s of work; B restarts, works from 250: ends 260.
    # 260: A restarts, works from 270 for its last 60 s: ends 330.
    assert frame["jct"].to_dict() == {"A": 330.0, "B": 230.0}


def test_las_round_parameter(simulate):
    frame = simulate(JOBS, make("las", round_seconds=1000))
    # 30: B preempts A (service 120 > 0). No round before B ends at 130 (B 4 x 100 = 400 > A's
    # 120 would have switched back at a round). A resumes at 130 with 170 s left: ends 300.
    assert frame["jct"].to_dict() == {"A": 300.0, "B": 100.0}


@pytest.mark.parametrize("bad", [0, -5, float("inf"), "x"])
def test_las_bad_round(bad):
    with pytest.raises(ConfigError, match="round_seconds"):
        make("las", round_seconds=bad)
