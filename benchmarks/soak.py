"""Soak runs: memory must stay flat over a long run (no growth from per-step logs or caches).

Two runs, each in its own process so their memory readings are their own:

- ``env``: 1,000,000 steps of ``DLCluster-v0`` with random masked actions (resets included);
- ``replay``: FIFO over a generated 1,000,000-job Philly-like workload on the ``philly`` preset,
  driven decision by decision.

Each samples the process's resident memory (``/proc/self/statm``) at ten evenly spaced points and
prints them with the peak (``ru_maxrss``), so growth shows as a rising row.

    python benchmarks/soak.py                  # both, 1,000,000 each
    python benchmarks/soak.py --steps 200000   # shorter
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

SAMPLES = 10


def rss_mb() -> float:
    """Current resident set size of this process (MB)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """Peak resident set size of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def soak_env(steps: int) -> dict:
    """``steps`` random masked env steps; RSS at ten points."""
    from dlsched_gym.env import DLClusterEnv

    env = DLClusterEnv()
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    every = max(steps // SAMPLES, 1)
    samples, episodes = [], 0
    t0 = time.perf_counter()
    for i in range(1, steps + 1):
        valid = np.flatnonzero(env.action_masks())
        _, _, term, trunc, _ = env.step(valid[rng.integers(len(valid))])
        if term or trunc:
            env.reset()
            episodes += 1
        if i % every == 0:
            samples.append(round(rss_mb()))
    wall = time.perf_counter() - t0
    return {"run": "env", "units": steps, "what": "env steps", "episodes": episodes,
            "wall_s": round(wall, 1), "per_s": round(steps / wall), "rss_mb": samples,
            "peak_mb": round(peak_mb())}


def soak_replay(jobs: int) -> dict:
    """FIFO over ``jobs`` generated jobs; RSS at ten points of the replay."""
    from dlsched_gym import baselines, traces
    from dlsched_gym.engine import Engine

    wl = traces.generate(jobs, like=traces.load("philly"), seed=0, target_utilization=0.7,
                         cluster_gpus=2490)
    engine = Engine(wl, "philly", predictor="oracle")
    scheduler = baselines.make("fifo")
    engine.reset(scheduler)
    every = max(jobs // SAMPLES, 1)
    samples, next_mark = [], every
    t0 = time.perf_counter()
    while engine.next_decision():
        ops = scheduler.schedule(engine.view)
        if ops:
            engine.apply(ops)
        if engine.finished_count >= next_mark:
            samples.append(round(rss_mb()))
            next_mark += every
    wall = time.perf_counter() - t0
    return {"run": "replay", "units": jobs, "what": "jobs", "episodes": 1,
            "wall_s": round(wall, 1), "per_s": round(jobs / wall), "rss_mb": samples,
            "peak_mb": round(peak_mb())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1_000_000, help="env steps")
    parser.add_argument("--jobs", type=int, default=1_000_000, help="replayed jobs")
    parser.add_argument("--only", choices=["env", "replay"], help="run one of the two")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, n = args.one.split(":")
        print(json.dumps((soak_env if kind == "env" else soak_replay)(int(n))))
        return
    runs = [("env", args.steps), ("replay", args.jobs)]
    print(f"# {platform.machine()}, Python {platform.python_version()}, "
          f"{len(os.sched_getaffinity(0))} cores")
    print("| run | size | wall (s) | per second | RSS at 10%..100% (MB) | peak (MB) |")
    print("|---|---|---|---|---|---|")
    for kind, n in runs:
        if args.only and kind != args.only:
            continue
        out = subprocess.run([sys.executable, __file__, "--one", f"{kind}:{n}"],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {r['run']} | {r['units']:,} {r['what']} | {r['wall_s']} | {r['per_s']:,} | "
              f"{' '.join(map(str, r['rss_mb']))} | {r['peak_mb']} |", flush=True)


if __name__ == "__main__":
    main()
