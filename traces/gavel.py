"""Reader for Gavel (OSDI'20, stanford-futuredata/gavel) job traces, and Gavel's throughput tables.

Tab-separated, no header. Two layouts, told apart by the number of fields:

- 7 fields (``traces/msr/seed=*/<vc>.trace``): ``job_type, command, num_steps_arg, needs_data_dir,
  total_steps, arrival_time, scale_factor``;
- 10 fields (``traces/physical_cluster/*.trace``): ``job_type, command, working_directory,
  num_steps_arg, needs_data_dir, total_steps, scale_factor, priority_weight, SLO, arrival_time``.

``job_type`` is e.g. ``ResNet-50 (batch size 64)``: ``model`` is the part before `` (batch size``,
``batch_size`` the number (0 for A3C and CycleGAN, which have none). ``iterations`` = ``total_steps``,
``num_gpus`` = ``scale_factor``, ``arrival_time`` in seconds. ``command``, ``priority_weight`` and
``SLO`` are not used.

The trace holds work (steps), not time, so ``duration`` is derived, as Gavel's simulator does, from
the isolated throughput (steps/s) of the job type at its scale factor on a reference worker type
(default ``v100``) in Gavel's ``simulation_throughputs.json``: ``duration = total_steps / throughput``.
Gavel measured scale factors 1, 2, 4 and 8 for some job types only; for a (job type, scale factor)
pair it did not measure, the throughput is extrapolated linearly from the largest measured scale
factor below it (``throughput(s) * scale_factor / s``). How many jobs needed that is recorded in
``attrs["augmented"]``.
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from dlsched_gym.errors import ConfigError, TraceFormatError
from dlsched_gym.traces._base import READ_ERRORS, Reader, RowChecker, finish, open_bytes, read_delimited
from dlsched_gym.workload import Workload

FORMAT = "gavel"
LAYOUTS = {
    7: (
        "job_type",
        "command",
        "num_steps_arg",
        "needs_data_dir",
        "total_steps",
        "arrival_time",
        "scale_factor",
    ),
    10: (
        "job_type",
        "command",
        "working_directory",
        "num_steps_arg",
        "needs_data_dir",
        "total_steps",
        "scale_factor",
        "priority_weight",
        "SLO",
        "arrival_time",
    ),
}
META = {
    "source": "stanford-futuredata/gavel@c4fa40097339e9608ab71fd64c8bdea96a5e4a4c traces/",
    "license": "MIT",
    "citation": "Narayanan et al., Heterogeneity-Aware Cluster Scheduling Policies for Deep Learning "
    "Workloads (Gavel), OSDI 2020",
}
_KEY = re.compile(r"^\('(?P<job_type>.+)', (?P<scale>\d+)\)$")
_BATCH = re.compile(r"^(?P<model>.+?) \(batch size (?P<batch>\d+)\)$")
#: Bundled isolated throughputs (worker_type, job_type, scale_factor, steps_per_second).
THROUGHPUT_FILE = "gavel_throughputs.parquet"


def parse_throughputs(path: Path) -> pd.DataFrame:
    """Isolated throughputs from a Gavel throughput JSON (``.json`` or ``.json.gz``).

    Returns a table ``worker_type, job_type, scale_factor, steps_per_second`` (the ``"null"`` entries:
    the job running alone; the co-location pairs are not kept).
    """
    try:
        with open_bytes(path) as fh:
            data = json.load(fh)
    except (*READ_ERRORS, ValueError, RecursionError) as exc:  # ValueError: bad JSON or encoding
        raise TraceFormatError(f"{path}: cannot read a Gavel throughput JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise TraceFormatError(
            f"{path}: expected a JSON object worker type -> {{job key: throughputs}}, "
            f"got {type(data).__name__}"
        )
    rows = []
    for worker, table in data.items():
        if not isinstance(table, dict):
            raise TraceFormatError(
                f"{path}: {worker}: expected an object job key -> throughputs, got {type(table).__name__}"
            )
        for key, entry in table.items():
            m = _KEY.match(key)
            tput = entry.get("null") if isinstance(entry, dict) else None
            if not m or not _is_rate(tput):
                raise TraceFormatError(
                    f"{path}: {worker}: key {key!r}: expected \"('<job type>', <scale>)\" "
                    f'with a "null" throughput (steps/s, a finite number >= 0), got {entry!r}'
                )
            rows.append((worker, m["job_type"], int(m["scale"]), float(tput)))
    if not rows:
        raise TraceFormatError(f"{path}: no throughputs; expected {{worker type: {{job key: {{\"null\": "
                               "steps/s}}}}}")
    return pd.DataFrame(rows, columns=["worker_type", "job_type", "scale_factor", "steps_per_second"])


def _is_rate(value: object) -> bool:
    """True for a finite number >= 0 (not a bool)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)


@cache
def _bundled_throughputs() -> pd.DataFrame:
    with resources.as_file(resources.files("dlsched_gym.traces").joinpath("data", THROUGHPUT_FILE)) as p:
        return pd.read_parquet(p)


def throughput_lookup(
    table: pd.DataFrame,
    worker_type: str,
    job_type: np.ndarray,
    scale: np.ndarray,
    *,
    source: str = "the throughput table",
) -> tuple[np.ndarray, np.ndarray]:
    """Steps/s of each (job type, scale factor) on ``worker_type``, and a mask of extrapolated ones.

    Unmeasured pairs use the largest measured scale factor ``s`` below the requested one, times
    ``scale / s``; job types with no measurement at all get NaN. ``source`` names the table in
    the error raised when it has no ``worker_type``.
    """
    sub = table[table["worker_type"] == worker_type]
    if sub.empty:
        raise ConfigError(
            f"worker_type {worker_type!r} is not in {source}; expected one of "
            f"{sorted(table['worker_type'].unique())}"
        )
    measured: dict[str, dict[int, float]] = {}
    for jt, sf, tput in sub[["job_type", "scale_factor", "steps_per_second"]].itertuples(index=False):
        measured.setdefault(jt, {})[int(sf)] = float(tput)
    out = np.full(len(job_type), np.nan)
    extrapolated = np.zeros(len(job_type), dtype=bool)
    for i, (jt, sf) in enumerate(zip(job_type, scale, strict=True)):
        per_scale = measured.get(jt)
        if not per_scale or not np.isfinite(sf):
            continue
        below = [s for s in per_scale if s <= sf]
        if not below:
            continue
        base = max(below)
        out[i] = per_scale[base] * sf / base
        extrapolated[i] = base != sf
    return out, extrapolated


def read(
    path: Path,
    *,
    lenient: bool = False,
    drop_invalid: bool = False,
    name: str | None = None,
    worker_type: str = "v100",
    throughputs: str | Path | None = None,
    vc: str = "",
) -> Workload:
    """Read a Gavel trace; ``throughputs`` is a Gavel throughput JSON (default: the bundled
    ``simulation_throughputs.json`` values); ``vc`` labels the jobs (ids become ``<vc>-<row>``)."""
    try:
        with open_bytes(path) as fh:
            first = fh.readline().decode("utf-8", errors="replace")
    except READ_ERRORS as exc:
        raise TraceFormatError(f"{path}: cannot read {FORMAT} file: {exc}") from exc
    nfields = first.rstrip("\r\n").count("\t") + 1
    if nfields not in LAYOUTS:
        raise TraceFormatError(
            f"{path}: line 1 has {nfields} tab-separated fields; a {FORMAT} trace has "
            + " or ".join(f"{n} ({', '.join(c)})" for n, c in LAYOUTS.items())
        )
    frame = read_delimited(path, format_name=FORMAT, sep="\t", columns=LAYOUTS[nfields])
    if throughputs is None:
        table, source = _bundled_throughputs(), f"the bundled {THROUGHPUT_FILE}"
    else:
        table, source = parse_throughputs(Path(throughputs)), str(throughputs)
    checker = RowChecker(path, frame, lenient=lenient, first_line=1)
    job_type = checker.text("job_type")
    steps = checker.number("total_steps", minimum=1)
    scale = checker.number("scale_factor", integer=True, minimum=1)
    arrival = checker.number("arrival_time", minimum=0)
    tput, extrapolated = throughput_lookup(table, worker_type, job_type, scale, source=source)
    known = sorted(table["job_type"].unique())
    checker.flag(
        np.isnan(tput) & np.isfinite(scale),
        "job_type",
        f"a job type with a {worker_type} throughput ({len(known)} known)",
    )
    checker.flag(
        tput == 0,
        "job_type",
        f"a job type that runs on {worker_type} at its scale factor (the throughput table says 0 steps/s)",
    )
    parts = [_BATCH.match(str(j)) for j in job_type]
    rows = np.arange(len(frame))
    columns = {
        "job_id": [f"{vc}-{r}" for r in rows] if vc else rows.astype(str),
        "submit_time": arrival,
        "duration": np.divide(steps, tput, out=np.full(len(frame), np.nan), where=tput > 0),
        "num_gpus": scale,
        "model": [m["model"] if m else str(j) for m, j in zip(parts, job_type, strict=True)],
        "batch_size": [int(m["batch"]) if m else 0 for m in parts],
        "iterations": steps,
        "vc": vc,
    }
    n_extra = int((extrapolated & checker.keep()).sum())
    augmented = {
        "duration": {
            "rule": f"total_steps / isolated throughput on {worker_type} at the job's scale factor (Gavel "
            "simulation_throughputs.json); unmeasured scale factors extrapolated linearly from the "
            "largest measured one below",
            "extrapolated_jobs": n_extra,
        }
    }
    return finish(
        columns,
        checker,
        path,
        name=name or path.stem,
        drop_invalid=drop_invalid,
        meta=META,
        attrs={"format": FORMAT, "augmented": augmented, "reference_worker_type": worker_type},
    )


READER = Reader(
    FORMAT,
    "Gavel job trace (tab-separated, 7 or 10 fields)",
    read,
    options=("worker_type", "throughputs", "vc"),
    suffixes=(".trace",),
)
