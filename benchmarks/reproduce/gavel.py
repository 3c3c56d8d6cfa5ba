"""Reproduce Gavel's headline: heterogeneity-aware LAS vs heterogeneity-agnostic LAS (avg JCT).

Narayanan et al., "Heterogeneity-Aware Cluster Scheduling Policies for Deep Learning Workloads",
OSDI'20: on a heterogeneous V100/P100/K80 cluster, the heterogeneity-aware max-min fairness
policy (``gavel_perf``) lowers average JCT against the same policy blind to GPU types
(``gavel``). Prints a markdown table (one row per policy and trace seed).

Workload: ``dlsched_gym.traces.load("gavel-philly", seed=s)`` (Gavel's Philly-derived per-VC
traces, VC 6214e9: Gavel job types, durations on a V100), the ``--jobs`` jobs submitted from
``--from-day`` on (the trace's first six weeks hold only a few jobs), times re-based to 0.
Cluster: ``--nodes`` 4-GPU servers of each of V100, P100 and K80. Perf model: ``throughput``
with Gavel's per-type tables, Gavel's measured cross-node factors, measured speed-up curves; no
GPU variability, no sharing (Gavel's simulator has neither); no restart overhead.

Usage (about a minute per seed on an idle core; seeds run in parallel with ``--workers``)::

    python benchmarks/reproduce/gavel.py
    python benchmarks/reproduce/gavel.py --seeds 0 1 2 3 4 --workers 5
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from dlsched_gym import traces
from dlsched_gym.baselines import make
from dlsched_gym.cluster import ClusterSpec, Node
from dlsched_gym.engine import Engine
from dlsched_gym.metrics import summarize
from dlsched_gym.perf import make_perf

POLICIES = ("gavel", "gavel_perf")


def workload(seed: int, from_day: float, jobs: int):
    """The first ``jobs`` jobs of gavel-philly (trace seed ``seed``) submitted from ``from_day``."""
    wl = traces.load("gavel-philly", seed=seed)
    t = wl.table
    keep = t.index[t["submit_time"] >= from_day * 86400.0][:jobs]
    return wl.select(np.isin(t.index, keep), label=f"from day {from_day}, {jobs} jobs")


def cluster(nodes: int) -> ClusterSpec:
    """``nodes`` 4-GPU servers of each of V100, P100, K80."""
    return ClusterSpec(nodes=tuple(Node(gpus=4, gpu_type=g) for g in ("V100", "P100", "K80")
                                   for _ in range(nodes)), name=f"{nodes}x4 each of V100/P100/K80")


def run(args: tuple) -> dict:
    """One (policy, seed) cell."""
    policy, seed, from_day, jobs, nodes = args
    wl = workload(seed, from_day, jobs)
    perf = make_perf("throughput", variability=None, locality="gavel", sharing=False)
    tick = time.process_time()
    res = Engine(wl, cluster(nodes), perf=perf, timeline_interval=None).run(make(policy))
    cpu = time.process_time() - tick
    s = summarize(res)
    frame = res.jobs_frame()
    jct = frame["jct"].dropna() / 3600
    return {"policy": policy, "seed": seed, "jobs": len(frame), "unfinished": int(len(frame) - len(jct)),
            "avg JCT (h)": jct.mean(), "p50 JCT (h)": jct.median(), "p90 JCT (h)": jct.quantile(0.9),
            "makespan (d)": res.now / 86400, "GPU util.": s["gpu_utilization"],
            "preemptions": int(frame["preemptions"].sum()), "CPU s": cpu}


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="gavel-philly seeds (0..4)")
    ap.add_argument("--jobs", type=int, default=300, help="jobs in the window (default 300)")
    ap.add_argument("--from-day", type=float, default=41.7,
                    help="window starts at the first job submitted from this day (default 41.7)")
    ap.add_argument("--nodes", type=int, default=3, help="4-GPU nodes per GPU type (default 3)")
    ap.add_argument("--workers", type=int, default=1, help="parallel processes")
    args = ap.parse_args(argv)
    wl = workload(args.seeds[0], args.from_day, args.jobs)
    t = wl.table
    span = t["submit_time"].iloc[-1] - t["submit_time"].iloc[0]
    spec = cluster(args.nodes)
    print(f"{len(t)} jobs over {span / 3600:.0f} h, {(t['duration'] * t['num_gpus']).sum() / 3600:,.0f} "
          f"V100 GPU-hours; {spec.describe()}")
    cells = [(p, s, args.from_day, args.jobs, args.nodes) for s in args.seeds for p in POLICIES]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(run, cells))
    out = pd.DataFrame(rows)
    print("| " + " | ".join(out.columns) + " |")
    print("|---" * len(out.columns) + "|")
    for _, row in out.iterrows():
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row) + " |")
    avg = out.pivot(index="seed", columns="policy", values="avg JCT (h)")
    ratio = avg["gavel"] / avg["gavel_perf"]
    print(f"\navg JCT, agnostic / aware: {', '.join(f'seed {s}: {r:.2f}x' for s, r in ratio.items())}"
          f" (mean {ratio.mean():.2f}x)")
    return out


if __name__ == "__main__":
    main()
