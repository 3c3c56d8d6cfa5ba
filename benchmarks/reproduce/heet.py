"""Reproduce Heet's headline: host-type-aware elastic scheduling lowers average JCT.

Mo, Xu and Xu, "Heet: Accelerating Elastic Training in Heterogeneous Deep Learning Clusters",
ASPLOS'24: "up to 2.46x" lower JCT than existing solutions. We compare the Heet-inspired
scheduler (``heet``) with its type-blind ablation (``heet_blind``: the same elastic matching and
trading, one throughput prediction for every host type) and with Gavel's max-min fairness, rigid,
heterogeneity-aware (``gavel_perf``) and agnostic (``gavel``). Writes a markdown report.

Workload: ``traces.load("gavel-philly", seed=s)`` (Gavel's Philly-derived per-VC traces, VC
6214e9), the ``--jobs`` jobs submitted from ``--from-day`` on, made elastic by
``Workload.augment(elastic=(0.5, --max-frac))``: ``min_gpus = max(1, floor(num_gpus / 2))``,
``max_gpus = ceil(num_gpus x max_frac)``. Cluster (64 GPUs, four host types): 2 x 8 V100 with
100 Gbit/s, 4 x 4 V100 with 10 Gbit/s, 4 x 4 P100 with 25 Gbit/s, 4 x 4 K80 with 10 Gbit/s. Perf
model: ``throughput`` with Gavel's per-type tables, measured speed-up curves and ring
all-reduce over the slowest spanned link (``locality="bandwidth"``), so multi-host gangs scale
differently per host type; no GPU variability, no sharing. Restart and resize cost 30 s (Pollux's
penalty).

Usage (about a minute of CPU per policy and seed)::

    python benchmarks/reproduce/heet.py
    python benchmarks/reproduce/heet.py --seeds 0 1 2 --max-frac 4 --out results/heet-4x.md
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from dlsched_gym import traces
from dlsched_gym.baselines import make
from dlsched_gym.cluster import ClusterSpec, Node
from dlsched_gym.engine import FINISHED, Engine
from dlsched_gym.evaluate import atomic_write_text
from dlsched_gym.metrics import summarize
from dlsched_gym.perf import make_perf, overhead

POLICIES = ("heet", "heet_blind", "gavel_perf", "gavel")
OUT = Path(__file__).resolve().parents[2] / "results" / "heet.md"

#: (nodes, GPUs per node, GPU type, link Gbit/s) of each host type.
HOSTS = ((2, 8, "V100", 100.0), (4, 4, "V100", 10.0), (4, 4, "P100", 25.0), (4, 4, "K80", 10.0))


def workload(seed: int, from_day: float, jobs: int, max_frac: float):
    """The first ``jobs`` jobs of gavel-philly (trace seed ``seed``) from ``from_day``, elastic."""
    wl = traces.load("gavel-philly", seed=seed)
    t = wl.table
    keep = t.index[t["submit_time"] >= from_day * 86400.0][:jobs]
    wl = wl.select(np.isin(t.index, keep), label=f"from day {from_day}, {jobs} jobs")
    return wl.augment(seed=seed, elastic=(0.5, max_frac), iterations=False, deadlines=None)


def cluster() -> ClusterSpec:
    """The four host types of :data:`HOSTS`."""
    nodes = [Node(gpus=g, gpu_type=t, bandwidth_gbps=bw) for k, g, t, bw in HOSTS for _ in range(k)]
    return ClusterSpec(nodes=tuple(nodes), name="heet-hosts")


def run(args: tuple) -> dict:
    """One (policy, seed) cell."""
    policy, seed, from_day, jobs, max_frac = args
    wl = workload(seed, from_day, jobs, max_frac)
    perf = make_perf("throughput", variability=None, locality="bandwidth", sharing=False)
    tick = time.process_time()
    res = Engine(wl, cluster(), perf=perf, restart_overhead=overhead("pollux"),
                 resize_overhead=overhead("pollux"), timeline_interval=None).run(make(policy))
    cpu = time.process_time() - tick
    frame = res.jobs_frame()
    jct = frame["jct"].dropna() / 3600
    return {"policy": policy, "seed": seed, "jobs": len(frame),
            "unfinished": int((res.state != FINISHED).sum()), "avg JCT (h)": jct.mean(),
            "p50 JCT (h)": jct.median(), "p90 JCT (h)": jct.quantile(0.9),
            "makespan (d)": res.now / 86400, "GPU util.": summarize(res)["gpu_utilization"],
            "preemptions": int(frame["preemptions"].sum()), "CPU s": cpu}


def render(out: pd.DataFrame, header: str) -> str:
    """The report: setting line, the results table and the JCT ratios against ``heet``."""
    lines = [header, "", "| " + " | ".join(out.columns) + " |", "|---" * len(out.columns) + "|"]
    for _, row in out.iterrows():
        lines.append("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row) + " |")
    avg = out.pivot(index="seed", columns="policy", values="avg JCT (h)")
    lines.append("")
    for p in avg.columns:
        if p != "heet" and "heet" in avg.columns:
            r = avg[p] / avg["heet"]
            lines.append(f"avg JCT {p} / heet: " + ", ".join(f"seed {s}: {v:.2f}x" for s, v in r.items())
                         + f" (mean {r.mean():.2f}x)")
    return "\n".join(lines) + "\n"


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="gavel-philly seeds (0..4)")
    ap.add_argument("--jobs", type=int, default=300, help="jobs in the window (default 300)")
    ap.add_argument("--from-day", type=float, default=41.7,
                    help="window starts at the first job submitted from this day (default 41.7)")
    ap.add_argument("--max-frac", type=float, default=2.0,
                    help="max_gpus = ceil(num_gpus x this) (default 2)")
    ap.add_argument("--policies", nargs="+", default=list(POLICIES), help="schedulers to run")
    ap.add_argument("--workers", type=int, default=2, help="parallel processes")
    ap.add_argument("--out", type=Path, default=OUT, help="markdown report path")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    t = workload(args.seeds[0], args.from_day, args.jobs, args.max_frac).table
    span = t["submit_time"].iloc[-1] - t["submit_time"].iloc[0]
    header = (f"{len(t)} jobs over {span / 3600:.0f} h (seed {args.seeds[0]}), "
              f"{(t['duration'] * t['num_gpus']).sum() / 3600:,.0f} V100 GPU-hours, elastic "
              f"(0.5, {args.max_frac}); {cluster().describe()}")
    cells = [(p, s, args.from_day, args.jobs, args.max_frac) for s in args.seeds for p in args.policies]
    print(f"{len(cells)} runs on {args.workers} processes ...", flush=True)
    with ProcessPoolExecutor(args.workers) as pool:
        out = pd.DataFrame(list(pool.map(run, cells)))
    text = render(out, header)
    print(text)
    atomic_write_text(args.out, text + f"\n(wall {time.perf_counter() - t0:.0f} s)\n")
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
