"""Replay speed of the engine: jobs simulated per second and peak memory.

Runs each classic baseline on the full bundled Philly table (82,247 jobs) on the ``philly``
preset and on a Philly VC at a load where queues form, then FIFO on a generated workload of
1,000,000 jobs. Each measurement runs in a fresh process so that peak memory (ru_maxrss) is
its own.

    python benchmarks/replay.py              # everything
    python benchmarks/replay.py --quick      # a smaller subset, for CI smoke runs
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

SCHEDULERS = ["fifo", "fifo-backfill", "sjf", "srtf", "las", "tiresias", "qssf"]


def measure(trace: str, cluster: str, scheduler: str, load: float, generated: int) -> dict:
    """Run one replay in this process and return timings."""
    from dlsched_gym import baselines, traces
    from dlsched_gym.engine import Engine
    from dlsched_gym.metrics import summarize

    t0 = time.perf_counter()
    if generated:
        base = traces.load("philly")
        wl = traces.generate(generated, like=base, seed=0, target_utilization=0.7,
                             cluster_gpus=2490)
    else:
        wl = traces.load(trace)
    if load != 1.0:
        wl = wl.scale_load(load)
    t_load = time.perf_counter() - t0
    predictor = "history" if scheduler == "qssf" else "oracle"
    engine = Engine(wl, cluster, predictor=predictor)
    t1 = time.perf_counter()
    result = engine.run(baselines.make(scheduler))
    wall = time.perf_counter() - t1
    s = summarize(result)
    return {
        "trace": f"generated-{generated}" if generated else trace, "cluster": cluster, "load": load,
        "scheduler": scheduler, "jobs": len(wl), "load_s": round(t_load, 2), "sim_s": round(wall, 2),
        "jobs_per_s": round(len(wl) / wall), "avg_jct_h": round(s["avg_jct"] / 3600, 2),
        "gpu_util": round(s["gpu_utilization"], 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="FIFO and Tiresias only, no 1M run")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(**json.loads(args.one))))
        return
    cells = []
    scheds = ["fifo", "tiresias"] if args.quick else SCHEDULERS
    for s in scheds:
        cells.append(dict(trace="philly", cluster="philly", scheduler=s, load=1.0, generated=0))
    for s in scheds:
        cells.append(dict(trace="philly-vc/11cb48", cluster="philly-vc/11cb48", scheduler=s,
                          load=6.0, generated=0))
    if not args.quick:
        cells.append(dict(trace="", cluster="philly", scheduler="fifo", load=1.0, generated=1_000_000))
    print(f"# {platform.processor() or platform.machine()}, {platform.python_version()}, "
          f"{len(__import__('os').sched_getaffinity(0))} cores")
    cols = ["trace", "cluster", "load", "scheduler", "jobs", "sim_s", "jobs_per_s", "avg_jct_h",
            "gpu_util", "peak_rss_mb"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for cell in cells:
        out = subprocess.run([sys.executable, __file__, "--one", json.dumps(cell)], capture_output=True,
                             text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print("| " + " | ".join(str(row[c]) for c in cols) + " |", flush=True)


if __name__ == "__main__":
    main()
