"""Reproduce Themis's headline: finish-time fairness and average JCT against Tiresias, Gandiva, LAS.

Mahajan et al., "Themis: Fair and Efficient GPU Cluster Scheduling", NSDI'20: Themis improves
the worst finish-time fairness (max rho) over Gandiva, Tiresias and SLAQ while keeping cluster
efficiency. Here: the ``themis`` agent (default f = 0.8, 600 s leases, and f = 0 for the
efficiency end of the knob) against ``tiresias``, ``gandiva``, ``las`` and ``fifo`` on a window
of one Philly VC, on a cluster smaller than the VC so that jobs contend. Prints a markdown table
and writes it into ``baselines/reproductions/themis.md`` between the ``<!-- RESULTS -->`` and
``<!-- END -->`` markers (the rest of that file is hand-written).

Finish-time fairness comes from :func:`dlsched_gym.metrics.finish_time_fairness`:
``rho_j = JCT_j / T_id_j`` with ``T_id_j = duration_j x max(1, g_j N_j / C)``,
``N_j`` the time-averaged number of jobs in the system (queued or running, the job included)
over the job's life, ``C`` the cluster's GPUs: the run time on a 1/N share of the cluster
(a gang larger than its share runs that fraction of the time). Themis's paper averages the
contention over the app's lifetime the same way.

Setting: ``philly-vc/<vc>`` (default 6c71a0), jobs submitted in ``[--from-day, --from-day +
--days)``, times re-based; models and batch sizes drawn with ``Workload.augment(seed=0,
weights="trace")``; ``--nodes`` 8-GPU V100 nodes; perf ``throughput`` with only PAL's cross-node
penalty on (a job on its requested GPUs of one node runs at its trace speed; a gang spread over
nodes runs 1/1.7 as fast), no sharing (so Gandiva only time-slices, migrates and grows); the
Lucid artifact's restart overhead (40 s / 60 s) for everyone; the oracle predictor (Themis's
agents know the remaining work; the paper's apps report it).

Usage (about 1-2 minutes on 2 cores)::

    python benchmarks/reproduce/themis.py
    python benchmarks/reproduce/themis.py --vc 103959 --from-day 14 --days 14 --nodes 2
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from _writeup import write_results  # sibling module (scripts run as files)

from dlsched_gym import traces
from dlsched_gym.baselines import make
from dlsched_gym.cluster import uniform
from dlsched_gym.engine import Engine, lucid_overhead
from dlsched_gym.metrics import finish_time_fairness, summarize
from dlsched_gym.perf import make_perf

#: Jobs at least this long (s) form the "long" population (Themis's apps run for hours).
LONG = 3600.0

OUT = Path(__file__).resolve().parents[2] / "baselines" / "reproductions" / "themis.md"

#: (label, registry name, parameters, engine options replacing the common ones)
POLICIES = [
    ("themis (f=0.8)", "themis", {}, {}),
    ("themis (f=0)", "themis", {"fairness_knob": 0.0}, {}),
    ("themis (f=0.8, 60 s leases)", "themis", {"lease_seconds": 60.0}, {}),
    ("tiresias", "tiresias", {}, {}),
    ("gandiva", "gandiva", {}, {}),
    ("gandiva, free suspend/resume", "gandiva", {}, {"restart_overhead": 0.0}),
    ("las", "las", {}, {}),
    ("fifo", "fifo", {}, {}),
]


def setting(vc: str, from_day: float, days: float, nodes: int):
    """The workload window (augmented) and the cluster."""
    wl = traces.load(f"philly-vc/{vc}")
    t = wl.table["submit_time"].to_numpy()
    keep = (t >= from_day * 86400.0) & (t < (from_day + days) * 86400.0)
    wl = wl.select(keep, label=f"days {from_day:g}-{from_day + days:g}").augment(seed=0, weights="trace")
    return wl, uniform(nodes, 8, "V100", name=f"{nodes}x8-V100")


def run(args: tuple) -> dict:
    """Simulate one policy; return its summary row."""
    vc, from_day, days, nodes, label, name, params, engine = args
    wl, spec = setting(vc, from_day, days, nodes)
    perf = make_perf("throughput", gpu_type=False, scaling=False, locality="pal",
                     variability=None, sharing=False)
    options = {"perf": perf, "predictor": "oracle", "restart_overhead": lucid_overhead,
               "timeline_interval": None, **engine}
    eng = Engine(wl, spec, **options)
    tick = time.process_time()
    res = eng.run(make(name, **params))
    cpu = time.process_time() - tick
    rho = finish_time_fairness(res)
    s = summarize(res)
    ok = np.isfinite(rho)
    long = ok & (res.duration >= LONG)
    return {"policy": label, "finished": s["jobs_finished"], "jobs": s["jobs"],
            "max_rho": float(rho[ok].max()), "p99_rho": float(np.quantile(rho[ok], 0.99)),
            "max_rho_long": float(rho[long].max()) if long.any() else float("nan"),
            "avg_rho": float(rho[ok].mean()), "unfair": float((rho[ok] > 1.0).mean()),
            "avg_jct_h": s["avg_jct"] / 3600, "makespan_h": s["makespan"] / 3600,
            "util": s["gpu_utilization"], "preemptions": s["preemptions"], "cpu_s": cpu}


def main(argv=None) -> list[dict]:
    """Run every policy (in parallel) and print/write the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vc", default="6c71a0", help="Philly VC (default 6c71a0)")
    ap.add_argument("--from-day", type=float, default=14.0, help="window start (day, default 14)")
    ap.add_argument("--days", type=float, default=7.0, help="window length (days, default 7)")
    ap.add_argument("--nodes", type=int, default=6, help="8-GPU nodes (default 6)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="print only")
    a = ap.parse_args(argv)
    wl, spec = setting(a.vc, a.from_day, a.days, a.nodes)
    tab = wl.table
    load = float((tab["duration"] * tab["num_gpus"]).sum() / (a.days * 86400.0) / spec.num_gpus)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.workers) as pool:
        rows = list(pool.map(run, [(a.vc, a.from_day, a.days, a.nodes, *p) for p in POLICIES]))
    wall = time.perf_counter() - t0
    ref = rows[0]
    head = (f"philly-vc/{a.vc}, days {a.from_day:g}-{a.from_day + a.days:g}: {len(tab)} jobs "
            f"(1-{int(tab['num_gpus'].max())} GPUs) on {spec.name} ({spec.num_gpus} GPUs), offered "
            f"load {load:.2f}; {wall:.0f} s wall; "
            f"{int((tab['duration'] >= LONG).sum())} jobs of at least {LONG / 3600:g} h\n\n"
            "| policy | finished | max rho | max rho / themis | p99 rho | avg rho | rho > 1 "
            "| max rho, jobs >= 1 h | avg JCT (h) | avg JCT / themis | makespan (h) | util "
            "| preemptions | CPU s |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r['policy']} | {r['finished']}/{r['jobs']} | {r['max_rho']:.2f} | "
        f"{r['max_rho'] / ref['max_rho']:.2f}x | {r['p99_rho']:.2f} | {r['avg_rho']:.2f} | "
        f"{r['unfair']:.2f} | {r['max_rho_long']:.2f} | {r['avg_jct_h']:.2f} | "
        f"{r['avg_jct_h'] / ref['avg_jct_h']:.2f}x | "
        f"{r['makespan_h']:.1f} | {r['util']:.3f} | {r['preemptions']} | {r['cpu_s']:.0f} |\n"
        for r in rows)
    table = head + body
    print(table)
    if not a.no_write and OUT.exists():
        tag = f"{a.vc} {a.from_day:g}+{a.days:g}d {spec.name}"
        write_results(OUT, table, tag)
    return rows


if __name__ == "__main__":
    main()
