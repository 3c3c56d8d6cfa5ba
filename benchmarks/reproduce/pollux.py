"""Reproduce Pollux's headline: average JCT of Pollux vs Tiresias (and Gandiva, FIFO).

Qiao et al., "Pollux: Co-adaptive Cluster Scheduling for Goodput-Optimized Deep Learning",
OSDI 2021. Abstract: Pollux "reduces average job completion times by 37-50% relative to
state-of-the-art DL schedulers, even when they are provided with ideal resource and training
configurations for every job". Setting of the paper's simulation: the artifact's synthetic
workloads (160 jobs in 8 hours, 6 applications) on 16 nodes x 4 T4 GPUs, 60 s rounds, 30 s
restart penalty.

Our setting, the same for every scheduler:

- workload: the catalogue's ``pollux`` workloads (``workload=1..8``, ``scale=1`` by default: the
  artifact's ``workloads/workload-N.csv``), cluster ``16x4-T4``.
- work: each job's duration is Pollux's own work model, ``target_samples / fixed_goodput`` at its
  ``num_replicas`` packed on the fewest nodes with its ``batch_size``
  (:mod:`dlsched_gym.goodput`); the catalogue's durations (ElasticFlow medians per application,
  blind to GPU count and batch) are replaced.
- perf: :class:`dlsched_gym.goodput.GoodputModel`. Pollux's jobs are elastic from 1 GPU to the
  whole cluster and adapt their batch size (``adaptive=True``); the rigid baselines run each job
  on its ``num_replicas`` with its ``batch_size`` (``adaptive=False``), the configuration the
  artifact gives its non-adaptive baselines. The row "Pollux (fixed batch)" runs Pollux's
  allocations with jobs that keep their batch size (allocation co-adaptation only).
- overheads: ``perf.overhead("pollux")`` (30 s) for every restart and resize, for every scheduler.
- Tiresias twice: this project's default (2 queues, 3,250 GPU-s) and the Pollux port's threshold
  of 16 GPU-hours (spec ``published-schedulers-b.md``).

Prints the tables and writes them into ``baselines/reproductions/pollux.md`` between the
``<!-- RESULTS -->`` and ``<!-- END -->`` markers (the rest of that file is hand-written), and the
per-cell rows into ``runs/pollux.csv``.

Usage (about 1-2 minutes on 2 cores)::

    python benchmarks/reproduce/pollux.py                      # workloads 1-8, scale 1
    python benchmarks/reproduce/pollux.py --workloads 1 --scale 2
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
from _writeup import write_results  # sibling module (scripts run as files)

from dlsched_gym import goodput, traces
from dlsched_gym.baselines import make
from dlsched_gym.engine import Engine
from dlsched_gym.evaluate import atomic_write_text
from dlsched_gym.metrics import summarize
from dlsched_gym.perf import overhead

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "baselines" / "reproductions" / "pollux.md"
CLUSTER = "16x4-T4"
NODE_GPUS = 4

#: (label, registry name, parameters, elastic + adaptive jobs, adaptive batch only)
SCHEDULERS = [
    ("Pollux", "pollux", {}, True, True),
    ("Pollux (fixed batch)", "pollux", {}, True, False),
    ("Tiresias", "tiresias", {}, False, False),
    ("Tiresias (16 GPU-h)", "tiresias", {"thresholds": (16 * 3600.0,)}, False, False),
    ("Gandiva", "gandiva", {}, False, False),
    ("FIFO", "fifo", {}, False, False),
]


def load(workload: int, scale: str, elastic: bool):
    """The Pollux workload with goodput-model durations; elastic 1..64 GPUs if ``elastic``."""
    wl = traces.load("pollux", workload=workload, scale=scale)
    t = wl.table.copy()
    t["duration"] = [
        goodput.params(m).target_samples
        / goodput.fixed_goodput(m, int(n), goodput.packed_nodes(int(n), NODE_GPUS), int(b))
        for m, n, b in zip(t["model"], t["num_gpus"], t["batch_size"])]
    if elastic:
        t["min_gpus"] = 1
        t["max_gpus"] = 16 * NODE_GPUS
    return wl.replace(t)


def cell(args) -> dict:
    """One (workload, scheduler) simulation -> summary row."""
    workload, scale, label, name, params, elastic, adaptive = args
    wl = load(workload, scale, elastic)
    ov = overhead("pollux")
    t0 = time.perf_counter()
    res = Engine(wl, CLUSTER, perf=goodput.GoodputModel(adaptive=adaptive), restart_overhead=ov,
                 resize_overhead=ov, timeline_interval=None).run(make(name, **params))
    s = summarize(res)
    return {"workload": workload, "scale": scale, "scheduler": label, "jobs": len(wl),
            "avg_jct_h": s["avg_jct"] / 3600, "p99_jct_h": s["p99_jct"] / 3600,
            "makespan_h": s["makespan"] / 3600, "seconds": time.perf_counter() - t0}


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads", type=int, nargs="+", default=list(range(1, 9)))
    ap.add_argument("--scale", default="1", help="load scale: 0.5, 1, 1.5, 2 or realistic")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="only print")
    ap.add_argument("--out", default=str(ROOT / "runs" / "pollux.csv"))
    a = ap.parse_args(argv)
    todo = [(w, a.scale, *s) for w in a.workloads for s in SCHEDULERS]
    with ProcessPoolExecutor(a.workers) as pool:
        frame = pd.DataFrame(list(pool.map(cell, todo)))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(a.out, frame.to_csv(index=False))
    order = [s[0] for s in SCHEDULERS]
    avg = frame.groupby("scheduler")[["avg_jct_h", "p99_jct_h", "makespan_h"]].mean().loc[order]
    avg["pollux_reduction_%"] = 100 * (1 - avg.loc["Pollux", "avg_jct_h"] / avg["avg_jct_h"])
    wide = frame.pivot(index="scheduler", columns="workload", values="avg_jct_h").loc[order]
    wide.columns = [f"w{c}" for c in wide.columns]
    cmd = (f"python benchmarks/reproduce/pollux.py --workloads {' '.join(map(str, a.workloads))}"
           f" --scale {a.scale}")
    text = (f"Command: `{cmd}`\n\n"
            f"Mean over workloads (hours); reduction = 1 - Pollux / row, in %\n\n"
            + markdown(avg, "{:.3f}") + "\n\nAverage JCT (h) per workload\n\n"
            + markdown(wide, "{:.3f}") + "\n")
    print(text)
    if not a.no_write:
        write_results(OUT, text)
    return frame


def markdown(frame: pd.DataFrame, fmt: str) -> str:
    """``frame`` as a markdown table (index as the first column)."""
    lines = ["| " + " | ".join([str(frame.index.name or "")] + [str(c) for c in frame.columns])
             + " |", "|" + "---|" * (1 + len(frame.columns))]
    for idx, row in frame.iterrows():
        cells = [fmt.format(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(idx)] + cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
