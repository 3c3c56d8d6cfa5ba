"""Helpers for the hand-computed baseline tests."""

from __future__ import annotations

import pytest

from dlsched_gym.engine import Engine
from dlsched_gym.workload import from_records


def _row(job_id, submit, gpus, duration, **extra):
    return {"job_id": job_id, "submit_time": submit, "num_gpus": gpus, "duration": duration, **extra}


@pytest.fixture
def simulate():
    """``simulate(jobs, scheduler, cluster="1x4-V100", **engine_options)`` -> per-job frame.

    ``jobs`` is a list of ``(job_id, submit_time, num_gpus, duration)`` tuples, optionally with a
    dict of extra columns as fifth element. Returns ``SimResult.jobs_frame()`` indexed by job id.
    """

    def run(jobs, scheduler, cluster="1x4-V100", **engine_options):
        rows = [_row(*j[:4], **(j[4] if len(j) > 4 else {})) for j in jobs]
        engine_options.setdefault("timeline_interval", None)
        result = Engine(from_records(rows), cluster, **engine_options).run(scheduler)
        assert not result.stalled and not result.truncated
        return result.jobs_frame().set_index("job_id")

    return run

