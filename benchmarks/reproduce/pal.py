"""Reproduce PAL's headline comparison: PAL vs Packed-Sticky placement on Philly-derived jobs.

Jain, Tran, Chen, Sinclair and Venkataraman, "PAL: A Variability-Aware Policy for Scheduling ML
Workloads in GPU Clusters", SC'24 (arXiv 2408.11919). Artifact README (``rutwik-n-jain/blox-pal``,
branch ``artifact``), Fig. 10: on 8 Sia-Philly workloads of 160 jobs, a 64-GPU cluster (16 nodes
x 4 V100s), a FIFO queue and locality penalty lambda = 1.7, PAL improves average JCT over
Packed-Sticky by a 43% geomean (min 21%, max 59%). Fig. 12 sweeps lambda from 1.0 to 3.0: PAL's
gain shrinks from 30% to 20%. The abstract reports a 42% geomean JCT reduction across traces.

Setting here: 8 windows of 160 consecutive jobs of Philly VC ``ee9e8c`` (the VC with the widest
GPU-count mix, 1-32 GPUs; jobs asking for more than the 64 GPUs are dropped and counted), arrivals
compressed so the average GPU demand is ``--load`` x 64 GPUs, models drawn uniformly from PAL's
application mix (``Workload.augment``), ``perf="throughput"`` with PAL's per-GPU variability
(``variability="longhorn"``: TACC Longhorn V100 measurements, per class) and PAL's locality
penalty; cluster ``16x4-V100``; both schedulers see the same per-GPU draws (engine seed = window
index). Restart overhead 0 (the artifact's simulator charges none that we know of; a 30 s row
shows the sensitivity). Also runs the lambda sweep, and with ``--queues`` the LAS and SRTF queues
(the Synergy figures' policies; several minutes, since PAL then re-places at every round).

Usage (about a minute on 2 cores)::

    python benchmarks/reproduce/pal.py
    python benchmarks/reproduce/pal.py --load 0.6 --windows 4 --queues
"""

from __future__ import annotations

import argparse
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from dlsched_gym import traces
from dlsched_gym.baselines import make
from dlsched_gym.engine import Engine
from dlsched_gym.evaluate import atomic_write_text
from dlsched_gym.metrics import summarize
from dlsched_gym.perf import make_perf
from dlsched_gym.workload import Workload

OUT = Path(__file__).resolve().parents[2] / "baselines" / "reproductions" / "pal.md"
VC = "ee9e8c"
CLUSTER = "16x4-V100"
CLUSTER_GPUS = 64
JOBS = 160
#: PAL's application mix (artifact class map): ResNet-50 -> A; BERT, GPT-2, DCGAN -> B (CycleGAN
#: stands in for DCGAN, which has no throughput curve here); VGG -> C; PointNet -> D (NCF, the
#: embedding-bound model with a curve, stands in).
POOL = [("resnet50", 64), ("bert", 128), ("gpt2", 128), ("cyclegan", 0), ("vgg16", 128),
        ("ncf", 32768)]
#: (label, queue policy, lambda, restart overhead s); LAS and SRTF only with ``--queues``.
SETTINGS = [("FIFO", "fifo", 1.7, 0.0), ("FIFO, lambda 1.0", "fifo", 1.0, 0.0),
            ("FIFO, lambda 3.0", "fifo", 3.0, 0.0), ("FIFO, restart 30 s", "fifo", 1.7, 30.0),
            ("LAS", "las", 1.7, 0.0), ("SRTF", "srtf", 1.7, 0.0)]
SCHEDULERS = ("pal", "packed-sticky")

_WORKLOADS: list[Workload] = []


def build_workloads(load: float, windows: int, first: int) -> tuple[list[Workload], int]:
    """``windows`` windows of ``JOBS`` jobs of the VC, augmented and compressed to ``load``;
    also returns how many jobs were dropped for asking more GPUs than the cluster has."""
    wl = traces.load(f"philly-vc/{VC}")
    out, dropped = [], 0
    for w in range(windows):
        sub = wl.window(first + w * JOBS, JOBS)
        too_big = sub.table["num_gpus"].to_numpy() > CLUSTER_GPUS
        dropped += int(too_big.sum())
        if too_big.any():
            sub = sub.select(~too_big, label="fits-64")
        t = sub.table
        demand = float((t["duration"] * t["num_gpus"]).sum() / t["submit_time"].max())
        out.append(sub.scale_load(CLUSTER_GPUS * load / demand).augment(seed=w, model_pool=POOL))
    return out, dropped


def _run(task: tuple[int, str, str, str, float, float]) -> dict:
    w, label, name, policy, lam, overhead = task
    perf = make_perf("throughput", variability="longhorn", node_penalty=lam)
    params = {"policy": policy}
    if name == "pal":
        params["locality_penalty"] = lam
    t0 = time.process_time()
    res = Engine(_WORKLOADS[w], CLUSTER, perf=perf, seed=w, restart_overhead=overhead,
                 timeline_interval=None).run(make(name, **params))
    s = summarize(res)
    return {"w": w, "label": label, "name": name, "avg_jct_h": s["avg_jct"] / 3600,
            "makespan_h": res.now / 3600, "util": s["gpu_utilization"],
            "preemptions": int(res.preemptions.sum()), "cpu": time.process_time() - t0,
            "finished": s["jobs_finished"] == s["jobs"]}


def _geomean_gain(ratios: list[float]) -> float:
    return 1.0 - float(np.exp(np.mean(np.log(ratios))))


def render(args, dropped: int, results: dict, wall: float) -> str:
    """The markdown report."""
    sizes = np.concatenate([w.table["num_gpus"].to_numpy() for w in _WORKLOADS])
    durs = np.concatenate([w.table["duration"].to_numpy() for w in _WORKLOADS])
    lines = [
        "# PAL (SC'24): PAL vs Packed-Sticky on Philly-derived jobs",
        "",
        "Generated by `benchmarks/reproduce/pal.py`; do not edit by hand.",
        "",
        "## The paper's claim",
        "",
        "Jain et al., \"PAL: A Variability-Aware Policy for Scheduling ML Workloads in GPU Clusters\", "
        "SC'24 (arXiv 2408.11919). Abstract: geomean JCT -42%, utilization +28%, makespan -47% vs "
        "state-of-the-art schedulers across traces of six ML applications. Artifact README "
        "(`rutwik-n-jain/blox-pal`, branch `artifact`), Fig. 10: on 8 Sia-Philly workloads x 160 jobs, "
        "64 GPUs (16 x 4 V100), FIFO, lambda = 1.7, PAL improves average JCT over Packed-Sticky by a "
        "**43% geomean (min 21%, max 59%)**; Fig. 12: as lambda goes 1.0 -> 3.0, PAL's gain goes "
        "30% -> 20%.",
        "",
        "## Command",
        "",
        "```",
        f"python benchmarks/reproduce/pal.py --load {args.load} --windows {args.windows} "
        f"--first {args.first} --workers {args.workers}" + (" --queues" if args.queues else ""),
        "```",
        "",
        f"Wall time {wall:.0f} s with {args.workers} worker processes; "
        f"{sum(r['cpu'] for r in results.values()):.0f} CPU-seconds of simulation.",
        "",
        "## Setting",
        "",
        f"- Jobs: `traces.load(\"philly-vc/{VC}\")`, {args.windows} windows of {JOBS} consecutive jobs "
        f"from row {args.first} ({dropped} jobs asking for more than {CLUSTER_GPUS} GPUs dropped); "
        f"{len(sizes)} jobs, GPUs per job: "
        + ", ".join(f"{int(g)}: {int((sizes == g).sum())}" for g in np.unique(sizes))
        + f"; median run time {np.median(durs) / 3600:.1f} h, mean {durs.mean() / 3600:.1f} h. "
        f"Arrivals compressed so each window's average GPU demand is {args.load} x {CLUSTER_GPUS} GPUs.",
        "- Models (`Workload.augment`, uniform, seed = window): " + ", ".join(m for m, _ in POOL)
        + " (classes A, B, B, B, C, D).",
        f"- Cluster `{CLUSTER}`; `perf=make_perf(\"throughput\", variability=\"longhorn\", "
        "node_penalty=lambda)`: a gang runs at the speed of its slowest GPU for its class (per-GPU "
        "slowdowns drawn from PAL's Longhorn measurements, seeded by the window index, the same for "
        "both schedulers) and 1/lambda when it spans nodes.",
        "- Both schedulers decide at 360 s rounds (the artifact's Sia setting). PAL's lambda equals "
        "the perf model's. Restart overhead 0 unless stated.",
        "",
        "## Results (average JCT in hours; gain = 1 - PAL / Packed-Sticky)",
        "",
        "| setting | " + " | ".join(f"w{w}" for w in range(args.windows))
        + " | geomean gain | min | max | PAL util / makespan | Packed util / makespan |",
        "|---|" + "---|" * args.windows + "---|---|---|---|---|",
    ]
    gains = {}
    for label, *_ in args.settings:
        cells, ratios = [], []
        for w in range(args.windows):
            p, b = results[(w, label, "pal")], results[(w, label, "packed-sticky")]
            ratios.append(p["avg_jct_h"] / b["avg_jct_h"])
            cells.append(f"{p['avg_jct_h']:.1f} / {b['avg_jct_h']:.1f}")
        g = _geomean_gain(ratios)
        gains[label] = (g, 1 - max(ratios), 1 - min(ratios))

        avg = {(name, key): float(np.mean([results[(w, label, name)][key] for w in range(args.windows)]))
               for name in SCHEDULERS for key in ("util", "makespan_h")}
        lines.append(
            f"| {label} | " + " | ".join(cells) + f" | {100 * g:.0f}% | {100 * (1 - max(ratios)):.0f}% "
            f"| {100 * (1 - min(ratios)):.0f}% | "
            + " | ".join(f"{avg[(n, 'util')]:.2f} / {avg[(n, 'makespan_h')]:.0f} h" for n in SCHEDULERS)
            + " |")
    moves = np.mean([results[(w, "FIFO", "pal")]["preemptions"] for w in range(args.windows)])
    lines += [
        "",
        "Cells: PAL / Packed-Sticky. Utilization = busy GPU-time / available GPU-time over the run; "
        "makespan = time of the last completion.",
        "",
        "## Agreement with the paper",
        "",
        f"- FIFO, lambda 1.7: PAL's geomean JCT gain over Packed-Sticky is {100 * gains['FIFO'][0]:.0f}% "
        f"(range {100 * gains['FIFO'][1]:.0f}% to {100 * gains['FIFO'][2]:.0f}%); the paper's Fig. 10: "
        "43% (21% to 59%).",
        f"- Lambda sweep: gain {100 * gains['FIFO, lambda 1.0'][0]:.0f}% at lambda 1.0, "
        f"{100 * gains['FIFO'][0]:.0f}% at 1.7, {100 * gains['FIFO, lambda 3.0'][0]:.0f}% at 3.0 "
        "(paper, Fig. 12: 30% at 1.0 falling to 20% at 3.0).",
        *([f"- LAS / SRTF queues: {100 * gains['LAS'][0]:.0f}% / {100 * gains['SRTF'][0]:.0f}% (the "
           "paper shows gains under both on the Synergy workload; numbers not compared)."]
          if "LAS" in gains else ["- LAS and SRTF queues not run (pass `--queues`; PAL re-places every "
                                  "round under them, about 20x the CPU time of FIFO)."]),
        f"- With a 30 s restart overhead (PAL restarts every job it moves; it moved jobs "
        f"{moves:.0f} times per window under FIFO): {100 * gains['FIFO, restart 30 s'][0]:.0f}%.",
        "",
        "## Differences from the paper's setting",
        "",
        "- Jobs: windows of the Pollux-processed Philly VC trace, not Sia's Philly-derived workloads "
        "(which we do not redistribute); its GPU-count mix (mostly 1, 4, 8 and 16) and its run times "
        "(hours) differ from Sia's, and the load is set by compressing arrivals.",
        "- Models: CycleGAN stands in for DCGAN and NCF for PointNet (class D) because the bundled "
        "throughput tables have no curve for those two; only the class matters to the variability "
        "factor.",
        "- Variability: each GPU draws its per-class slowdown independently from the measured "
        "Longhorn distributions (the artifact samples per-GPU rows of the same data); PAL reads the "
        "slowdowns through `view.rate_with` rather than a profile table.",
        "- PAL's K-means is our deterministic 1-D Lloyd; the artifact uses scikit-learn (k-means++, "
        "seed 1) and, through an early return in its silhouette loop, always K1 = 2 base tiers "
        "(here up to 10).",
        "- Restart overhead 0 in the main rows; what the artifact's simulator charges for a move is "
        "not established here.",
    ]
    if not all(r["finished"] for r in results.values()):
        lines += ["", "WARNING: some runs did not finish every job."]
    return "\n".join(lines) + "\n"


def main() -> None:
    global _WORKLOADS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--load", type=float, default=0.6, help="average GPU demand / cluster GPUs")
    ap.add_argument("--windows", type=int, default=8, help="workloads of 160 jobs")
    ap.add_argument("--first", type=int, default=0, help="first job row of the VC")
    ap.add_argument("--workers", type=int, default=2, help="parallel simulations")
    ap.add_argument("--queues", action="store_true", help="also run the LAS and SRTF queues")
    ap.add_argument("--out", type=Path, default=OUT, help="markdown report path")
    args = ap.parse_args()
    args.settings = [s for s in SETTINGS if args.queues or s[1] == "fifo"]
    t0 = time.perf_counter()
    _WORKLOADS, dropped = build_workloads(args.load, args.windows, args.first)
    tasks = [(w, label, name, policy, lam, ov) for label, policy, lam, ov in args.settings
             for w in range(args.windows) for name in SCHEDULERS]
    results = {}
    with Pool(args.workers) as pool:
        for r in pool.imap_unordered(_run, tasks):
            results[(r["w"], r["label"], r["name"])] = r
            print(f"w{r['w']} {r['label']:>20} {r['name']:>14}  JCT {r['avg_jct_h']:8.2f} h  "
                  f"({r['cpu']:.1f} CPU s)", flush=True)
    atomic_write_text(args.out, render(args, dropped, results, time.perf_counter() - t0))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
