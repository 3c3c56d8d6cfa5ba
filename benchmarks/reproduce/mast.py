"""Reproduce MAST's headline: the most overloaded region's high-priority demand/supply ratio.

Choudhury et al., "MAST: Global Scheduling of ML Training across Geo-Distributed Datacenters at
Hyperscale", OSDI'24. Abstract: before MAST, "the most overloaded region had a GPU
demand-to-supply ratio of 2.63 for high-priority workloads"; with MAST's global placement of data
and jobs it is 0.98. The paper measures Meta's production fleet; there is no public trace or code,
so this script builds a multi-region cluster and workload from Philly jobs:

- jobs: a window of ``dlsched_gym.traces.load("philly")``; jobs larger than the smallest region
  are dropped (counted in the report);
- four regions of unequal size (``REGIONS``), 8-GPU nodes in racks of 4;
- home regions drawn per job: the hot region with probability ``p_hot``, the others uniformly;
  priority high with probability ``HIGH_SHARE`` (higher in the hot region: demand skewed toward
  it); datasets: 8 per region, a job reads its home region's dataset of Zipf rank k
  (``Workload.augment(datasets=8)``, p ~ 1/k), sizes log-normal (median 20 TB), initially stored
  in that region only; each region's storage is twice its own datasets; 100 Gbit/s between
  regions;
- ``mast-pinned`` (users pick their home region, pre-MAST) against ``mast`` (global routing and
  data placement), same regional tier (priority order, preemption of low priority, best fit).

The "before" state is calibrated, not given: the skew ``p_hot`` is swept, and the setting whose
pinned worst-region ratio is closest to the paper's 2.63 is the headline row. The ratio is each
region's time-averaged GPU demand of high-priority jobs (queued + running, routed there) over its
GPUs (``Mast.demand_supply``); the offered-load ratio (GPU-seconds of work routed there / span /
GPUs) is also shown.

Usage (about 2 minutes on 2 idle cores)::

    python benchmarks/reproduce/mast.py
    python benchmarks/reproduce/mast.py --jobs 5000 --p-hot 0.4 0.5
"""

from __future__ import annotations

import argparse
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from dlsched_gym import traces
from dlsched_gym.baselines import make
from dlsched_gym.cluster import ClusterSpec, Node
from dlsched_gym.engine import Engine
from dlsched_gym.evaluate import atomic_write_text
from dlsched_gym.metrics import summarize
from dlsched_gym.workload import Workload

OUT = Path(__file__).resolve().parents[2] / "baselines" / "reproductions" / "mast.md"
#: Region -> GPUs (8-GPU nodes); "east" is the hot region.
REGIONS = {"east": 64, "north": 128, "south": 112, "west": 104}
HOT = "east"
#: Probability that a job is high priority: in the hot region, elsewhere.
HIGH_SHARE = (0.9, 0.7)
DATASETS_PER_REGION = 8
DATASET_MEDIAN_TB = 20.0
BANDWIDTH_GBPS = 100.0
P_HOT = (0.15, 0.17, 0.19, 0.2, 0.21, 0.23)
PAPER = (2.63, 0.98)

_BASE: Workload | None = None

#: How the engine models MAST's data placement (the design this reproduction asked for).
ENGINE_DATA = [
    "## Data placement in the engine",
    "",
    "Datasets, replicas, storage and the replication delay are simulated by the engine, so every "
    "scheduler sees the same data placement and pays the same delays (`mast` issues ops; "
    "`mast-pinned` runs on the same engine and never needs a copy, as each dataset is read only "
    "in its home region):",
    "",
    "- **Datasets**: `Engine(..., dataset_size_tb=float | {dataset: TB}, initial_replicas="
    "{dataset: [region, ...]})`; jobs keep the `dataset` column (`\"\"` = no data). Default "
    "initial replica: the most common home region of the dataset's jobs (lowest region index "
    "on a tie). Without `dataset_size_tb` datasets are labels and jobs run anywhere.",
    "- **Storage and bandwidth**: `ClusterSpec.region_storage_tb: {region: TB}` (missing = "
    "unlimited) and `ClusterSpec.replication_gbps` (one inter-region rate, default 100), in TOML "
    "as `[region_storage_tb] east = 500` and `replication_gbps = 100`.",
    "- **Ops**: `Replicate(dataset, region)`: valid when the region holds no ready or in-flight "
    "copy and `used + size_tb <= storage` (storage is taken when the copy starts); the copy is "
    "ready at `now + size_tb x 8e12 / (replication_gbps x 1e9)` s, an engine event and a "
    "decision point. `Evict(dataset, region)`: frees the storage; invalid for the last ready "
    "copy, a copy in flight, or while a job running in that region reads it. Both raise "
    "`SchedulerError` naming dataset, region and reason.",
    "- **Starting without data**: `Start` (or `Share`, `Resize`) on GPUs of a region with a copy "
    "in flight is accepted: the job holds its GPUs but makes no progress until the copy is "
    "ready (`progress_from = max(restart end, copy ready)`). With no copy there, it raises "
    "`SchedulerError` (\"Replicate it there first\"). A preempted job's checkpoint moves for "
    "free; the cloud pool is not gated.",
    "- **View**: `view.datasets_modelled`, `view.replicas(dataset) -> {region: ready_time}` "
    "(in flight while `> now`), `view.dataset_size_tb(dataset)`, `view.storage_used_tb(region)`, "
    "`view.storage_free_tb(region)`; `SimResult.replications` lists every copy "
    "`(time, dataset, region, TB)`.",
]


def build_cluster(storage: dict[str, float]) -> ClusterSpec:
    """The four regions, 8-GPU nodes, 4 nodes per rack; ``storage`` TB per region."""
    nodes = [Node(gpus=8, region=r, rack=f"{r}-{i // 4}")
             for r, g in REGIONS.items() for i in range(g // 8)]
    return ClusterSpec(nodes=tuple(nodes), name="mast-4-regions", region_storage_tb=storage,
                       replication_gbps=BANDWIDTH_GBPS)


def build_workload(base: Workload, p_hot: float, seed: int) -> tuple[Workload, dict, dict]:
    """Home regions, priorities and datasets for ``base``; returns it, dataset sizes, storage."""
    names = list(REGIONS)
    hot = names.index(HOT)
    r_home, r_prio, r_size = np.random.default_rng(seed).spawn(3)
    wl = base.augment(seed=seed, deadlines=None, iterations=False, memory=False,
                      datasets=DATASETS_PER_REGION)
    t = wl.table.copy()
    # Common random numbers: a larger p_hot only moves jobs into the hot region.
    others = np.array([i for i in range(len(names)) if i != hot])
    u = r_home.random((2, len(t)))
    home = np.where(u[0] < p_hot, hot, others[(u[1] * len(others)).astype(np.int64)])
    t["region"] = np.array(names, dtype=object)[home]
    share = np.where(home == hot, HIGH_SHARE[0], HIGH_SHARE[1])
    t["priority"] = (r_prio.random(len(t)) < share).astype(np.int64)
    t["dataset"] = t["region"] + "/" + t["dataset"]
    out = wl.replace(t)
    out.attrs["augmented"] = {**wl.attrs["augmented"],
                              "region": {"rule": f"per job: {HOT} with p={p_hot}, others uniform"},
                              "priority": {"rule": f"1 with p={HIGH_SHARE[0]} in {HOT}, "
                                                   f"{HIGH_SHARE[1]} elsewhere; else 0"}}
    datasets = sorted(set(t["dataset"]))
    sizes = dict(zip(datasets, DATASET_MEDIAN_TB * np.exp(r_size.normal(0.0, 1.0, len(datasets)))))
    storage = {r: 2.0 * sum(s for d, s in sizes.items() if d.startswith(r + "/")) for r in names}
    return out, sizes, storage


def offered(res, region: np.ndarray, high: np.ndarray, supply: dict) -> dict:
    """Offered high-priority load per region: GPU-seconds routed there / span / GPUs."""
    span = np.nanmax(res.end_time) - res.submit_time.min()
    work = res.duration * res.num_gpus_req
    return {r: float(work[high & (region == i)].sum() / span / supply[r])
            for i, r in enumerate(sorted(supply))}


def _run(task: tuple[float, str]) -> dict:
    p_hot, name = task
    wl, sizes, storage = build_workload(_BASE, p_hot, seed=0)
    sched = make(name)
    t0 = time.process_time()
    res = Engine(wl, build_cluster(storage), timeline_interval=None,
                 dataset_size_tb=sizes).run(sched)
    s = summarize(res)
    frame = res.jobs_frame()
    high = wl.table["priority"].to_numpy() >= 1
    qd = frame["queueing_delay"].to_numpy()
    ratios = sched.demand_supply()
    row = {"p_hot": p_hot, "name": name, "ratios": ratios,
           "offered": offered(res, res.annotations["mast_region"], high, REGIONS),
           "qd_high_h": float(np.nanmean(qd[high])) / 3600, "qd_low_h": float(np.nanmean(qd[~high])) / 3600,
           "jct_h": s["avg_jct"] / 3600, "util": s["gpu_utilization"], "preemptions": s["preemptions"],
           "finished": s["jobs_finished"] == s["jobs"], "cpu_s": time.process_time() - t0,
           "high_jobs": int(high.sum()), "jobs": len(high)}
    row["tb"] = sum(tb for *_, tb in res.replications)
    row["copies"] = len(res.replications)
    return row


def _worst(row: dict, key: str = "high") -> tuple[str, float]:
    r = max(row["ratios"], key=lambda x: row["ratios"][x][key])
    return r, row["ratios"][r][key]


def render(args, rows: dict, dropped: int, span_days: float, wall: float) -> str:
    """The markdown report."""
    best = min(args.p_hot, key=lambda p: abs(_worst(rows[(p, "mast-pinned")])[1] - PAPER[0]))
    pin, mast = rows[(best, "mast-pinned")], rows[(best, "mast")]
    regions = sorted(REGIONS)
    lines = [
        "# MAST (OSDI'24), mast-inspired: worst-region demand/supply on Philly jobs",
        "",
        "Generated by `benchmarks/reproduce/mast.py`; do not edit by hand.",
        "",
        "## The paper's claim",
        "",
        "Choudhury et al., \"MAST: Global Scheduling of ML Training across Geo-Distributed "
        "Datacenters at Hyperscale\", OSDI'24, abstract: in Meta's fleet, before MAST the most "
        f"overloaded region had a GPU demand-to-supply ratio of **{PAPER[0]}** for high-priority "
        f"workloads; with MAST it is **{PAPER[1]}**. The scheduler here is a reconstruction "
        "(`mast`, \"mast-inspired\": no public code; see the module docstring of "
        "`baselines/mast.py`), compared with `mast-pinned` (every job in its home region, as users "
        "pick regions by hand before MAST).",
        "",
        "## Command",
        "",
        "```",
        f"python benchmarks/reproduce/mast.py --first {args.first} --jobs {args.jobs} "
        f"--p-hot {' '.join(str(p) for p in args.p_hot)} --workers {args.workers}",
        "```",
        "",
        f"Wall time {wall:.0f} s with {args.workers} worker processes "
        f"({sum(r['cpu_s'] for r in rows.values()):.0f} CPU-seconds of simulation).",
        "",
        "## Setting",
        "",
        f"- Jobs: Philly (`traces.load(\"philly\")`), jobs {args.first}-{args.first + args.jobs - 1} "
        f"in submission order, {dropped} dropped for needing more GPUs than the smallest region "
        f"({min(REGIONS.values())}); {pin['jobs']} jobs over {span_days:.1f} days.",
        f"- Cluster: 4 regions, {', '.join(f'{r} {g}' for r, g in REGIONS.items())} GPUs "
        f"({sum(REGIONS.values())} in all), 8-GPU nodes, racks of 4 nodes.",
        f"- Home region per job: {HOT} with probability p_hot, the other three uniformly. High "
        f"priority with probability {HIGH_SHARE[0]} in {HOT}, {HIGH_SHARE[1]} elsewhere. "
        f"{DATASETS_PER_REGION} datasets per region, a job reads one of its home region's (Zipf, "
        f"p ~ 1/rank, `Workload.augment`); sizes log-normal, median {DATASET_MEDIAN_TB:.0f} TB "
        f"(sigma 1); initial copy in the home region only; storage per region twice its own "
        f"datasets; replication at {BANDWIDTH_GBPS:.0f} Gbit/s. Seeded (seed 0).",
        "- Ratio = time-averaged GPUs requested by high-priority jobs queued or running in the "
        "region / its GPUs (`demand_supply()`); offered = GPU-seconds of high-priority work run "
        "there / makespan (which includes the drain after the last arrival) / GPUs. "
        "The before-state is calibrated: the p_hot whose pinned worst "
        f"ratio is closest to {PAPER[0]} is the headline (p_hot = {best}).",
        "",
        "## Headline",
        "",
        "| | paper | pinned (pre-MAST) | mast |",
        "|---|---|---|---|",
        f"| worst region's high-priority demand/supply | {PAPER[0]} -> {PAPER[1]} | "
        f"{_worst(pin)[1]:.2f} ({_worst(pin)[0]}) | {_worst(mast)[1]:.2f} ({_worst(mast)[0]}) |",
        f"| worst offered high-priority load / supply | | {max(pin['offered'].values()):.2f} | "
        f"{max(mast['offered'].values()):.2f} |",
        f"| mean queueing delay, high / low priority (h) | | {pin['qd_high_h']:.2f} / "
        f"{pin['qd_low_h']:.2f} | {mast['qd_high_h']:.2f} / {mast['qd_low_h']:.2f} |",
        f"| avg JCT (h), GPU utilization | | {pin['jct_h']:.2f}, {pin['util']:.3f} | "
        f"{mast['jct_h']:.2f}, {mast['util']:.3f} |",
        f"| preemptions; replicas made (TB copied) | | {pin['preemptions']}; {pin['copies']} | "
        f"{mast['preemptions']}; {mast['copies']} ({mast['tb']:.0f} TB) |",
        "",
        "## Per region and skew",
        "",
        "Ratio high / all priorities per region (time-averaged demand over supply), then the "
        "offered high-priority load.",
        "",
        "| p_hot | scheduler | " + " | ".join(regions) + " | worst high | offered high per region "
        "| queueing high / low (h) | avg JCT (h) |",
        "|---|---|" + "---|" * len(regions) + "---|---|---|---|",
    ]
    for p in args.p_hot:
        for name in ("mast-pinned", "mast"):
            r = rows[(p, name)]
            cells = " | ".join(f"{r['ratios'][x]['high']:.2f} / {r['ratios'][x]['all']:.2f}" for x in regions)
            off = ", ".join(f"{r['offered'][x]:.2f}" for x in regions)
            lines.append(f"| {p} | {name} | {cells} | {_worst(r)[1]:.2f} | {off} | "
                         f"{r['qd_high_h']:.2f} / {r['qd_low_h']:.2f} | {r['jct_h']:.2f} |")
    after = _worst(mast)[1]
    lines += [
        "",
        "## Agreement with the paper",
        "",
        f"- Calibrated so that the pinned worst region is at {_worst(pin)[1]:.2f} (paper {PAPER[0]}), "
        f"the mast-inspired scheduler brings it to {after:.2f} (paper {PAPER[1]}): "
        + ("the overload is removed, as the paper reports."
           if after <= 1.0 else "the overload is reduced but not removed (above 1)."),
        "- Across the skews swept, the worst pinned / mast ratios are "
        + "; ".join(f"p_hot {p}: {_worst(rows[(p, 'mast-pinned')])[1]:.2f} -> "
                    f"{_worst(rows[(p, 'mast')])[1]:.2f}" for p in args.p_hot) + ".",
        "",
        "## Differences from the paper's setting",
        "",
        f"- Production fleet vs a {sum(REGIONS.values())}-GPU, 4-region simulation of Philly jobs "
        "with synthetic regions, priorities, datasets, sizes and storage (nothing of this is in "
        "the Philly trace); the skew is calibrated to the paper's before-ratio, so only the "
        "after-ratio is a prediction.",
        "- The paper's ratio definition (time window, what counts as demand) is not in the "
        "abstract; here demand is queued plus running GPU requests, averaged over the run.",
        "- The scheduler is a reconstruction (greedy replica planner on the current queue, "
        "least-ratio routing, per-region best fit with priority preemption); datasets, replicas, "
        "storage and replication delay are simulated by the engine (below).",
        "- No inter-region placement of a single job, no team quotas, one GPU type.",
    ]
    lines += ["", *ENGINE_DATA]
    if not all(r["finished"] for r in rows.values()):
        lines += ["", "WARNING: some runs did not finish every job."]
    return "\n".join(lines) + "\n"


def main() -> None:
    global _BASE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--first", type=int, default=0, help="first Philly job (by submission)")
    ap.add_argument("--jobs", type=int, default=10_000, help="number of Philly jobs")
    ap.add_argument("--p-hot", type=float, nargs="+", default=list(P_HOT),
                    help="probabilities that a job's home is the hot region")
    ap.add_argument("--workers", type=int, default=2, help="parallel simulations")
    ap.add_argument("--out", type=Path, default=OUT, help="markdown report path")
    args = ap.parse_args()
    t0 = time.perf_counter()
    wl = traces.load("philly").window(args.first, args.jobs)
    keep = wl.table["num_gpus"].to_numpy() <= min(REGIONS.values())
    dropped = int((~keep).sum())
    _BASE = wl.select(keep, label="fits-a-region")
    rows = {}
    with Pool(args.workers) as pool:
        for r in pool.imap_unordered(_run, [(p, n) for p in args.p_hot for n in ("mast-pinned", "mast")]):
            print(f"p_hot {r['p_hot']:<5} {r['name']:<12} worst high {_worst(r)[1]:.2f} "
                  f"({r['cpu_s']:.0f} CPU s)", flush=True)
            rows[(r["p_hot"], r["name"])] = r
    text = render(args, rows, dropped, _BASE.span_seconds / 86400, time.perf_counter() - t0)
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
