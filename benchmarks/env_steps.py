"""Environment steps per second of ``DLCluster-v0`` with random masked actions (K = 32).

    python benchmarks/env_steps.py [--steps N] [--n-envs 1,4] [--trace NAME]

Rows: the bare env in one process (resets included) on its default compiled backend and on the
Python backend, and SB3 SubprocVecEnv with N workers and DummyVecEnv with N envs in this process
(masks fetched with ``env_method("action_masks")`` every step, as MaskablePPO does, answered by
``MaskFromInfo`` as in training). For reference, the
engine alone replaying the same windows under FIFO (decisions per second) bounds what the env can
reach: every env step is at least one engine start or one decision point. Rates are given per
wall-clock second and, for the single-process rows, per CPU second of this process (steadier on a
shared machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def single_process(kwargs: dict, steps: int, seed: int = 0) -> tuple[float, float]:
    """Steps per wall second and per CPU second of one env driven directly."""
    from dlsched_gym.env import DLClusterEnv

    env = DLClusterEnv(**kwargs)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        valid = np.flatnonzero(env.action_masks())
        _, _, term, trunc, _ = env.step(valid[rng.integers(len(valid))])
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t0), steps / (time.process_time() - c0)


def vectorized(kwargs: dict, steps: int, n_envs: int, seed: int = 0, in_process: bool = False) -> float:
    """Total steps/s of a SubprocVecEnv of ``n_envs`` workers (``in_process``: a DummyVecEnv,
    every env stepped in this process), both as ``make_vec_env`` wraps them."""
    from dlsched_gym.agents import make_vec_env

    vec = make_vec_env("DLCluster-v0", kwargs, n_envs, seed,
                       vec_env="dummy" if in_process else "subproc")
    rng = np.random.default_rng(seed)
    vec.reset()
    rounds = max(steps // n_envs, 1)
    t0 = time.perf_counter()
    for _ in range(rounds):
        masks = np.stack(vec.env_method("action_masks"))
        actions = [rng.choice(np.flatnonzero(m)) for m in masks]
        vec.step(np.array(actions))
    rate = rounds * n_envs / (time.perf_counter() - t0)
    vec.close()
    return rate


def engine_fifo(kwargs: dict, episodes: int = 20) -> tuple[float, float]:
    """Decision points per wall and per CPU second of the plain engine under FIFO on the env's
    windows."""
    from dlsched_gym import baselines
    from dlsched_gym.engine import Engine
    from dlsched_gym.env import DLClusterEnv

    env = DLClusterEnv(**kwargs)
    wall, cpu, decisions = 0.0, 0.0, 0
    for ep in range(episodes):
        env.reset(seed=ep)
        eng = Engine(env.engine.workload, env.cluster_spec, timeline_interval=None)
        t0, c0 = time.perf_counter(), time.process_time()
        eng.run(baselines.make("fifo"))
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        decisions += eng.decisions
    return decisions / wall, decisions / cpu


def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser(description="DLCluster-v0 env steps per second")
    ap.add_argument("--steps", type=int, default=30_000)
    ap.add_argument("--n-envs", default="2,4")
    ap.add_argument("--trace", default=None, help="trace name (default: the env's default)")
    args = ap.parse_args()
    kwargs = {"window": 32}
    if args.trace:
        kwargs["trace"] = args.trace
    rows = [("engine alone, FIFO (decisions/s)", engine_fifo(kwargs)),
            ("env, 1 process (compiled backend)", single_process(kwargs, args.steps)),
            ("env, 1 process (python backend)", single_process({**kwargs, "backend": "python"},
                                                               args.steps))]
    for n in (int(x) for x in args.n_envs.split(",") if x):
        rows.append((f"SubprocVecEnv x {n}", (vectorized(kwargs, args.steps, n), float("nan"))))
        rows.append((f"DummyVecEnv x {n}", (vectorized(kwargs, args.steps, n, in_process=True),
                                            float("nan"))))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(f"{'setup':36s} {'per wall s':>11s} {'per CPU s':>11s}")
    for name, (wall, cpu) in rows:
        print(f"{name:36s} {wall:11.0f} {cpu:11.0f}")


if __name__ == "__main__":
    main()
