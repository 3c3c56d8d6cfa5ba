"""Shared test helpers."""

from __future__ import annotations

import pytest

from dlsched_gym.workload import from_records


@pytest.fixture
def make_workload():
    """Build a workload from (submit_time, duration, num_gpus[, extra dict]) tuples."""

    def build(rows, **kwargs):
        records = []
        for i, row in enumerate(rows):
            rec = {"job_id": f"j{i}", "submit_time": row[0], "duration": row[1], "num_gpus": row[2]}
            if len(row) > 3:
                rec.update(row[3])
            records.append(rec)
        return from_records(records, **kwargs)

    return build
