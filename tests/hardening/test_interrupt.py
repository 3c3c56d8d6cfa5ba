"""Interruptions: ``dlsched evaluate`` killed with SIGKILL in the middle of writing a result leaves
no partial file under a final name, and a rerun resumes (skips the finished cells) to the same
files as an uninterrupted run. Training killed after a checkpoint resumes from it and continues
the timestep count.

To kill at a known point, the evaluation runs in a fresh interpreter where the writer of the
third cell's file writes half of it into its temporary file, signals, and waits to be killed.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sb3_contrib import MaskablePPO

from dlsched_gym import evaluate
from dlsched_gym.agents import train
from dlsched_gym.cli import main

#: ``dlsched evaluate`` arguments (without --out): 2 schedulers x 3 seeds = 6 cells, one worker, so
#: the cells run and are written in order.
ARGS = ["evaluate", "--cluster", "2x2", "--schedulers", "fifo,sjf", "--seeds", "0,1,2",
        "--predictor", "noisy", "--workers", "1"]

#: Runs ``dlsched evaluate`` where the writer of the third cell's ``{kind}`` file hangs halfway.
HANGING_WRITER = """
import sys, time
from pathlib import Path
from dlsched_gym import cli, evaluate

real_atomic_write = evaluate.atomic_write
seen = []

def atomic_write(path, write):
    path = Path(path)
    if path.parent.name == {kind!r}:
        seen.append(path)
        if len(seen) == 3:
            def half(tmp):
                write(tmp)
                data = tmp.read_bytes()
                tmp.write_bytes(data[: len(data) // 2])
                Path({flag!r}).write_text(str(path))
                time.sleep(600)
            return real_atomic_write(path, half)
    return real_atomic_write(path, write)

evaluate.atomic_write = atomic_write
sys.exit(cli.main({argv!r}))
"""


def run_until_hung(argv: list[str], kind: str, flag: Path, timeout: float = 180) -> str:
    """Start the hanging evaluation, wait until it hangs mid-write, SIGKILL its process group;
    return the final path of the file being written."""
    code = HANGING_WRITER.format(kind=kind, flag=str(flag), argv=argv)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not flag.exists():
            if proc.poll() is not None:
                pytest.fail(f"the evaluation ended (status {proc.returncode}) before hanging: "
                            f"{proc.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail("the evaluation did not reach the third write in time")
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return flag.read_text()


def assert_complete(out: Path) -> int:
    """Every result file under its final name is whole (JSON parses, parquet reads); returns how
    many there are."""
    count = 0
    for sub in ("cells", "timing"):
        for f in (out / sub).glob("*.json"):
            json.loads(f.read_text())
            count += 1
    for sub in ("jobs", "timeline"):
        for f in (out / sub).glob("*.parquet"):
            pq.read_table(f)
            count += 1
    return count


@pytest.mark.parametrize("kind", ["jobs", "cells"])  # the first and the last file of a cell
def test_sigkill_mid_write_then_resume(tmp_path, trace, snapshot, capsys, kind):
    argv = [*ARGS, "--trace", trace]
    assert main([*argv, "--out", str(tmp_path / "reference")]) == 0
    out = tmp_path / "killed"
    hung = Path(run_until_hung([*argv, "--out", str(out)], kind, tmp_path / "flag"))

    # Killed: the half-written file exists only under its temporary name, and every file under a
    # final name is whole. Cells 1 and 2 are complete (4 files each); of cell 3, only the files
    # written before the hung one: none before jobs/, three (jobs, timeline, timing) before cells/.
    assert not hung.exists()
    assert hung.parent.name == kind
    leftovers = sorted(p.name for p in out.rglob("*") if p.name.endswith(".tmp"))
    assert len(leftovers) == 1 and leftovers[0].startswith(f".{hung.name}.")
    assert assert_complete(out) == 2 * 4 + (3 if kind == "cells" else 0)
    assert len(evaluate.load_results(out)) == 2  # only complete cells count as results

    capsys.readouterr()
    assert main([*argv, "--out", str(out)]) == 0
    assert "6 cells (4 run now, 2 already done)" in capsys.readouterr().out
    assert snapshot(out) == snapshot(tmp_path / "reference")
    assert len(evaluate.load_results(out)) == 6


# ------------------------------------------------------------------------------------- training
#: A tiny training run: 64-step rollouts, one env, checkpoints every 64 steps, no evaluation.
TINY = dict(algo="maskable_ppo", n_envs=1, seed=0, progress=False, eval_freq=0, checkpoint_freq=64,
            env_kwargs={"trace": "philly-vc/103959", "episode_jobs": 40,
                                                "window": 8},
            algo_kwargs={"n_steps": 64, "batch_size": 32, "n_epochs": 1})


def checkpoints(out: Path) -> list[str]:
    """The checkpoint file names in ``out``, sorted by step."""
    return sorted((p.name for p in (out / "checkpoints").glob("model_*_steps.zip")),
                  key=lambda n: int(n.split("_")[1]))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run trained to 128 steps (checkpoints at 64 and 128)."""
    out = tmp_path_factory.mktemp("train") / "run"
    train(timesteps=128, out_dir=out, **TINY)
    assert checkpoints(out) == ["model_64_steps.zip", "model_128_steps.zip"]
    return out


def killed_copy(trained: Path, dest: Path) -> Path:
    """``trained`` as a run killed after its 128-step checkpoint: no final model.zip."""
    shutil.copytree(trained, dest)
    (dest / "model.zip").unlink()
    return dest


def test_training_resumes_from_the_last_checkpoint(trained, tmp_path):
    out = killed_copy(trained, tmp_path / "run")
    train(timesteps=192, out_dir=out, resume=True, **TINY)
    # Resumed at 128 (not from 0): 64 more steps, one more checkpoint, named by the total count.
    assert checkpoints(out) == ["model_64_steps.zip", "model_128_steps.zip", "model_192_steps.zip"]
    assert MaskablePPO.load(out / "model.zip", device="cpu").num_timesteps == 192


def test_training_resume_continues_the_reward_statistics(trained, tmp_path):
    out = killed_copy(trained, tmp_path / "run")
    saved = pickle.loads((out / "checkpoints" / "model_128_steps_vecnormalize.pkl").read_bytes())
    assert saved.ret_rms.count > 100  # 128 steps of returns seen (plus the initial epsilon)
    train(timesteps=192, out_dir=out, resume=True, **TINY)
    resumed = pickle.loads((out / "model_vecnormalize.pkl").read_bytes())
    # 64 more steps on top of the checkpoint's statistics, not 64 on fresh ones
    assert resumed.ret_rms.count == pytest.approx(saved.ret_rms.count + 64)


def test_training_resume_skips_a_checkpoint_cut_short(trained, tmp_path):
    out = killed_copy(trained, tmp_path / "run")
    newest = out / "checkpoints" / "model_128_steps.zip"  # as a kill in the middle of saving leaves it
    newest.write_bytes(newest.read_bytes()[:1000])
    train(timesteps=192, out_dir=out, resume=True, **TINY)
    assert MaskablePPO.load(out / "model.zip", device="cpu").num_timesteps == 192
