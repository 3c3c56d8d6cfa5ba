"""Rebuild a bundled agent (``pretrained:<name>``) and score it on held-out windows.

    python -m dlsched_gym.agents.train_pretrained [--agent philly|philly-preemptive] [--timesteps N]
        [--n-envs N] [--out DIR]

Recipes (:data:`RECIPES`), both on ``DLCluster-v0`` defaults (Philly VC 103959 at 4x load, 256-job
windows, K = 32) with training windows from the first 80% of the trace, then MaskablePPO with a
small learning rate; the final model is kept (no selection on held-out windows):

- ``philly``: start-only actions, oracle predictor, ``window_order="duration"`` (the K shortest
  queued jobs are visible); behaviour cloning from strict shortest-job-first (SJF with backfill
  starves the 4-GPU jobs at this load).
- ``philly-preemptive``: ``preemption=True`` with 300 s rounds and the ``history`` predictor (no
  oracle: the agent knows only what finished jobs tell, like Tiresias, LAS and QSSF);
  behaviour cloning from LAS with the same rounds, refined by DAgger rounds.

Written to ``agents/pretrained/<name>.zip`` with ``<name>.json`` (recipe, sha256, held-out
results); record the printed sha256 in ``dlsched_gym.agents.policies.PRETRAINED`` so that
``load_agent`` accepts it.

Held-out evaluation: the plain engine runs the agent (as a PolicyScheduler, with the predictor it
was trained with) and the baselines on windows from the last 20% of the trace, which training never
sees.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from dlsched_gym import baselines, traces
from dlsched_gym.agents.policies import PolicyScheduler, load_model, sha256_of
from dlsched_gym.agents.training import train
from dlsched_gym.engine import Engine
from dlsched_gym.env import DEFAULT_EPISODE_JOBS, DEFAULT_LOAD, DEFAULT_TRACE, TRAIN_FRACTION
from dlsched_gym.metrics import reward_terms, summarize

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"

#: ``name -> recipe``: env options (everything else: DLCluster-v0 defaults), behaviour-cloning
#: teacher and its parameters, BC steps (per round) and epochs, DAgger rounds, PPO timesteps,
#: evaluation period and options.
RECIPES: dict[str, dict[str, Any]] = {
    "philly": {
        "env_kwargs": {"window_order": "duration"},
        "teacher": ("sjf", {}), "bc_steps": 8000, "bc_epochs": 10, "dagger_rounds": 0,
        "timesteps": 30_000, "eval_every": 7_500,
        "algo_kwargs": {"n_steps": 512, "batch_size": 256, "n_epochs": 4, "learning_rate": 1e-4,
                        "gamma": 0.995},
    },
    "philly-preemptive": {
        "env_kwargs": {"preemption": True, "round_seconds": 300.0, "predictor": "history"},
        "teacher": ("las", {"round_seconds": 300.0}), "bc_steps": 60_000, "bc_epochs": 5,
        "dagger_rounds": 4, "timesteps": 10_000, "eval_every": 5_000,
        "algo_kwargs": {"n_steps": 2048, "batch_size": 256, "n_epochs": 4, "learning_rate": 1e-5,
                        "gamma": 0.999},
    },
}


def held_out_windows(n_windows: int = 8) -> tuple[list, list[int]]:
    """Workload windows of the default env's test split (load-scaled), and their start indices."""
    wl = traces.load(DEFAULT_TRACE).scale_load(DEFAULT_LOAD)
    lo = int(len(wl) * TRAIN_FRACTION)
    hi = len(wl) - DEFAULT_EPISODE_JOBS
    starts = [int(s) for s in np.linspace(lo, hi, n_windows).astype(int)]
    return [wl.window(s, DEFAULT_EPISODE_JOBS) for s in starts], starts


#: Held-out rows: ``label -> (scheduler name, parameters, engine predictor)``. SJF and SRTF are
#: shown with the oracle, QSSF with its published history estimates and with the oracle.
HELD_OUT_ROWS: dict[str, tuple[str, dict, str]] = {
    "fifo": ("fifo", {}, "oracle"),
    "sjf (oracle)": ("sjf", {}, "oracle"),
    "qssf (history estimate)": ("qssf", {}, "history"),
    "qssf (oracle)": ("qssf", {}, "oracle"),
    "tiresias": ("tiresias", {}, "oracle"),
    "las": ("las", {}, "oracle"),
    "las (300 s rounds)": ("las", {"round_seconds": 300.0}, "oracle"),
    "srtf (oracle)": ("srtf", {}, "oracle"),
}


def agent_scheduler(model, name: str) -> PolicyScheduler:
    """The bundled agent ``name``'s model as a PolicyScheduler with its recipe's env options."""
    return PolicyScheduler.for_env(model, RECIPES[name]["env_kwargs"], name=f"agent:{name}")


def evaluate_held_out(models: dict[str, Any], n_windows: int = 8) -> dict[str, list[dict]]:
    """Per-window summaries (``metrics.summarize`` plus ``return``, the env's episode return) of the
    bundled agents (``{recipe name: model}``, labelled ``agent:<name>``) and every
    :data:`HELD_OUT_ROWS` scheduler on the held-out windows."""
    windows, _ = held_out_windows(n_windows)
    out: dict[str, list[dict]] = {}

    def run(label: str, make, predictor: str) -> None:
        out[label] = []
        for w in windows:
            eng = Engine(w, DEFAULT_TRACE, predictor=predictor)
            summary = summarize(eng.run(make()))
            # the default env's reward (scale 3600 s, util_weight 0) summed over the episode
            summary["return"] = reward_terms(eng.jobs_in_system_seconds, eng.busy_gpu_seconds,
                                             eng.spec.num_gpus, 3600.0, 0.0)[0]
            out[label].append(summary)

    for name, model in models.items():
        run(f"agent:{name}", lambda m=model, n=name: agent_scheduler(m, n),
            agent_scheduler(model, name).predictor)
    for label, (sched, params, predictor) in HELD_OUT_ROWS.items():
        run(label, lambda s=sched, p=params: baselines.make(s, **p), predictor)
    return out


def compare(models: dict[str, Any], n_windows: int = 8) -> dict[str, float]:
    """Mean average JCT (s) over the held-out windows, per row of :func:`evaluate_held_out`."""
    return {label: float(np.mean([s["avg_jct"] for s in runs]))
            for label, runs in evaluate_held_out(models, n_windows).items()}


def main(argv: list[str] | None = None) -> None:
    """Train, save, checksum and score a bundled agent."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--agent", choices=sorted(RECIPES), default="philly", help="which recipe")
    ap.add_argument("--timesteps", type=int, help="PPO timesteps (default: the recipe's)")
    ap.add_argument("--n-envs", type=int, default=2)
    ap.add_argument("--bc-steps", type=int, help="demonstration steps (default: the recipe's)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="run folder (default runs/pretrained-<agent>)")
    args = ap.parse_args(argv)
    recipe = RECIPES[args.agent]
    timesteps = args.timesteps if args.timesteps is not None else recipe["timesteps"]
    bc_steps = args.bc_steps if args.bc_steps is not None else recipe["bc_steps"]
    teacher, teacher_params = recipe["teacher"]
    t0 = time.time()
    out = train("maskable_ppo", env_kwargs=recipe["env_kwargs"], timesteps=timesteps, n_envs=args.n_envs,
                seed=args.seed, out_dir=args.out or f"runs/pretrained-{args.agent}", progress=True,
                eval_freq=min(recipe["eval_every"], max(timesteps, 1)), eval_windows=4,
                bc_teacher=baselines.make(teacher, **teacher_params), bc_steps=bc_steps,
                bc_epochs=recipe["bc_epochs"],
                bc_dagger_rounds=recipe["dagger_rounds"], algo_kwargs=recipe["algo_kwargs"])
    wall = time.time() - t0
    PRETRAINED_DIR.mkdir(exist_ok=True)
    target = PRETRAINED_DIR / f"{args.agent}.zip"
    shutil.copyfile(out / "model.zip", target.with_suffix(".tmp"))
    os.replace(target.with_suffix(".tmp"), target)
    digest = sha256_of(target)
    results = compare({args.agent: load_model(target, "maskable_ppo")})
    meta = {"algo": "maskable_ppo", "sha256": digest, "env_id": "DLCluster-v0",
            "env_kwargs": recipe["env_kwargs"], "timesteps": timesteps, "n_envs": args.n_envs,
            "seed": args.seed, "bc_teacher": teacher, "bc_teacher_params": teacher_params,
            "bc_steps": bc_steps, "bc_epochs": recipe["bc_epochs"], "dagger_rounds": recipe["dagger_rounds"],
            "algo_kwargs": recipe["algo_kwargs"], "train_wall_seconds": wall,
            "evaluations": (out / "evaluations.csv").read_text().splitlines(),
            "held_out_avg_jct": results}
    tmp = PRETRAINED_DIR / f"{args.agent}.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, PRETRAINED_DIR / f"{args.agent}.json")
    print(f"sha256 {digest}  ({target.stat().st_size} bytes, trained in {wall:.0f} s)")
    for name, jct in results.items():
        print(f"{name:28s} {jct:10.0f} s  ({jct / results['tiresias']:.3f} x Tiresias)")


if __name__ == "__main__":
    main()
