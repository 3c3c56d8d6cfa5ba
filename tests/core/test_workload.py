"""The normalized workload: validation errors name file, row and column; nothing is dropped
silently."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dlsched_gym.errors import WorkloadError
from dlsched_gym.workload import SCHEMA, from_records, normalize


def frame(**over):
    base = {"job_id": ["a", "b", "c"], "submit_time": [5.0, 0.0, 3.0], "duration": [10.0, 20.0, 30.0],
            "num_gpus": [1, 2, 4]}
    base.update(over)
    return pd.DataFrame(base)


def test_defaults_and_sorting():
    wl = normalize(frame(), name="t")
    t = wl.table
    assert list(t.columns) == list(SCHEMA)
    assert t["job_id"].tolist() == ["b", "c", "a"]  # sorted by submit_time
    assert t["min_gpus"].tolist() == [2, 4, 1] and t["max_gpus"].tolist() == [2, 4, 1]
    assert math.isnan(t["deadline"].iloc[0]) and t["user"].iloc[0] == ""


@pytest.mark.parametrize(
    "over, message",
    [
        ({"duration": [10.0, -1.0, 30.0]}, r"f.csv: row 1 \(job_id 'b'\), column 'duration'"),
        ({"num_gpus": [1, "two", 4]}, r"row 1 \(job_id 'b'\), column 'num_gpus': expected an integer"),
        ({"num_gpus": [1, 1.5, 4]}, r"column 'num_gpus': expected an integer"),
        ({"submit_time": [5.0, "x", 3.0]}, r"column 'submit_time': expected a number, got 'x'"),
        ({"job_id": ["a", "a", "c"]}, "duplicate job id"),
        ({"num_gpus": [1, 0, 4]}, "expected an integer >= 1"),
        ({"durtion": [1, 2, 3]}, "unknown column"),
    ],
)
def test_bad_rows_name_row_and_column(over, message):
    with pytest.raises(WorkloadError, match=message):
        normalize(frame(**over), where="f.csv")


def test_missing_required_column():
    with pytest.raises(WorkloadError, match="column 'duration': required column missing"):
        normalize(frame().drop(columns=["duration"]), where="f.csv")


def test_drop_invalid_reports_counts():
    # a is valid; b has a negative duration; c asks for 99 GPUs of 8.
    wl = normalize(frame(duration=[10.0, -1.0, 30.0], num_gpus=[1, 2, 99]), drop_invalid=True,
                   max_gpus_allowed=8)
    assert wl.table["job_id"].tolist() == ["a"]
    assert wl.attrs["dropped"] == {"duration: expected a finite duration > 0 s": 1,
                                   "num_gpus: more GPUs than the cluster has (8)": 1}


def test_window_scale_and_select():
    wl = from_records([{"submit_time": t, "duration": 10, "num_gpus": 1, "vc": v,
                        "deadline": t + 100} for t, v in [(0, "x"), (10, "y"), (30, "x"), (70, "y")]])
    w = wl.window(1, 2)
    assert w.table["submit_time"].tolist() == [0.0, 20.0]
    assert w.table["deadline"].tolist() == [100.0, 120.0]
    s = wl.scale_load(2.0)
    assert s.table["submit_time"].tolist() == [0.0, 5.0, 15.0, 35.0]
    assert s.table["deadline"].tolist() == [100.0, 105.0, 115.0, 135.0]  # offsets kept
    y = wl.select(wl.table["vc"] == "y", label="y")
    assert y.table["submit_time"].tolist() == [0.0, 60.0] and y.name == "workload/y"
    with pytest.raises(WorkloadError, match="outside the workload"):
        wl.window(10, 2)
    with pytest.raises(WorkloadError, match="load factor"):
        wl.scale_load(0)


def test_integer_beyond_2_pow_53_is_refused_not_wrapped():
    # int64 would wrap 1e30 GPUs to a negative count; a float cannot hold every integer past 2**53
    with pytest.raises(WorkloadError, match=r"column 'num_gpus': expected an integer <= 2\*\*53, got 1e\+30"):
        from_records([{"job_id": "a", "submit_time": 0, "duration": 5, "num_gpus": 1e30}])
