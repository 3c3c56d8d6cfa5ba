"""Held-out evaluation and training curves of the shipped agents (``pretrained:<name>``).

    python benchmarks/agent_heldout.py [--windows 8] [--plot docs/img/pretrained_philly.png]

Runs every bundled agent (as a PolicyScheduler in the plain engine, with the predictor it was
trained with) and the baselines of ``dlsched_gym.agents.train_pretrained.HELD_OUT_ROWS`` on the
default env's held-out windows (last 20% of Philly VC 103959 at 4x load, 256 jobs each; training
never saw them) and prints a Markdown table: per scheduler, mean +- standard deviation over the
windows of average and p99 JCT, GPU utilization and the env's episode return (scale 3600 s: minus
total job-hours in the system), and the paired ratio to Tiresias. The plot shows the training curves
recorded in ``agents/pretrained/<name>.json`` (periodic evaluation on training-split windows) next
to the held-out average JCTs.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np


def table(results: dict[str, list[dict]]) -> list[str]:
    """Markdown rows, best average JCT first. The ratio column is the geometric mean over windows
    of the row's average JCT divided by Tiresias's on the same window (paired: the windows' loads
    differ far more than the schedulers do)."""
    def cell(runs: list[dict], key: str, fmt: str, scale: float = 1.0) -> str:
        v = np.array([r[key] for r in runs], dtype=float) * scale
        return f"{format(v.mean(), fmt)} ± {format(v.std(ddof=1) if len(v) > 1 else 0.0, fmt)}"

    def ratio(runs: list[dict]) -> float:
        return float(np.exp(np.mean(np.log(np.array([r["avg_jct"] for r in runs]) / ref))))

    ref = np.array([r["avg_jct"] for r in results["tiresias"]])
    lines = ["| scheduler | avg JCT (s) | p99 JCT (s) | GPU util (%) | return | avg JCT / Tiresias's "
             "| windows |",
             "|---|---|---|---|---|---|---|"]
    order = sorted(results, key=lambda k: np.mean([r["avg_jct"] for r in results[k]]))
    for label in order:
        runs = results[label]
        name = f"**agent `pretrained:{label[6:]}`**" if label.startswith("agent:") else label
        lines.append(f"| {name} | {cell(runs, 'avg_jct', ',.0f')} | {cell(runs, 'p99_jct', ',.0f')} | "
                     f"{cell(runs, 'gpu_utilization', '.1f', 100.0)} | {cell(runs, 'return', ',.0f')} | "
                     f"{ratio(runs):.3f} | {len(runs)} |")
    return lines


def plot(metas: dict[str, dict], results: dict[str, list[dict]], path: Path) -> None:
    """Training curves (left) and held-out average JCT per scheduler (right), written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2))
    FigureCanvasAgg(fig)
    ax, bx = fig.subplots(1, 2)
    for name, meta in metas.items():
        rows = [line.split(",") for line in meta["evaluations"][1:]]
        ax.plot([int(r[0]) for r in rows], [float(r[1]) / 3600 for r in rows], marker="o",
                label=f"pretrained:{name}")
    ax.set_xlabel("PPO timesteps (after behaviour cloning)")
    ax.set_ylabel("avg JCT on training-split windows (h)")
    ax.set_title("training curves")
    ax.legend()
    labels = sorted(results, key=lambda k: np.mean([r["avg_jct"] for r in results[k]]))
    means = [np.mean([r["avg_jct"] for r in results[k]]) / 3600 for k in labels]
    sds = [np.std([r["avg_jct"] for r in results[k]], ddof=1) / 3600 for k in labels]
    bx.barh(labels, means, xerr=sds, color=["C3" if k.startswith("agent:") else "C0" for k in labels])
    bx.invert_yaxis()
    bx.set_xlabel("held-out avg JCT (h), mean ± sd over windows")
    bx.set_title("held-out windows")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def main() -> None:
    """Evaluate, print the table, write the plot."""
    ap = argparse.ArgumentParser(description="held-out evaluation of pretrained:philly")
    ap.add_argument("--windows", type=int, default=8, help="held-out windows (>= 2)")
    ap.add_argument("--plot", default="docs/img/pretrained_philly.png", help="PNG to write ('' = none)")
    args = ap.parse_args()
    if args.windows < 2:
        ap.error(f"--windows must be at least 2 (a spread needs two), got {args.windows}")
    from dlsched_gym.agents.policies import PRETRAINED, load_model
    from dlsched_gym.agents.train_pretrained import PRETRAINED_DIR, evaluate_held_out

    models = {name: load_model(f"pretrained:{name}") for name in PRETRAINED}
    results = evaluate_held_out(models, args.windows)
    print("\n".join(table(results)))
    if args.plot:
        metas = {name: json.loads((PRETRAINED_DIR / f"{name}.json").read_text()) for name in models}
        plot(metas, results, Path(args.plot))
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
