"""Reader for Pollux / Sia workload files (petuum/adaptdl ``osdi21-artifact``, ``workloads*/workload-N.csv``).

Columns ``name,time,application,num_replicas,batch_size``: ``time`` is the arrival in seconds,
``num_replicas`` the GPUs the non-adaptive baselines give the job, ``batch_size`` its total batch.

The format has no run time: Pollux runs each application until it reaches a target metric, which its
simulator derives from measured goodput curves. That is not reproduced here. Instead ``duration`` is
the **median duration of the same application in ElasticFlow's Pollux comparison trace**
(``elasticVpollux_e.csv``, 195 jobs with Pollux application names, bundled as
``elasticflow-pollux-195``), the one public record of run times for these six applications. The rule
and the per-application values are recorded in ``attrs["augmented"]``. Pass ``durations={app: s}`` to
use other values. ``iterations`` stays unknown (NaN).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from dlsched_gym.errors import ConfigError
from dlsched_gym.traces._base import Reader, RowChecker, finish, read_delimited
from dlsched_gym.workload import Workload

FORMAT = "pollux"
COLUMNS = ("name", "time", "application", "num_replicas", "batch_size")
META = {
    "source": "petuum/adaptdl@c793c7089bd307462686339d29707925c461f9a9 (osdi21-artifact) "
    "simulator/workloads*/workload-N.csv",
    "license": "Apache-2.0 (adaptdl repository; the artifact branch carries no license file)",
    "citation": "Qiao et al., Pollux: Co-adaptive Cluster Scheduling for Goodput-Optimized Deep "
    "Learning, OSDI 2021",
}
DURATION_RULE = (
    "median duration of the same application in ElasticFlow's elasticVpollux_e.csv "
    "(195 jobs); num_replicas and the application's batch size are not taken into account"
)


def median_durations(table: pd.DataFrame) -> dict[str, float]:
    """Per-model median ``duration`` of a normalized table (the rule's source values)."""
    return {str(k): float(v) for k, v in table.groupby("model")["duration"].median().items()}


def _default_durations() -> dict[str, float]:
    from dlsched_gym.traces import library  # the bundled elasticflow-pollux-195 trace

    return median_durations(library.load("elasticflow-pollux-195").table)


def read(
    path: Path,
    *,
    lenient: bool = False,
    drop_invalid: bool = False,
    name: str | None = None,
    durations: Mapping[str, float] | None = None,
) -> Workload:
    """Read a Pollux/Sia workload CSV; ``durations`` maps application -> seconds (see the docstring)."""
    per_app = dict(durations) if durations is not None else _default_durations()
    if not all(isinstance(s, (int, float)) and s > 0 for s in per_app.values()):
        raise ConfigError(f"durations: expected seconds > 0 for every application, got {per_app!r}")
    frame = read_delimited(path, format_name=FORMAT, required=COLUMNS)
    checker = RowChecker(path, frame, lenient=lenient, first_line=2)
    app = checker.text("application")
    known = np.array([a in per_app for a in app], dtype=bool)
    checker.flag(~known, "application", f"one of {sorted(per_app)} (an application with a known duration)")
    columns = {
        "job_id": checker.text("name"),
        "submit_time": checker.number("time", minimum=0),
        "duration": np.array([per_app.get(a, np.nan) for a in app], dtype=float),
        "num_gpus": checker.number("num_replicas", integer=True, minimum=1),
        "model": app,
        "batch_size": checker.number("batch_size", integer=True, minimum=1),
    }
    rule = DURATION_RULE if durations is None else "caller-supplied seconds per application"
    augmented = {"duration": {"rule": rule, "seconds": per_app}}
    return finish(
        columns,
        checker,
        path,
        name=name or path.stem,
        drop_invalid=drop_invalid,
        meta=META,
        attrs={"format": FORMAT, "augmented": augmented},
    )


READER = Reader(
    FORMAT,
    "Pollux/Sia workload CSV (name,time,application,num_replicas,batch_size)",
    read,
    options=("durations",),
    header=COLUMNS,
)
