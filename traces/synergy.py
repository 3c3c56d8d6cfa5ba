"""Reader for Synergy (OSDI'22, msr-fiddle/synergy) example traces.

Headerless CSV with the fields ``job_id, model_name, arrival_time, num_iters, gpu_demand`` (order as
Synergy's simulator reads them). **Units are not documented**: ``arrival_time`` holds fractions such
as ``.123`` and ``num_iters`` counts iterations whose duration lives in Synergy's code (per-model
profiles), not in any data file. So two explicit options convert them:

- ``time_unit``: seconds per ``arrival_time`` unit (default 1.0, i.e. the values are read as seconds:
  the example traces are "static", all jobs present at the start);
- ``seconds_per_iteration``: a number, or a mapping model -> seconds (default 1.0 for every model, a
  placeholder that makes ``duration`` equal ``num_iters`` seconds).

Both choices are recorded in ``attrs["augmented"]``; ``iterations`` keeps ``num_iters``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dlsched_gym.errors import ConfigError
from dlsched_gym.traces._base import Reader, RowChecker, finish, read_delimited
from dlsched_gym.workload import Workload

FORMAT = "synergy"
COLUMNS = ("job_id", "model_name", "arrival_time", "num_iters", "gpu_demand")
META = {
    "source": "msr-fiddle/synergy@1bb2bed6edc9c5f953d0b7f0a40e4fdad053489c simulator/ example traces",
    "license": "MIT",
    "citation": "Mohan et al., Looking Beyond GPUs for DNN Scheduling on Multi-Tenant Clusters "
    "(Synergy), OSDI 2022",
}


def read(
    path: Path,
    *,
    lenient: bool = False,
    drop_invalid: bool = False,
    name: str | None = None,
    time_unit: float = 1.0,
    seconds_per_iteration: float | Mapping[str, float] = 1.0,
) -> Workload:
    """Read a Synergy trace (see the module docstring for the unit options)."""
    if not (isinstance(time_unit, (int, float)) and time_unit > 0):
        raise ConfigError(f"time_unit: expected seconds > 0, got {time_unit!r}")
    frame = read_delimited(path, format_name=FORMAT, columns=COLUMNS)
    checker = RowChecker(path, frame, lenient=lenient, first_line=1)
    model = checker.text("model_name")
    iters = checker.number("num_iters", minimum=1)
    if isinstance(seconds_per_iteration, Mapping):
        missing = sorted({m for m in model if m and m not in seconds_per_iteration})
        if missing:
            raise ConfigError(f"seconds_per_iteration: no value for model(s) {missing}")
        per_iter = np.array([seconds_per_iteration.get(m, np.nan) for m in model], dtype=float)
    elif isinstance(seconds_per_iteration, (int, float)) and seconds_per_iteration > 0:
        per_iter = np.full(len(frame), float(seconds_per_iteration))
    else:
        raise ConfigError(
            f"seconds_per_iteration: expected seconds > 0 or a mapping model -> seconds, "
            f"got {seconds_per_iteration!r}"
        )
    columns = {
        "job_id": checker.text("job_id"),
        "submit_time": checker.number("arrival_time", minimum=0) * time_unit,
        "duration": iters * per_iter,
        "num_gpus": checker.number("gpu_demand", integer=True, minimum=1),
        "model": model,
        "iterations": iters,
    }
    augmented = {
        "submit_time": f"arrival_time x {time_unit:g} s (unit undocumented in Synergy)",
        "duration": f"num_iters x seconds_per_iteration ({seconds_per_iteration!r}; Synergy's per-model "
        "iteration times are not in its data files)",
    }
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
    "Synergy example trace (headerless job_id,model,arrival,num_iters,gpu_demand)",
    read,
    options=("time_unit", "seconds_per_iteration"),
)
