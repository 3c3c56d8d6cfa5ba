"""Determinism: the same cells give bit-identical result files across runs, interpreters (different
hash seeds) and worker counts; only files documented as run-specific may differ.

Across backends (local vs Ray) the same check is in ``tests/evaluate/test_ray.py`` (it needs a Ray
instance, which takes long to start, so it is not repeated here).
"""

from __future__ import annotations

import json

import pandas as pd

from dlsched_gym import evaluate
from dlsched_gym.cli import main
from dlsched_gym.evaluate import expand_grid, run_grid

# A noisy predictor and random placement make the seed matter (see test_the_seed_matters).
GRID = dict(schedulers=["sjf", "fifo-backfill"], clusters=["2x2", "1x4"], seeds=[0, 1],
            predictor="noisy", placement="random")


def grid(trace: str) -> list[evaluate.Cell]:
    """The 2 x 2 x 2 = 8 cells of :data:`GRID` on ``trace``."""
    return expand_grid(GRID["schedulers"], [trace], GRID["clusters"], seeds=GRID["seeds"],
                       predictor=GRID["predictor"], placement=GRID["placement"])


def subprocess_run(trace: str, out: str, workers: int) -> str:
    """Python code that runs :func:`grid` into ``out`` with ``workers`` processes."""
    return (f"from dlsched_gym.evaluate import expand_grid, run_grid\n"
            f"cells = expand_grid({GRID['schedulers']!r}, [{trace!r}], {GRID['clusters']!r}, "
            f"seeds={GRID['seeds']!r}, predictor={GRID['predictor']!r}, "
            f"placement={GRID['placement']!r})\n"
            f"run_grid(cells, {out!r}, workers={workers}, progress=False)\n")


def test_same_files_across_interpreters_hash_seeds_and_workers(tmp_path, trace, snapshot, python):
    # A fresh interpreter with its own hash seed (str set and dict orders differ) and a process pool,
    # against this process with one worker: one set of bytes.
    proc = python(subprocess_run(trace, str(tmp_path / "a"), workers=2), env={"PYTHONHASHSEED": "4242"})
    assert proc.returncode == 0, proc.stderr
    run_grid(grid(trace), tmp_path / "b", workers=1, progress=False)
    a, b = snapshot(tmp_path / "a"), snapshot(tmp_path / "b")
    assert len(a) == 3 * 8  # cells, jobs and timeline of 8 cells
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_same_files_across_runs_in_one_process(tmp_path, trace, snapshot):
    # The second run reuses the process's cached workload; it must not change the results.
    for name in ("a", "b"):
        run_grid(grid(trace), tmp_path / name, workers=1, progress=False)
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")


def test_the_seed_matters(tmp_path, trace, snapshot):
    # Without this, identical files could just mean the seed is ignored. SJF with a noisy
    # predictor on 2x2: seeds 0 and 1 order the jobs differently.
    cells = expand_grid(["sjf"], [trace], ["2x2"], seeds=[0, 1], predictor="noisy")
    df = run_grid(cells, tmp_path, workers=1, progress=False).set_index("seed")
    assert df.loc[0, "avg_jct"] != df.loc[1, "avg_jct"]
    jobs = [(tmp_path / "jobs" / f"{c.key}.parquet").read_bytes() for c in cells]
    assert jobs[0] != jobs[1]


def test_cell_record_holds_nothing_run_specific(tmp_path, trace):
    (cell,) = expand_grid(["fifo"], [trace], ["1x4"])
    run_grid([cell], tmp_path, workers=1, progress=False)
    record = json.loads((tmp_path / "cells" / f"{cell.key}.json").read_text())
    # configuration, versions, workload and metrics only: no time stamp, host, pid or duration
    assert sorted(record) == ["config", "key", "label", "metrics", "versions", "workload"]
    # (simulated-time metrics such as finish-time fairness are deterministic; wall-clock ones not)
    assert not any("wall" in k or k.endswith(("_time", "timestamp")) for k in record["metrics"])
    assert sorted(json.loads((tmp_path / "timing" / f"{cell.key}.json").read_text())) == ["wall_s"]


def _two_leaderboards(tmp_path, trace) -> list[pd.DataFrame]:
    tables = []
    for name in ("a", "b"):
        df = run_grid(grid(trace), tmp_path / name, workers=1, progress=False)
        evaluate.write_leaderboard(df, tmp_path / name)
        tables.append(pd.read_csv(tmp_path / name / "leaderboard.csv"))
    return tables


def test_leaderboard_files_leave_out_wall_time(tmp_path, trace):
    df = run_grid(grid(trace), tmp_path, workers=1, progress=False)
    returned = evaluate.write_leaderboard(df, tmp_path)
    assert "wall_s_mean" in returned.columns  # printed by the CLI
    written = pd.read_csv(tmp_path / "leaderboard.csv")
    assert not any(c.startswith("wall_s") for c in written.columns)
    assert "wall" not in (tmp_path / "leaderboard.md").read_text()


def test_leaderboard_file_is_deterministic(tmp_path, trace):
    _two_leaderboards(tmp_path, trace)
    assert (tmp_path / "a" / "leaderboard.csv").read_bytes() == \
        (tmp_path / "b" / "leaderboard.csv").read_bytes()


def _two_simulations(tmp_path, trace) -> list[dict]:
    for name in ("a", "b"):
        assert main(["simulate", "--trace", trace, "--cluster", "2x2", "--scheduler", "sjf",
                     "--predictor", "noisy", "--out", str(tmp_path / name)]) == 0
    return [json.loads((tmp_path / name / "summary.json").read_text()) for name in ("a", "b")]


def test_simulate_outputs_identical_but_for_wall_time(tmp_path, trace):
    a, b = _two_simulations(tmp_path, trace)
    for f in ("jobs.csv", "timeline.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert a == b and "wall_s" not in a
    for name in ("a", "b"):  # the wall time is kept, apart
        assert list(json.loads((tmp_path / name / "timing.json").read_text())) == ["wall_s"]


def test_simulate_summary_is_deterministic(tmp_path, trace):
    _two_simulations(tmp_path, trace)
    assert (tmp_path / "a" / "summary.json").read_bytes() == (tmp_path / "b" / "summary.json").read_bytes()
