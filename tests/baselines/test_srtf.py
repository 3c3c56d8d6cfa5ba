"""SRTF (oracle remaining times, preemptive): JCTs computed by hand."""

from dlsched_gym.baselines import make

# One 4-GPU node. A (4 GPUs, 100 s) at 0; B (4 GPUs, 30 s) at 20; C (2 GPUs, 200 s) at 30.
JOBS = [("A", 0, 4, 100), ("B", 20, 4, 30), ("C", 30, 2, 200)]


def test_srtf_preempts_a_longer_running_job(simulate):
    frame = simulate(JOBS, make("srtf"))
    # At 20: A has 80 s left > B's 30 s: A preempted, B 20-50.
    # At 30: order B (20 left), A (80), C (200): B holds all 4 GPUs.
    # At 50: A resumes 50-130 (80 s left); C waits (A ahead). At 130: C 130-330.
    assert frame["jct"].to_dict() == {"A": 130.0, "B": 30.0, "C": 300.0}
    assert frame["preemptions"].to_dict() == {"A": 1, "B": 0, "C": 0}


def test_srtf_with_restart_overhead(simulate):
    frame = simulate(JOBS, make("srtf"), restart_overhead=10.0)
    # As above, but A's restart at 50 makes no progress until 60: A ends 60 + 80 = 140.
    # C starts at 140 and ends 340: JCT 340 - 30 = 310.
    assert frame["jct"].to_dict() == {"A": 140.0, "B": 30.0, "C": 310.0}


# One 4-GPU node: A (2 GPUs, 100 s) and B (2 GPUs, 200 s) at 0; C (2 GPUs, 50 s) at 10.
GREEDY = [("A", 0, 2, 100), ("B", 0, 2, 200), ("C", 10, 2, 50)]


def test_srtf_preempts_only_the_job_that_falls_outside(simulate):
    frame = simulate(GREEDY, make("srtf"))
    # At 10: remaining C 50, A 90, B 190. C and A fill the 4 GPUs; B is preempted.
    # C 10-60; B resumes at 60 with 190 s left: 60-250. A ends at 100.
    assert frame["jct"].to_dict() == {"A": 100.0, "B": 250.0, "C": 50.0}
    assert frame["preemptions"].to_dict() == {"A": 0, "B": 1, "C": 0}


def test_srtf_greedy_with_overhead(simulate):
    frame = simulate(GREEDY, make("srtf"), restart_overhead=5.0)
    # B restarts at 60, progresses from 65: ends 65 + 190 = 255.
    assert frame["jct"].to_dict() == {"A": 100.0, "B": 255.0, "C": 50.0}


def test_srtf_does_not_preempt_when_the_freed_gpus_cannot_be_used(simulate):
    # Two 4-GPU nodes. A (3 GPUs, 1000 s) at 0 goes to node 0; B (1 GPU, 60 s) at 1 fills node
    # 0 (best fit); C (2 GPUs, 900 s) at 2 goes to node 1; Q (4 GPUs, 100 s) arrives at 10.
    jobs = [("A", 0, 3, 1000), ("B", 1, 1, 60), ("C", 2, 2, 900), ("Q", 10, 4, 100)]
    frame = simulate(jobs, make("srtf"), cluster="2x4-V100")
    # At 10: order B (51 left), Q (100), C (892), A (990). By GPU count Q, B and C fit in 8 and A
    # falls outside, but with A's 3 GPUs freed the free GPUs are 3 + 2 on two nodes: Q (one node
    # of 4) cannot be placed, so A keeps running (no wasted preemption).
    # At 61 B ends: node 0 would have 4 free GPUs without A: A is preempted, Q runs 61-161.
    # At 161 A resumes with 1000 - 61 = 939 s left: ends 1100. C ends at 902.
    assert frame["jct"].to_dict() == {"A": 1100.0, "B": 60.0, "C": 900.0, "Q": 151.0}
    assert frame["preemptions"].to_dict() == {"A": 1, "B": 0, "C": 0, "Q": 0}
