"""Reproduce Lyra's headline comparison in the closest setting the bundled data allows.

Lyra (Li et al., EuroSys'23; arXiv 2202.07896 as "Aryl") reports, on 15-day ByteDance traces,
1.53x lower average queueing time, 1.48x lower average JCT and up to 25% higher cluster usage than
"the cluster scheduler without capacity loaning or elastic scaling". Neither the ByteDance
training trace nor its inference-cluster usage is public, so this script uses:

- training jobs: one Philly VC (Pollux-processed Philly table), a 15-day window of it, arrivals
  compressed by ``--load`` so that queues form;
- the training cluster: that VC's preset (``philly-vc/<vc>``, 8-GPU V100 nodes);
- the inference pool: ``--inference-nodes`` 8-GPU servers whose lendable count follows the
  generated diurnal series of :func:`dlsched_gym.baselines._lyra_pool.diurnal_inference_schedule`;
- elastic jobs: ``workload.augment(elastic=(0.5, 2.0))`` (``min = max(1, floor(n/2))``,
  ``max = 2n``, the spec's rule), then a seeded ``1 - --elastic-fraction`` of the jobs made rigid
  again (the spec assumes 30-50% elastic jobs);
- rates: the ``throughput`` perf model with measured scaling curves only (models drawn by
  ``augment`` from the bundled curves; GPU type, locality, variability and sharing off);
- overheads: 30 s restart (Pollux's), ElasticFlow's per-resize estimate.

Four runs of the same scheduler (``lyra``): without either mechanism (the paper's baseline),
loaning only, elastic scaling only, and both (Lyra).

    python benchmarks/reproduce/lyra.py                # the default setting (about 1 min)
    python benchmarks/reproduce/lyra.py --vc 103959 --load 8 --inference-nodes 8
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from dlsched_gym import traces
from dlsched_gym.baselines import make
from dlsched_gym.baselines._lyra_pool import DAY, cluster_with_inference_pool, diurnal_inference_schedule
from dlsched_gym.engine import Engine
from dlsched_gym.metrics import summarize
from dlsched_gym.perf import make_perf, overhead
from dlsched_gym.workload import Workload


def build_workload(args) -> Workload:
    wl = traces.load(f"philly-vc/{args.vc}")
    window = wl.table["submit_time"] < args.days * DAY
    wl = wl.select(window.to_numpy(), label=f"first-{args.days:g}-days").scale_load(args.load)
    wl = wl.augment(seed=args.seed, elastic=(0.5, 2.0), iterations=False, deadlines=None, memory=False)
    table = wl.table.copy()
    rigid = np.random.default_rng(args.seed).random(len(table)) >= args.elastic_fraction
    table.loc[rigid, "min_gpus"] = table.loc[rigid, "num_gpus"]
    table.loc[rigid, "max_gpus"] = table.loc[rigid, "num_gpus"]
    out = wl.replace(table)
    out.attrs["augmented"]["min_gpus"]["rule"] += (f"; then a seeded {1 - args.elastic_fraction:.0%} "
                                                   "of jobs rigid again (min = max = num_gpus)")
    return out


def lent_gpu_seconds(schedule, gpus_per_node: int, until: float) -> float:
    """GPU-seconds the pool lends over [0, until] under ``schedule``."""
    total = 0.0
    for (t, n), (t_next, _) in zip(schedule, [*schedule[1:], (math.inf, 0)]):
        if t >= until:
            break
        total += n * gpus_per_node * (min(t_next, until) - t)
    return total


def run(wl: Workload, spec, elastic: bool) -> dict:
    """One simulation; adds ``usage``: busy over available GPU-seconds (training GPUs plus the
    GPUs lent at the time) from 0 to the last arrival, while the trace keeps the cluster loaded
    (the long jobs that run alone after it would dominate a whole-run ratio)."""
    perf = make_perf("throughput", gpu_type=False, locality=None, variability=None, sharing=False)
    eng = Engine(wl, spec, perf=perf, restart_overhead=overhead("pollux"),
                 resize_overhead=overhead("elasticflow"), timeline_interval=None)
    scheduler = make("lyra", elastic=elastic)
    t0 = time.perf_counter()
    eng.reset(scheduler)
    usage = math.nan
    while eng.next_decision():
        if math.isnan(usage) and eng.now >= wl.span_seconds:
            usage = eng.busy_gpu_seconds / eng.available_gpu_seconds
        eng.apply(scheduler.schedule(eng.view))
    s = summarize(eng.result(scheduler.name))
    s["usage"] = usage
    s["wall_s"] = time.perf_counter() - t0
    return s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vc", default="6c71a0", help="Philly VC (default 6c71a0: 32 nodes, 256 GPUs)")
    p.add_argument("--days", type=float, default=15.0, help="trace window in days (Lyra: 15)")
    p.add_argument("--load", type=float, default=3.0, help="arrival-rate scale factor")
    p.add_argument("--inference-nodes", type=int, default=16, help="8-GPU servers in the inference pool")
    p.add_argument("--elastic-fraction", type=float, default=0.5, help="fraction of elastic jobs")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    wl = build_workload(args)
    train = f"philly-vc/{args.vc}"
    horizon_days = math.ceil(wl.span_seconds / DAY) + 30  # the series outlasts the last job
    schedule = diurnal_inference_schedule(args.inference_nodes, horizon_days)
    loan = cluster_with_inference_pool(train, args.inference_nodes, schedule=schedule)
    no_loan = cluster_with_inference_pool(train, args.inference_nodes)
    train_gpus = no_loan.num_gpus - 8 * args.inference_nodes
    origin = f'traces.load("philly-vc/{args.vc}")'
    elastic_jobs = int((wl.table["min_gpus"] < wl.table["max_gpus"]).sum())
    print(f"jobs: {len(wl)} from {origin}, window {args.days:g} days, load x{args.load:g}, "
          f"{elastic_jobs} elastic; cluster {train} ({train_gpus} GPUs) + {args.inference_nodes} x 8 "
          f"inference GPUs (diurnal, {lent_gpu_seconds(schedule, 1, DAY) / DAY:.1f} nodes lent on average)")
    rows = []
    for label, spec, elastic in (("baseline (no loaning, no elastic)", no_loan, False),
                                 ("capacity loaning only", loan, False),
                                 ("elastic scaling only", no_loan, True),
                                 ("Lyra (loaning + elastic)", loan, True)):
        s = run(wl, spec, elastic)
        rows.append((label, s))
        print(f"{label:36s} avg JCT {s['avg_jct'] / 3600:7.2f} h"
              f"  avg queueing {s['avg_queueing_delay'] / 3600:7.3f} h"
              f"  usage {s['usage']:.3f}  forced preemptions {s.get('forced_preemptions', 0):4d}"
              f"  unfinished {s['jobs_unfinished']}  ({s['wall_s']:.1f} s)")
    base, lyra = rows[0][1], rows[-1][1]
    print(f"Lyra vs baseline: JCT {base['avg_jct'] / lyra['avg_jct']:.2f}x lower, average queueing "
          f"{base['avg_queueing_delay'] / 3600:.2f} h -> {lyra['avg_queueing_delay']:.0f} s, usage "
          f"{(lyra['usage'] / base['usage'] - 1) * 100:+.1f}% "
          f"(paper: 1.48x JCT, 1.53x queueing, up to +25% usage)")

if __name__ == "__main__":
    main()
