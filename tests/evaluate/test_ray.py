"""The Ray backend on a real local Ray instance: the same files as the local backend, through the
API and through ``dlsched evaluate --backend ray``; a failing cell reports the same error.

Skipped where Ray is not installed (``pip install 'dlsched-gym[ray]'``). Starting Ray takes a
while, so one instance (2 CPUs, no dashboard) serves the whole module and is shut down after it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dlsched_gym import evaluate
from dlsched_gym.cli import main
from dlsched_gym.errors import WorkloadError
from dlsched_gym.evaluate import expand_grid, load_results, run_grid

ray = pytest.importorskip("ray")

#: Result files that must be bit-identical whatever the backend (``timing/`` is wall-clock time).
DETERMINISTIC = ("cells", "jobs", "timeline")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """A local Ray instance for the module's tests (the backend reuses an initialized Ray)."""
    if ray.is_initialized():  # someone else's instance: leave it alone
        yield
        return
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def assert_same_files(a: Path, b: Path, expected: int) -> None:
    """``a`` and ``b`` hold the same deterministic result files, byte for byte."""
    for sub in DETERMINISTIC:
        names = sorted(p.name for p in (a / sub).iterdir())
        assert len(names) == expected, sub
        assert names == sorted(p.name for p in (b / sub).iterdir()), sub
        for name in names:
            assert (a / sub / name).read_bytes() == (b / sub / name).read_bytes(), f"{sub}/{name}"


def test_ray_grid_equals_local_grid(tmp_path, trace):
    # Random placement and a noisy predictor: the seed matters, so a backend that lost or reused
    # seeds would show up in the files. 2 schedulers x 2 clusters x 2 seeds = 8 cells.
    cells = expand_grid(["fifo", "fifo-backfill"], [trace], ["1x4", "2x2"], seeds=[0, 1],
                        placement="random", predictor="noisy")
    local = run_grid(cells, tmp_path / "local", workers=1, progress=False)
    remote = run_grid(cells, tmp_path / "ray", workers=2, backend="ray", progress=False)
    assert_same_files(tmp_path / "local", tmp_path / "ray", expected=8)
    # per-cell summaries: every column but the wall-clock time
    pd.testing.assert_frame_equal(local.drop(columns="wall_s"), remote.drop(columns="wall_s"))
    for key in local["key"]:  # per-job tables, read back
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "local" / "jobs" / f"{key}.parquet"),
                                      pd.read_parquet(tmp_path / "ray" / "jobs" / f"{key}.parquet"))
    assert (remote["wall_s"] >= 0).all()


def test_cli_backend_ray(tmp_path, trace, capsys):
    args = ["evaluate", "--trace", trace, "--cluster", "1x4", "--schedulers", "fifo,sjf",
            "--seeds", "0,1", "--workers", "2"]
    assert main([*args, "--out", str(tmp_path / "local"), "--backend", "local"]) == 0
    assert main([*args, "--out", str(tmp_path / "ray"), "--backend", "ray"]) == 0
    out = capsys.readouterr().out
    assert "4 cells (4 run now, 0 already done)" in out
    assert_same_files(tmp_path / "local", tmp_path / "ray", expected=4)
    # Hand check of one cell. FIFO on 1x4: a 0-100; b (4 GPUs) waits for a: 100-150; c, d, e
    # (1 + 2 + 1 GPUs) wait behind b and all start at 150: c 150-180, d 150-190, e 150-160;
    # f 200-260. JCTs 100, 140, 160, 165, 130, 60 -> mean 755 / 6.
    df = load_results(tmp_path / "ray")
    fifo = df[df["scheduler"] == "fifo"]
    assert fifo["avg_jct"].tolist() == pytest.approx([755 / 6] * 2)


def test_failed_cell_same_error_as_local(tmp_path, trace):
    # b and f need 4 GPUs; a 1x2 cluster cannot hold them, so that cell fails in both backends.
    cells = expand_grid(["fifo"], [trace], ["1x4", "1x2"])
    messages = []
    for backend in ("local", "ray"):
        with pytest.raises(WorkloadError, match=r"1 of 2 cells failed; first: fifo") as info:
            run_grid(cells, tmp_path / backend, workers=2, backend=backend, progress=False)
        messages.append(str(info.value))
        assert evaluate.is_done(cells[0], tmp_path / backend)
        assert not evaluate.is_done(cells[1], tmp_path / backend)
    assert messages[0] == messages[1]
