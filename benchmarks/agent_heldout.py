"""Held-out evaluation and training curve of the shipped agent ``pretrained:philly``.

    python benchmarks/agent_heldout.py [--windows 8] [--plot docs/img/pretrained_philly.png]

Runs the agent (as a PolicyScheduler in the plain engine) and the baselines of
``dlsched_gym.agents.train_pretrained.HELD_OUT_ROWS`` on the default env's held-out windows (last
20% of Philly VC 103959 at 4x load, 256 jobs each; training never saw them) and prints a Markdown
table: per scheduler, mean +- standard deviation over the windows of average and p99 JCT, GPU
utilization and the env's episode return (scale 3600 s: minus total job-hours in the system). The
plot shows the training curve recorded in ``agents/pretrained/philly.json`` (periodic evaluation on
training-split windows against FIFO) next to the held-out average JCTs.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np


def table(results: dict[str, list[dict]]) -> list[str]:
    """Markdown rows, best average JCT first. The ratio column is the geometric mean over windows
    of the row's average JCT divided by the agent's on the same window (paired: the windows' loads
    differ far more than the schedulers do)."""
    def cell(runs: list[dict], key: str, fmt: str, scale: float = 1.0) -> str:
        v = np.array([r[key] for r in runs], dtype=float) * scale
        return f"{format(v.mean(), fmt)} ± {format(v.std(ddof=1) if len(v) > 1 else 0.0, fmt)}"

    def ratio(runs: list[dict]) -> float:
        return float(np.exp(np.mean(np.log(np.array([r["avg_jct"] for r in runs]) / agent))))

    agent = np.array([r["avg_jct"] for r in results["agent"]])
    lines = ["| scheduler | avg JCT (s) | p99 JCT (s) | GPU util (%) | return | avg JCT / agent's "
             "| windows |",
             "|---|---|---|---|---|---|---|"]
    order = sorted(results, key=lambda k: np.mean([r["avg_jct"] for r in results[k]]))
    for label in order:
        runs = results[label]
        name = "**agent `pretrained:philly`**" if label == "agent" else label
        lines.append(f"| {name} | {cell(runs, 'avg_jct', ',.0f')} | {cell(runs, 'p99_jct', ',.0f')} | "
                     f"{cell(runs, 'gpu_utilization', '.1f', 100.0)} | {cell(runs, 'return', ',.0f')} | "
                     f"{ratio(runs):.3f} | {len(runs)} |")
    return lines


def plot(meta: dict, results: dict[str, list[dict]], path: Path) -> None:
    """Training curve (left) and held-out average JCT per scheduler (right), written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [line.split(",") for line in meta["evaluations"][1:]]
    steps = [int(r[0]) for r in rows]
    fig = Figure(figsize=(10, 3.8))
    FigureCanvasAgg(fig)
    ax, bx = fig.subplots(1, 2)
    ax.plot(steps, [float(r[1]) / 3600 for r in rows], marker="o", label="agent")
    ax.plot(steps, [float(r[2]) / 3600 for r in rows], ls="--", label="FIFO")
    ax.set_xlabel("PPO timesteps (after behaviour cloning)")
    ax.set_ylabel("avg JCT on training-split windows (h)")
    ax.set_title("training curve")
    ax.legend()
    labels = sorted(results, key=lambda k: np.mean([r["avg_jct"] for r in results[k]]))
    means = [np.mean([r["avg_jct"] for r in results[k]]) / 3600 for k in labels]
    sds = [np.std([r["avg_jct"] for r in results[k]], ddof=1) / 3600 for k in labels]
    bx.barh(labels, means, xerr=sds, color=["C3" if k == "agent" else "C0" for k in labels])
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
    from dlsched_gym.agents.policies import load_agent
    from dlsched_gym.agents.train_pretrained import PRETRAINED_DIR, evaluate_held_out

    results = evaluate_held_out(load_agent("pretrained:philly").model, args.windows)
    print("\n".join(table(results)))
    if args.plot:
        meta = json.loads((PRETRAINED_DIR / "philly.json").read_text())
        plot(meta, results, Path(args.plot))
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
