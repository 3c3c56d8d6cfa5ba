"""FIFO, strict and with backfill: JCTs computed by hand on one 4-GPU node."""

from dlsched_gym.baselines import make

# A: 3 GPUs 100 s, B: 2 GPUs 50 s, C: 1 GPU 30 s, all submitted at t=0 in this order.
JOBS = [("A", 0, 3, 100), ("B", 0, 2, 50), ("C", 0, 1, 30)]


def test_strict_fifo_stops_at_the_first_job_that_does_not_fit(simulate):
    jct = simulate(JOBS, make("fifo"))["jct"].to_dict()
    # A runs 0-100 (1 GPU left); B needs 2 and blocks C.
    # At 100: B runs 100-150, C runs 100-130.
    assert jct == {"A": 100.0, "B": 150.0, "C": 130.0}


def test_fifo_backfill_starts_a_later_job_that_fits(simulate):
    jct = simulate(JOBS, make("fifo", backfill=True))["jct"].to_dict()
    # A 0-100; B (2 GPUs) does not fit in the 1 free GPU, C does: C 0-30.
    # At 30 still only 1 GPU free; at 100 B runs 100-150.
    assert jct == {"A": 100.0, "B": 150.0, "C": 30.0}


def test_fifo_backfill_registered_name(simulate):
    assert make("fifo-backfill").name == "fifo-backfill"
    jct = simulate(JOBS, make("fifo-backfill"))["jct"].to_dict()
    assert jct == {"A": 100.0, "B": 150.0, "C": 30.0}
