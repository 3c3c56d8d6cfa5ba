"""Reader for Acme ``trace_seren.csv`` / ``trace_kalos.csv`` (InternLM/AcmeTrace, NSDI'24).

Columns (AcmeTrace README): ``job_id, user, node_num, gpu_num, cpu_num, type, state, submit_time,
start_time, end_time, duration, queue, gpu_time``; Kalos adds ``mem_per_pod_GB, shared_mem_per_pod,
fail_time, stop_time`` (read, not used). Times carry a UTC offset (``2023-03-01 08:00:00+08:00``);
``duration`` and ``queue`` are seconds. The job ``type`` (e.g. Pretrain, Evaluation) has no schema
column; its counts are kept in ``attrs["job_types"]``.

CPU-only jobs (``gpu_num == 0``) and zero-duration jobs are left out and counted in
``attrs["excluded"]``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlsched_gym.traces._base import Reader, RowChecker, finish, read_delimited
from dlsched_gym.workload import Workload

FORMAT = "acme"
COLUMNS = (
    "job_id",
    "user",
    "node_num",
    "gpu_num",
    "cpu_num",
    "type",
    "state",
    "submit_time",
    "start_time",
    "end_time",
    "duration",
    "queue",
    "gpu_time",
)
META = {
    "source": "InternLM/AcmeTrace, data/job_trace/trace_<cluster>.csv",
    "license": "CC BY 4.0",
    "citation": "Hu et al., Characterization of Large Language Model Development in the Datacenter, "
    "NSDI 2024",
}


def read(
    path: Path, *, lenient: bool = False, drop_invalid: bool = False, name: str | None = None
) -> Workload:
    """Read an Acme job trace (GPU jobs only; see the module docstring)."""
    frame = read_delimited(path, format_name=FORMAT, required=COLUMNS)
    checker = RowChecker(path, frame, lenient=lenient, first_line=2)
    job_id = checker.text("job_id")
    gpus = checker.number("gpu_num", integer=True, minimum=0)
    submit = checker.timestamp("submit_time", fmt=None)
    duration = checker.number("duration", minimum=0)
    state = checker.text("state")
    kind = checker.text("type", required=False)
    checker.exclude(gpus == 0, "CPU-only job (gpu_num 0)")
    checker.exclude(duration == 0, "zero duration")
    columns = {
        "job_id": job_id,
        "submit_time": submit,
        "duration": duration,
        "num_gpus": gpus,
        "user": checker.text("user", required=False),
        "status": state,
    }
    types = pd.Series(kind[checker.keep()]).value_counts().to_dict()
    return finish(
        columns,
        checker,
        path,
        name=name or path.stem,
        drop_invalid=drop_invalid,
        meta=META,
        attrs={"format": FORMAT, "job_types": {str(k): int(v) for k, v in types.items()}},
    )


READER = Reader(FORMAT, "Acme trace_seren.csv / trace_kalos.csv (NSDI'24)", read, header=COLUMNS)
