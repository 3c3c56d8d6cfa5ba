"""Fixtures of the evaluation tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def trace(tmp_path) -> str:
    """Six jobs on a 1x4 cluster: FIFO blocks c, d and e behind b, so backfill changes the JCTs."""
    path = tmp_path / "trace.csv"
    path.write_text("job_id,submit_time,duration,num_gpus\n"
                    "a,0,100,2\nb,10,50,4\nc,20,30,1\nd,25,40,2\ne,30,10,1\nf,200,60,4\n")
    return str(path)
