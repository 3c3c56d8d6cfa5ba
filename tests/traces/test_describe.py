"""describe() and plot() on a small workload whose statistics are known by hand."""

from __future__ import annotations

import pytest

from dlsched_gym import traces
from dlsched_gym.workload import from_records


def small():
    # 5 jobs over 2 hours: durations 10..50 s, GPUs 1, 1, 2, 4, 1
    return from_records(
        [
            {"submit_time": 0, "duration": 10, "num_gpus": 1, "status": "Pass"},
            {"submit_time": 1800, "duration": 20, "num_gpus": 1, "status": "Pass"},
            {"submit_time": 3600, "duration": 30, "num_gpus": 2, "status": "Failed"},
            {"submit_time": 5400, "duration": 40, "num_gpus": 4, "status": "Pass"},
            {"submit_time": 7200, "duration": 50, "num_gpus": 1, "status": "Killed"},
        ],
        name="small",
    )


def test_describe_small_workload():
    d = traces.describe(small())
    assert d["jobs"] == 5
    assert d["span_seconds"] == 7200
    assert d["arrival_rate_per_hour"] == 2.0  # 4 gaps in 2 h
    assert d["gpu_mix"] == {1: 3, 2: 1, 4: 1}
    assert d["mean_gpus"] == 9 / 5
    assert d["duration_seconds"]["p50"] == 30 and d["duration_seconds"]["mean"] == 30
    assert d["duration_seconds"]["p25"] == 20 and d["duration_seconds"]["max"] == 50
    assert d["gpu_hours"] == pytest.approx((10 + 20 + 60 + 160 + 50) / 3600)
    assert d["status_mix"] == {"Pass": 3, "Failed": 1, "Killed": 1}


def test_describe_by_name():
    d = traces.describe("elasticflow-pollux-195")
    assert d["jobs"] == 195 and d["gpu_mix"] == {1: 118, 2: 1, 4: 45, 8: 28, 16: 3}  # SOURCES.md


def test_plot_writes_png(tmp_path):
    path = traces.plot(small(), tmp_path / "sub" / "small.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000
