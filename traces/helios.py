"""Reader for Helios ``cluster_log.csv`` (S-Lab-System-Group/HeliosData, one file per cluster).

Columns (README of HeliosData): ``job_id, user, vc, gpu_num, cpu_num, node_num, state, submit_time,
start_time, end_time, duration, queue``; times ``YYYY-MM-DD HH:MM:SS``, ``duration`` and ``queue`` in
seconds, ``state`` COMPLETED / CANCELLED / FAILED / TIMEOUT / NODE_FAIL.

CPU-only jobs (``gpu_num == 0``) and jobs with zero duration (cancelled before they started) are left
out and counted in ``attrs["excluded"]``. ``start_time``/``end_time`` may be empty for jobs that never
ran; they are not used (``duration`` is).
"""

from __future__ import annotations

from pathlib import Path

from dlsched_gym.traces._base import Reader, RowChecker, finish, read_delimited
from dlsched_gym.workload import Workload

FORMAT = "helios"
COLUMNS = (
    "job_id",
    "user",
    "vc",
    "gpu_num",
    "cpu_num",
    "node_num",
    "state",
    "submit_time",
    "start_time",
    "end_time",
    "duration",
    "queue",
)
META = {
    "source": "S-Lab-System-Group/HeliosData, data.zip: <cluster>/cluster_log.csv",
    "license": "CC BY 4.0",
    "citation": "Hu et al., Characterization and Prediction of Deep Learning Workloads in Large-Scale "
    "GPU Datacenters, SC 2021",
}


def read(
    path: Path, *, lenient: bool = False, drop_invalid: bool = False, name: str | None = None
) -> Workload:
    """Read a Helios ``cluster_log.csv`` (GPU jobs only; see the module docstring)."""
    frame = read_delimited(path, format_name=FORMAT, required=COLUMNS)
    checker = RowChecker(path, frame, lenient=lenient, first_line=2)
    job_id = checker.text("job_id")
    gpus = checker.number("gpu_num", integer=True, minimum=0)
    submit = checker.timestamp("submit_time", fmt="%Y-%m-%d %H:%M:%S")
    duration = checker.number("duration", minimum=0)
    state = checker.text("state")
    checker.exclude(gpus == 0, "CPU-only job (gpu_num 0)")
    checker.exclude(duration == 0, "zero duration")
    columns = {
        "job_id": job_id,
        "submit_time": submit,
        "duration": duration,
        "num_gpus": gpus,
        "user": checker.text("user", required=False),
        "vc": checker.text("vc", required=False),
        "status": state,
    }
    return finish(
        columns,
        checker,
        path,
        name=name or path.stem,
        drop_invalid=drop_invalid,
        meta=META,
        attrs={"format": FORMAT},
    )


READER = Reader(FORMAT, "Helios cluster_log.csv (SC'21)", read, header=COLUMNS)
