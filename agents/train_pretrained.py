"""Rebuild the bundled ``pretrained:philly`` agent and score it on held-out windows.

    python -m dlsched_gym.agents.train_pretrained [--timesteps N] [--n-envs N] [--out DIR]

Recipe: ``DLCluster-v0`` defaults (Philly VC 103959 at 4x load, 256-job windows, K = 32, oracle
predictor) with ``window_order="duration"`` (the K shortest queued jobs are visible); training
windows from the first 80% of the trace; a behaviour-cloning warm start from strict
shortest-job-first (SJF with backfill starves the 4-GPU jobs at this load), then MaskablePPO with a
small learning rate; the final model is kept (no selection on held-out windows). Written to
``agents/pretrained/philly.zip`` with ``philly.json`` (recipe, sha256, held-out results); record
the printed sha256 in ``dlsched_gym.agents.policies.PRETRAINED`` so that ``load_agent`` accepts it.

Held-out evaluation: the plain engine runs the agent (as a PolicyScheduler) and the baselines on
windows from the last 20% of the trace, which training never sees.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from dlsched_gym import baselines, traces
from dlsched_gym.agents.policies import PolicyScheduler, load_model, sha256_of
from dlsched_gym.agents.training import train
from dlsched_gym.engine import Engine
from dlsched_gym.env import DEFAULT_EPISODE_JOBS, DEFAULT_LOAD, DEFAULT_TRACE, TRAIN_FRACTION
from dlsched_gym.metrics import reward_terms, summarize

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
#: The env options of the bundled agent (everything else: DLCluster-v0 defaults).
ENV_KWARGS = {"window_order": "duration"}


def held_out_windows(n_windows: int = 8) -> tuple[list, list[int]]:
    """Workload windows of the default env's test split (load-scaled), and their start indices."""
    wl = traces.load(DEFAULT_TRACE).scale_load(DEFAULT_LOAD)
    lo = int(len(wl) * TRAIN_FRACTION)
    hi = len(wl) - DEFAULT_EPISODE_JOBS
    starts = [int(s) for s in np.linspace(lo, hi, n_windows).astype(int)]
    return [wl.window(s, DEFAULT_EPISODE_JOBS) for s in starts], starts


#: Held-out rows: ``label -> (scheduler name, parameters, engine predictor)``. The agent sees the
#: env's default oracle durations; SJF and SRTF are shown with the same oracle, QSSF and FIFO with
#: their published information (QSSF: history estimates) and, for QSSF, also with the oracle.
HELD_OUT_ROWS: dict[str, tuple[str, dict, str]] = {
    "fifo": ("fifo", {}, "oracle"),
    "sjf (oracle)": ("sjf", {}, "oracle"),
    "qssf (history estimate)": ("qssf", {}, "history"),
    "qssf (oracle)": ("qssf", {}, "oracle"),
    "tiresias": ("tiresias", {}, "oracle"),
    "las": ("las", {}, "oracle"),
    "srtf (oracle)": ("srtf", {}, "oracle"),
}


def evaluate_held_out(model, n_windows: int = 8) -> dict[str, list[dict]]:
    """Per-window summaries (``metrics.summarize`` plus ``return``, the env's episode return) of the
    agent (label ``"agent"``) and every :data:`HELD_OUT_ROWS` scheduler on the held-out windows."""
    windows, _ = held_out_windows(n_windows)
    rows = {"agent": (None, {}, "oracle"), **HELD_OUT_ROWS}
    out: dict[str, list[dict]] = {}
    for label, (name, params, predictor) in rows.items():
        out[label] = []
        for w in windows:
            sched = (PolicyScheduler(model, name="agent", window_order=ENV_KWARGS["window_order"])
                     if name is None else baselines.make(name, **params))
            eng = Engine(w, DEFAULT_TRACE, predictor=predictor)
            summary = summarize(eng.run(sched))
            # the default env's reward (scale 3600 s, util_weight 0) summed over the episode
            summary["return"] = reward_terms(eng.jobs_in_system_seconds, eng.busy_gpu_seconds,
                                             eng.spec.num_gpus, 3600.0, 0.0)[0]
            out[label].append(summary)
    return out


def compare(model, n_windows: int = 8) -> dict[str, float]:
    """Mean average JCT (s) over the held-out windows, per row of :func:`evaluate_held_out`."""
    return {label: float(np.mean([s["avg_jct"] for s in runs]))
            for label, runs in evaluate_held_out(model, n_windows).items()}


def main(argv: list[str] | None = None) -> None:
    """Train, save, checksum and score the bundled agent."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--timesteps", type=int, default=30_000)
    ap.add_argument("--n-envs", type=int, default=2)
    ap.add_argument("--bc-steps", type=int, default=8000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="runs/pretrained-philly")
    args = ap.parse_args(argv)
    t0 = time.time()
    out = train("maskable_ppo", env_kwargs=ENV_KWARGS, timesteps=args.timesteps, n_envs=args.n_envs,
                seed=args.seed, out_dir=args.out, progress=True, eval_freq=max(args.timesteps // 4, 1),
                eval_windows=4, bc_teacher="sjf", bc_steps=args.bc_steps, bc_epochs=10,
                algo_kwargs={"n_steps": 512, "batch_size": 256, "n_epochs": 4, "learning_rate": 1e-4,
                             "gamma": 0.995})
    wall = time.time() - t0
    PRETRAINED_DIR.mkdir(exist_ok=True)
    target = PRETRAINED_DIR / "philly.zip"
    shutil.copyfile(out / "model.zip", target.with_suffix(".tmp"))
    os.replace(target.with_suffix(".tmp"), target)
    digest = sha256_of(target)
    results = compare(load_model(target, "maskable_ppo"))
    meta = {"algo": "maskable_ppo", "sha256": digest, "env_id": "DLCluster-v0", "env_kwargs": ENV_KWARGS,
            "timesteps": args.timesteps, "n_envs": args.n_envs, "seed": args.seed,
            "bc_teacher": "sjf", "bc_steps": args.bc_steps, "bc_epochs": 10, "train_wall_seconds": wall,
            "evaluations": (out / "evaluations.csv").read_text().splitlines(),
            "held_out_avg_jct": results}
    (PRETRAINED_DIR / "philly.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"sha256 {digest}  ({target.stat().st_size} bytes, trained in {wall:.0f} s)")
    for name, jct in results.items():
        print(f"{name:10s} {jct:10.0f} s  ({jct / results['fifo']:.3f} x FIFO)")


if __name__ == "__main__":
    main()
