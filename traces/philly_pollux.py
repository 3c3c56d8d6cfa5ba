"""Reader for the processed Philly job table of the Pollux (OSDI'21) artifact.

Columns ``timestamp,duration,num_gpus,gpu_time,cluster``: ``timestamp`` is a wall-clock string
``YYYY-MM-DD HH:MM:SS`` (taken as the submission time, as Pollux's workload generator does),
``duration`` in seconds, ``num_gpus``, ``gpu_time`` (= duration x num_gpus, checked) and ``cluster``
(the Philly VC hash). The file has no job id: ``job_id`` is the 0-based data row number, which is
stable because the file is fixed. Rows are not sorted in the file; the workload is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlsched_gym.traces._base import Reader, RowChecker, finish, read_delimited
from dlsched_gym.workload import Workload

FORMAT = "philly-pollux"
COLUMNS = ("timestamp", "duration", "num_gpus", "gpu_time", "cluster")
META = {
    "source": "petuum/adaptdl@c793c7089bd307462686339d29707925c461f9a9 (osdi21-artifact) "
    "simulator/traces/philly.csv, derived from msr-fiddle/philly-traces",
    "license": "CC BY 4.0 (Philly data); artifact repository Apache-2.0",
    "citation": "Jeon et al., USENIX ATC 2019 (Philly trace); processed by Qiao et al., Pollux, OSDI 2021",
}


def read(
    path: Path, *, lenient: bool = False, drop_invalid: bool = False, name: str | None = None
) -> Workload:
    """Read the Pollux-processed Philly table (``philly.csv``, optionally gzip'd)."""
    frame = read_delimited(path, format_name=FORMAT, required=COLUMNS)
    checker = RowChecker(path, frame, lenient=lenient, first_line=2)
    submit = checker.timestamp("timestamp", fmt="%Y-%m-%d %H:%M:%S")
    duration = checker.number("duration", minimum=0)
    gpus = checker.number("num_gpus", integer=True, minimum=1)
    gpu_time = checker.number("gpu_time", minimum=0)
    vc = checker.text("cluster")
    mismatch = ~np.isclose(gpu_time, duration * gpus, rtol=1e-6, atol=1e-6)
    checker.flag(mismatch, "gpu_time", "duration x num_gpus")
    checker.exclude(duration == 0, "zero duration")
    columns = {
        "job_id": np.arange(len(frame)).astype(str),
        "submit_time": submit,
        "duration": duration,
        "num_gpus": gpus,
        "vc": vc,
    }
    return finish(
        columns,
        checker,
        path,
        name=name or "philly",
        drop_invalid=drop_invalid,
        meta=META,
        attrs={"format": FORMAT, "rules": {"job_id": "0-based data row number in the file"}},
    )


READER = Reader(
    FORMAT,
    "Philly job table processed by Pollux (timestamp,duration,num_gpus,gpu_time,cluster)",
    read,
    header=COLUMNS,
)
