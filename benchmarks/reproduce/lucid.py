"""Reproduce Lucid's headline comparison: average JCT against Tiresias (and FIFO, QSSF).

Hu et al., "Lucid: A Non-intrusive, Scalable and Interpretable Scheduler for Deep Learning
Training Jobs", ASPLOS'23: up to 1.3x lower average JCT than Tiresias (abstract), on Helios
Venus/Saturn and Philly with per-VC simulation and profiled co-location speeds. Prints a markdown
table (average JCT, average and p99.9 queueing delay, large (> 8 GPUs) vs small jobs, packed
jobs) and writes it into ``baselines/reproductions/lucid.md`` between the RESULTS markers.

Setting (the closest the bundled data allows): a Philly VC (``philly-vc/<vc>``, its Helios
artifact node count, 8 GPUs per node) or ``helios-venus-synth`` on ``helios-venus``; the first
``--days`` of submissions; models and batch sizes drawn with ``Workload.augment(seed=0,
weights="trace")`` (Gavel's Philly job-type mix, so every model has measured pair speeds); the
throughput perf model with only the sharing factor on (jobs alone run at their trace speed;
co-located jobs at Gavel's measured pair factors); ``gpu_share_limit=2`` for every policy (only
Lucid packs); the Lucid artifact's restart overhead (40 s / 60 s) for everyone. QSSF uses the
engine's history predictor, Lucid its own estimator fitted on finished jobs, Tiresias none.

Usage (one to two minutes on 2 cores)::

    python benchmarks/reproduce/lucid.py            # helios-venus-synth, 3 days, 64 x 8 GPUs
    python benchmarks/reproduce/lucid.py --nodes 96
    python benchmarks/reproduce/lucid.py --trace philly-vc/6c71a0 --days 14 --nodes 8

At the trace's own cluster size (``--nodes 0``) there is almost no queueing with these traces.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from _writeup import write_results  # sibling module (scripts run as files)

from dlsched_gym import traces
from dlsched_gym.baselines import make
from dlsched_gym.cluster import make_cluster, uniform
from dlsched_gym.engine import Engine, lucid_overhead
from dlsched_gym.perf import make_perf

OUT = Path(__file__).resolve().parents[2] / "baselines" / "reproductions" / "lucid.md"

#: (label, scheduler name, parameters, engine predictor)
POLICIES = [
    ("fifo", "fifo", {}, "oracle"),
    ("qssf (history)", "qssf", {}, "history"),
    ("tiresias", "tiresias", {}, "oracle"),
    ("lucid", "lucid", {}, "history"),
    ("lucid, no packing", "lucid", {"packing": "never"}, "history"),
    ("lucid, no profiler", "lucid", {"profiler_nodes": 0}, "history"),
    ("lucid, oracle estimates", "lucid", {"estimator": "predictor"}, "oracle"),
]


def setting(trace: str, days: float, nodes: int | None = None):
    """The workload (augmented) and the cluster (sharing allowed; ``nodes`` x 8 GPUs if given)."""
    if trace.startswith("philly-vc/"):
        wl, cluster = traces.load(trace), trace
    elif trace == "helios-venus-synth":
        wl, cluster = traces.load(trace), "helios-venus"
    else:
        raise SystemExit(f"--trace must be philly-vc/<vc> or helios-venus-synth, got {trace!r}")
    t = wl.table["submit_time"].to_numpy()
    wl = wl.select(t < days * 86400.0, label=f"first {days:g} days").augment(seed=0, weights="trace")
    spec = uniform(nodes, 8, name=f"{nodes}x8") if nodes else make_cluster(cluster)
    return wl, dataclasses.replace(spec, gpu_share_limit=2)


def run(args: tuple) -> dict:
    """Simulate one policy; return its summary row."""
    trace, days, nodes, label, name, params, predictor = args
    wl, spec = setting(trace, days, nodes)
    perf = make_perf("throughput", gpu_type=False, scaling=False, locality=None,
                     variability=None, sharing=True)
    eng = Engine(wl, spec, perf=perf, predictor=predictor, restart_overhead=lucid_overhead,
                 timeline_interval=None)
    t0 = time.process_time()
    res = eng.run(make(name, **params))
    cpu = time.process_time() - t0
    f = res.jobs_frame()
    done = f[f["state"] == "finished"]
    large = done["num_gpus"] > 8
    q = done["queueing_delay"].to_numpy()
    return {
        "policy": label, "finished": len(done), "jobs": len(f),
        "avg_jct_h": done["jct"].mean() / 3600, "avg_queue_h": q.mean() / 3600,
        "p999_queue_h": float(np.quantile(q, 0.999)) / 3600,
        "large_jct_h": done.loc[large, "jct"].mean() / 3600,
        "small_jct_h": done.loc[~large, "jct"].mean() / 3600,
        "packed": int(f["packed_with"].notna().sum()) if "packed_with" in f else 0,
        "preemptions": int(done["preemptions"].sum()),
        "util": res.busy_gpu_seconds / max(res.available_gpu_seconds, 1e-9),
        "cpu_s": cpu,
    }


def main() -> None:
    """Run every policy (in parallel) and print/write the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default="helios-venus-synth")
    ap.add_argument("--days", type=float, default=3.0)
    ap.add_argument("--nodes", type=int, default=64,
                    help="simulate on this many 8-GPU nodes (0: the trace's own cluster)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="print only")
    a = ap.parse_args()
    wl, spec = setting(a.trace, a.days, a.nodes)
    tab = wl.table
    load = float((tab["duration"] * tab["num_gpus"]).sum() / max(tab["submit_time"].max(), 1.0)
                 / spec.num_gpus)
    with ProcessPoolExecutor(a.workers) as pool:
        rows = list(pool.map(run, [(a.trace, a.days, a.nodes, *p) for p in POLICIES]))
    tir = next(r for r in rows if r["policy"] == "tiresias")["avg_jct_h"]
    head = (f"{a.trace}, first {a.days:g} days: {len(tab)} jobs on {spec.name} ({spec.num_gpus} GPUs), "
            f"offered load {load:.2f}\n\n"
            "| policy | finished | avg JCT (h) | Tiresias / policy | avg queue (h) | p99.9 queue (h) "
            "| JCT > 8 GPUs (h) | JCT <= 8 GPUs (h) | packed jobs | preemptions | util | CPU s |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r['policy']} | {r['finished']}/{r['jobs']} | {r['avg_jct_h']:.3f} | "
        f"{tir / r['avg_jct_h']:.2f}x | {r['avg_queue_h']:.3f} | {r['p999_queue_h']:.2f} | "
        f"{r['large_jct_h']:.2f} | {r['small_jct_h']:.3f} | {r['packed']} | {r['preemptions']} | "
        f"{r['util']:.3f} | {r['cpu_s']:.0f} |\n" for r in rows)
    table = head + body
    print(table)
    if not a.no_write and OUT.exists():
        tag = f"{a.trace} {spec.name} {a.days:g}d"
        write_results(OUT, table, tag)


if __name__ == "__main__":
    main()
