"""Reproduce EasyScale's trace experiment: elastic jobs with fixed logical workers on a mix of GPU
types (EasyScale-heter) against one GPU type per job (EasyScale-homo) and rigid FIFO (YARN-CS).

Li et al., "EasyScale: Elastic Training with Consistent Accuracy and Improved Utilization on
GPUs", SC'23 (doi:10.1145/3581784.3607054; the seed list's "ElasticScale"). Trace experiment
(Figs. 14-15, artifact CSV): 64 simulated GPUs (32 V100, 16 P100, 16 T4); average JCT 8,905 s
(YARN-CS), 1,071 s (EasyScale-homo), 677 s (EasyScale-heter); makespan 16,560 / 6,720 / 6,000 s.

Setting (the same jobs for every policy):

- jobs: ``--windows`` windows of ``--jobs`` consecutive jobs of a Philly VC (``philly-vc/<vc>``,
  the Pollux-processed Philly trace: real submit times, GPU counts and durations), jobs asking
  more GPUs than the cluster has dropped (counted), arrivals compressed so that the offered load
  (V100 GPU-seconds per second) is ``--load`` x 64, models and batch sizes drawn from Gavel's
  Philly job-type mix (``augment(weights="trace")``).
- preferred GPU type: each job names one (drawn in proportion to the types' GPU counts, among
  the types with room for its request; seeded), as the artifact's jobs do. FIFO and
  EasyScale-homo keep a job on it; EasyScale-heter (the paper's D2 determinism) may use any
  type. ``--no-preferred-type``: no job names a type; FIFO then places gangs on any types and
  EasyScale-homo binds a job to the type of its first GPU.
- EasyScale policies: every job keeps P = its requested GPU count logical workers and may run on
  1..P GPUs (``min_gpus = 1``, ``max_gpus = num_gpus``); perf model ``throughput`` with
  ``execution="easyscale"``. FIFO (strict, YARN-CS-like, and with backfill): the job runs
  rigidly on its requested count, as plain DDP (``execution="ddp"``: a gang that spans GPU types
  runs at its slowest type).
- perf factors: GPU type (Gavel's K80/P100/V100 tables, Pollux's T4 profiles; a model without a
  T4 measurement uses the median T4/V100 ratio) and measured scaling curves; no locality
  penalty (the artifact ignores communication), no variability, no sharing.
- overheads: a resize (EasyScale's growth steps) costs ``--resize-overhead`` s (default 20, the
  artifact's start delay); starts cost nothing.

Prints the tables and writes them, atomically, into ``baselines/reproductions/elasticscale.md``
between the ``<!-- RESULTS -->`` and ``<!-- END -->`` markers (appended when absent; the rest of
that file is hand-written); ``--out`` names another file.

Usage (about 1.5 minutes on 2 cores)::

    python benchmarks/reproduce/elasticscale.py
    python benchmarks/reproduce/elasticscale.py --load 2.0 --no-preferred-type --out /tmp/x.md
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from _writeup import write_results  # sibling module (scripts run as files)

from dlsched_gym import traces
from dlsched_gym.baselines import make
from dlsched_gym.cluster import ClusterSpec, Node
from dlsched_gym.engine import Engine
from dlsched_gym.metrics import summarize
from dlsched_gym.perf import make_perf
from dlsched_gym.workload import Workload

OUT = Path(__file__).resolve().parents[2] / "baselines" / "reproductions" / "elasticscale.md"
#: The paper's simulated cluster: 32 V100 + 16 P100 + 16 T4, here in 8-GPU servers.
CLUSTER = ClusterSpec(nodes=tuple(Node(gpus=8, gpu_type=t) for t, k in
                                  (("V100", 4), ("P100", 2), ("T4", 2)) for _ in range(k)),
                      name="32xV100+16xP100+16xT4")
#: (label, registry name, execution model, elastic jobs, bound to the preferred type)
POLICIES = [("FIFO (YARN-CS, rigid DDP)", "fifo", "ddp", False, True),
            ("FIFO + backfill (rigid DDP)", "fifo-backfill", "ddp", False, True),
            ("EasyScale-homo", "elasticscale_homo", "easyscale", True, True),
            ("EasyScale-heter", "elasticscale", "easyscale", True, False)]
#: The paper's trace-experiment numbers (artifact CSV, Fig. 14), seconds.
PAPER = {"fifo": (8905, 16560), "elasticscale_homo": (1071, 6720), "elasticscale": (677, 6000)}


def build_workloads(vc: str, first: int, jobs: int, windows: int, load: float,
                    preferred: bool) -> tuple[list[Workload], int]:
    """The windows, compressed to ``load`` and augmented, with a preferred GPU type per job if
    ``preferred``; also the number of jobs dropped for asking more GPUs than the cluster has."""
    wl = traces.load(f"philly-vc/{vc}")
    out, dropped = [], 0
    for w in range(windows):
        sub = wl.window(first + w * jobs, jobs)
        too_big = sub.table["num_gpus"].to_numpy() > CLUSTER.num_gpus
        dropped += int(too_big.sum())
        if too_big.any():
            sub = sub.select(~too_big, label=f"fits {CLUSTER.num_gpus} GPUs")
        t = sub.table
        demand = float((t["duration"] * t["num_gpus"]).sum() / max(t["submit_time"].max(), 1.0))
        wl_w = sub.scale_load(CLUSTER.num_gpus * load / demand).augment(seed=w, weights="trace",
                                                                        deadlines=None)
        out.append(with_preferred_type(wl_w, seed=w) if preferred else wl_w)
    return out, dropped


def with_preferred_type(wl: Workload, seed: int) -> Workload:
    """Each job gets a preferred GPU type (the ``gpu_type`` column), drawn with probability
    proportional to the type's GPU count among the types with at least the job's GPU count
    (seeded). The public traces name no type; the artifact's jobs do."""
    types = list(CLUSTER.gpu_types)
    cap = np.array([CLUSTER.gpus_of_type(t) for t in types], dtype=float)
    rng = np.random.default_rng(seed)
    t = wl.table.copy()
    pick = []
    for n in t["num_gpus"].tolist():
        p = np.where(cap >= n, cap, 0.0)
        pick.append(types[int(rng.choice(len(types), p=p / p.sum()))])
    t["gpu_type"] = pick
    out = wl.replace(t)
    out.attrs.setdefault("augmented", {})["gpu_type"] = {
        "rule": "preferred type drawn proportional to the type's GPU count (types that fit)",
        "seed": seed}
    return out


def prepare(wl: Workload, is_elastic: bool, bound: bool) -> Workload:
    """Elastic jobs run from 1 GPU to their requested count (their P logical workers); jobs not
    bound to their preferred type may use any type."""
    t = wl.table.copy()
    if is_elastic:
        t["min_gpus"] = 1
        t["max_gpus"] = t["num_gpus"]
    if not bound:
        t["gpu_type"] = ""
    return wl.replace(t)


def run(task: tuple) -> dict:
    """One (window, policy) cell."""
    w, wl, label, name, execution, is_elastic, bound, resize = task
    perf = make_perf("throughput", execution=execution, locality=None, variability=None, sharing=False)
    tick = time.process_time()
    res = Engine(prepare(wl, is_elastic, bound), CLUSTER, perf=perf, resize_overhead=resize,
                 timeline_interval=None).run(make(name))
    s = summarize(res)
    return {"window": w, "policy": label, "name": name, "avg JCT (s)": s["avg_jct"],
            "p50 JCT (s)": s["p50_jct"], "p95 JCT (s)": s["p95_jct"],
            "avg queueing (s)": s["avg_queueing_delay"], "makespan (s)": s["makespan"],
            "GPU util.": s["gpu_utilization"], "unfinished": s["jobs_unfinished"],
            "CPU s": time.process_time() - tick}


def _table(frame: pd.DataFrame) -> list[str]:
    lines = ["| " + " | ".join(frame.columns) + " |", "|---" * len(frame.columns) + "|"]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(f"{v:,.3g}" if isinstance(v, float) and abs(v) < 1000
                                       else f"{v:,.0f}" if isinstance(v, float) else str(v)
                                       for v in row) + " |")
    return lines


def render(args, frame: pd.DataFrame, wls: list[Workload], dropped: int, wall: float) -> str:
    """The markdown report."""
    gpus = np.mean([(w.table["num_gpus"] > 1).mean() for w in wls])
    span = np.mean([w.span_seconds for w in wls]) / 3600
    lines = [f"Command: `python benchmarks/reproduce/elasticscale.py --vc {args.vc} --first {args.first} "
             f"--jobs {args.jobs} "
             f"--windows {args.windows} --load {args.load} --resize-overhead {args.resize_overhead:g}"
             f"{'' if args.preferred else ' --no-preferred-type'}`",
             f"(wall {wall:.0f} s).", "",
             f"Cluster {CLUSTER.describe()}. Jobs: {args.windows} window(s) of {args.jobs} Philly "
             f"VC {args.vc} jobs from job {args.first} on ({dropped} dropped as larger than the cluster; "
             f"{gpus:.0%} ask for more than one GPU), arrivals compressed to load {args.load} "
             f"(mean arrival span {span:.1f} h).", "",
             *_table(frame.drop(columns=["name"])), ""]
    mean = frame.groupby("name")[["avg JCT (s)", "makespan (s)", "GPU util."]].mean()
    heter = mean.loc["elasticscale"]
    lines += ["Mean over windows, and ratio to EasyScale-heter (the paper's ratio in brackets):", "",
              "| policy | avg JCT (s) | avg JCT / heter | makespan (s) | makespan / heter | GPU util. |",
              "|---|---|---|---|---|---|"]
    for label, name, *_ in POLICIES:
        m = mean.loc[name]
        paper = PAPER.get(name)
        pj = f" [{paper[0] / PAPER['elasticscale'][0]:.2f}x]" if paper else ""
        pm = f" [{paper[1] / PAPER['elasticscale'][1]:.2f}x]" if paper else ""
        lines.append(f"| {label} | {m['avg JCT (s)']:,.0f} | {m['avg JCT (s)'] / heter['avg JCT (s)']:.2f}x"
                     f"{pj} | {m['makespan (s)']:,.0f} | {m['makespan (s)'] / heter['makespan (s)']:.2f}x"
                     f"{pm} | {m['GPU util.']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vc", default="6c71a0", help="Philly VC (default 6c71a0)")
    ap.add_argument("--first", type=int, default=8600,
                    help="first job of the first window, in submission order (default 8600)")
    ap.add_argument("--jobs", type=int, default=200, help="jobs per window (default 200)")
    ap.add_argument("--windows", type=int, default=4, help="consecutive windows (default 4)")
    ap.add_argument("--load", type=float, default=1.0,
                    help="offered V100 GPU demand over the cluster's 64 GPUs (default 1.0)")
    ap.add_argument("--no-preferred-type", dest="preferred", action="store_false",
                    help="no preferred GPU types: EasyScale-homo binds a job to the type of its "
                         "first GPU, FIFO places gangs on any types")
    ap.add_argument("--resize-overhead", type=float, default=20.0, help="seconds per resize")
    ap.add_argument("--workers", type=int, default=2, help="parallel processes")
    ap.add_argument("--out", type=Path, default=OUT, help="markdown report path")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    wls, dropped = build_workloads(args.vc, args.first, args.jobs, args.windows, args.load,
                                   args.preferred)
    cells = [(w, wl, label, name, ex, el, bound and args.preferred, args.resize_overhead)
             for w, wl in enumerate(wls) for label, name, ex, el, bound in POLICIES]
    with ProcessPoolExecutor(args.workers) as pool:
        frame = pd.DataFrame(list(pool.map(run, cells)))
    text = render(args, frame, wls, dropped, time.perf_counter() - t0)
    print(text)
    write_results(args.out, text)
    print(f"wrote {args.out}")
    return frame


if __name__ == "__main__":
    main()
