"""Summary statistics and a summary plot of a workload (what ``dlsched traces show`` prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlsched_gym.errors import ConfigError
from dlsched_gym.traces import library
from dlsched_gym.workload import Workload

#: Duration percentiles reported by :func:`describe`.
PERCENTILES = (10, 25, 50, 75, 90, 99)


def _workload(name_or_workload: str | Workload) -> Workload:
    if isinstance(name_or_workload, Workload):
        return name_or_workload
    return library.load_any(name_or_workload)


def describe(name_or_workload: str | Workload) -> dict[str, Any]:
    """Summary statistics of a workload (or of a catalogue name / trace file, loaded with defaults).

    Returns a JSON-able dict: ``name``, ``jobs``, ``span_seconds``, ``arrival_rate_per_hour``
    (jobs / span), ``gpu_mix`` ({GPUs: jobs}), ``mean_gpus``, ``duration_seconds`` (``mean``,
    ``min``, ``max`` and ``p10`` .. ``p99``), ``gpu_hours`` (sum of duration x GPUs / 3600), and
    ``status_mix`` ({status: jobs}) where the trace records statuses.
    """
    wl = _workload(name_or_workload)
    t = wl.table
    if len(t) == 0:
        raise ConfigError(f"workload {wl.name!r} has no jobs to describe")
    dur = t["duration"].to_numpy(dtype=float)
    gpus = t["num_gpus"].to_numpy()
    span = wl.span_seconds
    out: dict[str, Any] = {
        "name": wl.name,
        "jobs": len(t),
        "span_seconds": span,
        "arrival_rate_per_hour": (len(t) - 1) / span * 3600 if span > 0 else float("nan"),
        "gpu_mix": {int(g): int(c) for g, c in t["num_gpus"].value_counts().sort_index().items()},
        "mean_gpus": float(gpus.mean()),
        "duration_seconds": {
            "mean": float(dur.mean()),
            "min": float(dur.min()),
            "max": float(dur.max()),
            **{f"p{q}": float(v) for q, v in zip(PERCENTILES, np.percentile(dur, PERCENTILES), strict=True)},
        },
        "gpu_hours": float((dur * gpus).sum() / 3600),
    }
    if (t["status"] != "").any():
        out["status_mix"] = {str(k): int(v) for k, v in t["status"].value_counts().items()}
    return out


def plot(workload: str | Workload, path: str | Path) -> Path:
    """Write a PNG with the arrivals over time (jobs per day) and the GPU-count mix; returns the path.

    Uses matplotlib's Agg canvas directly (no pyplot, no global backend change).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    wl = _workload(workload)
    t = wl.table
    path = Path(path)
    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    days = t["submit_time"].to_numpy() / 86400
    bins = max(1, int(np.ceil(days.max() if len(days) else 1)))
    ax1.hist(days, bins=bins, color="tab:blue")
    ax1.set_xlabel("time since first submission (days)")
    ax1.set_ylabel("jobs submitted per day (jobs)")
    ax1.set_title("arrivals")
    mix = t["num_gpus"].value_counts().sort_index()
    ax2.bar([str(g) for g in mix.index], mix.to_numpy(), color="tab:orange")
    ax2.set_yscale("log")
    ax2.set_xlabel("GPUs per job (GPUs)")
    ax2.set_ylabel("jobs (count, log scale)")
    ax2.set_title("GPU-count mix")
    fig.suptitle(f"{wl.name}: {len(t)} jobs over {wl.span_seconds / 86400:.1f} days")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path
