"""Wall time of an evaluation grid, and how it scales with worker processes.

Runs the grid of ``benchmarks/grid.toml`` (7 classic baselines x 3 loads x 3 seeds = 63 cells on
Philly VC 103959) from scratch once per worker count, each into a fresh temporary directory, and
prints the wall time, cells per second and the speed-up over one worker. The results of every
worker count must be identical (the grid is deterministic); the script checks it.

    python benchmarks/grid.py                     # workers 1 and 2
    python benchmarks/grid.py --workers 1,2,4
    python benchmarks/grid.py --keep results/grid # also keep the last run's results (for reports)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(HERE / "grid.toml"), help="experiment TOML file")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--keep", metavar="DIR", help="copy the last run's results here")
    args = parser.parse_args()

    from dlsched_gym import evaluate

    cells = evaluate.load_experiment(args.config).cells()
    counts = [int(x) for x in args.workers.split(",")]
    print(f"# {len(cells)} cells; {platform.machine()}, Python {platform.python_version()}, "
          f"{len(os.sched_getaffinity(0))} cores")
    print("| workers | wall (s) | cells/s | speed-up |")
    print("|---|---|---|---|")
    base, reference = None, None
    for w in counts:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            df = evaluate.run_grid(cells, tmp, workers=w, progress=False)
            wall = time.perf_counter() - t0
            metrics = df.drop(columns=["wall_s"]).sort_values("key").reset_index(drop=True)
            if reference is None:
                reference = metrics
            elif not metrics.equals(reference):
                raise SystemExit(f"results with {w} workers differ from those with {counts[0]}")
            base = base or wall
            print(f"| {w} | {wall:.1f} | {len(cells) / wall:.2f} | {base / wall:.2f}x |", flush=True)
            if args.keep and w == counts[-1]:
                shutil.rmtree(args.keep, ignore_errors=True)
                shutil.copytree(tmp, args.keep)


if __name__ == "__main__":
    main()
