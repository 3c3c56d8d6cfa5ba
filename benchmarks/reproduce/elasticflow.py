"""Reproduce ElasticFlow's headline: deadline satisfaction ratio vs EDF, Gandiva and Tiresias.

Gu et al., "ElasticFlow: An Elastic Serverless Training Platform for Distributed Deep Learning",
ASPLOS 2023, Fig. 8(b): the Microsoft ITP traces released with the paper
(``microsoft/elasticflow-traces``; catalogue ``elasticflow``, ``cluster=1..10``) and a Philly
sample (``elasticflow-philly-103959``), simulated with ElasticFlow's A100 throughput tables,
60 s slots, on the cluster sizes of the artifact's ``run_fig8b.sh`` (clusters 1, 2, 3, 5, 6:
64 x 8 GPUs; 4, 7, 8, 9: 128 x 8; cluster 10 and Philly: 32 x 8). The metric is the fraction
of jobs that finish by their deadline; declined jobs count as misses.

Setup, the same for every scheduler:

- workload: the trace's own models, batch sizes and deadlines; every job elastic from 1 GPU to
  ElasticFlow's per-model cap for A100 (the artifact's ``get_max_gpu``: DeepSpeech2 = its batch
  size; GPT-2 bs128 16, bs256 32; BERT bs64 8, else 16; Inception-v3 bs64 16, bs128 32;
  ResNet-50 and VGG-16 bs64 32; otherwise min(batch, 64)), never below the requested count.
  The rigid baselines (EDF, Tiresias) run each job on its requested count.
- perf ``throughput`` on ``NxG-A100`` nodes, with the measured scaling curves and GPU-type
  factor only (``locality=None, variability=None``): ElasticFlow's curves were measured across
  nodes on its testbed, so PAL's node penalty would count communication twice. ``--full-perf``
  switches every factor on.
- overheads: ``perf.overhead("elasticflow")`` (2 + 2 (log2 n + 1) s) for every resize and
  restart, for every scheduler (the artifact charges EDF nothing).
- the oracle predictor (exact remaining work), as the artifact's simulator knows iterations.

Prints the tables and writes them into ``baselines/reproductions/elasticflow.md`` between the
``<!-- RESULTS -->`` and ``<!-- END -->`` markers (the rest of that file is hand-written).

Usage (about 1-2 minutes on 2 cores)::

    python benchmarks/reproduce/elasticflow.py                 # cluster 10 and Philly
    python benchmarks/reproduce/elasticflow.py --traces 1     # 1,595 jobs: about 10 minutes
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
from _writeup import write_results  # sibling module (scripts run as files)

from dlsched_gym import traces
from dlsched_gym.baselines import make
from dlsched_gym.engine import Engine
from dlsched_gym.metrics import summarize
from dlsched_gym.perf import make_perf, overhead

OUT = Path(__file__).resolve().parents[2] / "baselines" / "reproductions" / "elasticflow.md"

#: Nodes of 8 GPUs per trace (the artifact's run_fig8b.sh).
NODES = {1: 64, 2: 64, 3: 64, 4: 128, 5: 64, 6: 64, 7: 128, 8: 128, 9: 128, 10: 32, "philly": 32}

#: (label, registry name, parameters); Gandiva is not implemented in this project.
SCHEDULERS = [
    ("ElasticFlow", "elasticflow", {}),
    ("ElasticFlow (artifact leftover)", "elasticflow", {"leftover": "artifact"}),
    ("ElasticFlow w/o AC", "elasticflow-noac", {}),
    ("EDF (elastic)", "elasticflow-edf", {}),
    ("EDF (rigid)", "edf", {}),
    ("EDF+AC (rigid)", "edf", {"admission_control": True}),
    ("Tiresias", "tiresias", {}),
]


def max_gpu_cap(model: str, batch: int) -> int:
    """ElasticFlow's largest GPU count for (model, global batch) on A100 (see module docstring)."""
    caps = {("gpt2", 128): 16, ("gpt2", 256): 32, ("bert", 64): 8, ("inception3", 64): 16,
            ("inception3", 128): 32, ("resnet50", 64): 32, ("vgg16", 64): 32}
    if model == "deepspeech2":
        return batch
    if model == "bert":
        return caps.get((model, batch), 16)
    return caps.get((model, batch), min(batch, 64))


def load(trace, nodes: int | None = None) -> tuple[object, str]:
    """The elastic workload and its cluster spec string (``nodes`` overrides the size)."""
    wl = traces.load("elasticflow-philly-103959") if trace == "philly" else \
        traces.load("elasticflow", cluster=int(trace))
    t = wl.table.copy()
    caps = [max_gpu_cap(m, int(b)) for m, b in zip(t["model"], t["batch_size"])]
    t["min_gpus"] = 1
    t["max_gpus"] = [max(c, int(n)) for c, n in zip(caps, t["num_gpus"])]
    return wl.replace(t), f"{nodes or NODES[trace]}x8-A100"


def cell(args) -> dict:
    """One (trace, scheduler) simulation -> summary row."""
    trace, label, name, params, full_perf, nodes = args
    wl, cluster = load(trace, nodes)
    perf = make_perf("throughput") if full_perf else \
        make_perf("throughput", locality=None, variability=None)
    ef = overhead("elasticflow")
    t0 = time.perf_counter()
    res = Engine(wl, cluster, perf=perf, resize_overhead=ef, restart_overhead=ef,
                 timeline_interval=None).run(make(name, **params))
    s = summarize(res)
    return {"trace": f"cluster{trace:02d}" if trace != "philly" else "philly_103959",
            "jobs": len(wl), "gpus": (nodes or NODES[trace]) * 8, "scheduler": label,
            "deadlines_met": s["deadlines_met"], "rejected": s["jobs_rejected"],
            "avg_jct_h": s.get("avg_jct", float("nan")) / 3600, "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--traces", nargs="+", default=["10", "philly"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--nodes", type=int, help="8-GPU nodes instead of the artifact's size")
    ap.add_argument("--full-perf", action="store_true", help="every throughput factor on")
    ap.add_argument("--md", default=str(OUT), help="markdown report to update")
    ap.add_argument("--no-write", action="store_true", help="only print")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[2] / "runs" / "elasticflow.csv"))
    a = ap.parse_args()
    todo = [(tr if tr == "philly" else int(tr), *s, a.full_perf, a.nodes)
            for tr in a.traces for s in SCHEDULERS]
    with ProcessPoolExecutor(a.workers) as pool:
        rows = list(pool.map(cell, todo))
    frame = pd.DataFrame(rows)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(a.out, index=False)
    wide = frame.pivot(index="scheduler", columns="trace", values="deadlines_met")
    wide = wide.loc[[s[0] for s in SCHEDULERS]]
    ratio = pd.DataFrame({lab: wide.loc["ElasticFlow"] / wide.loc[lab]
                          for lab in wide.index if lab != "ElasticFlow"}).T.rename_axis("baseline")
    perf = "every throughput factor" if a.full_perf else "scaling curves + GPU type only"
    text = (f"Command: `python benchmarks/reproduce/elasticflow.py --traces {' '.join(a.traces)}"
            f"{f' --nodes {a.nodes}' if a.nodes else ''}{' --full-perf' if a.full_perf else ''}`"
            f" (perf: {perf})\n\n"
            "Deadline satisfaction ratio\n\n" + markdown(wide, "{:.3f}") +
            "\n\nElasticFlow / baseline\n\n" + markdown(ratio, "{:.2f}") +
            "\n\nPer cell (seconds = wall time of the simulation)\n\n" +
            markdown(frame.set_index(["trace", "scheduler"]), "{:.3f}") + "\n")
    print(text)
    if not a.no_write:
        write_results(Path(a.md), text)


def markdown(frame: pd.DataFrame, fmt: str) -> str:
    """``frame`` as a markdown table (index as the first columns)."""
    names = [str(n) for n in frame.index.names]
    lines = ["| " + " | ".join(names + [str(c) for c in frame.columns]) + " |",
             "|" + "---|" * (len(names) + len(frame.columns))]
    for idx, row in frame.iterrows():
        keys = idx if isinstance(idx, tuple) else (idx,)
        cells = [fmt.format(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(k) for k in keys] + cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
