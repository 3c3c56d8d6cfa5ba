"""Reader for the Alibaba PAI 2020 GPU trace (alibaba/clusterdata, ``cluster-trace-gpu-v2020``).

Two headerless CSV tables are joined on ``job_name`` (column lists from the release's ``.header``
files):

- ``pai_job_table.csv``: ``job_name,inst_id,user,status,start_time,end_time`` (``start_time`` is the
  job's submission, seconds);
- ``pai_task_table.csv``: ``job_name,task_name,inst_num,status,start_time,end_time,plan_cpu,plan_mem,
  plan_gpu,gpu_type`` (``plan_gpu`` is the GPU request per instance in percent: 100 = one GPU).

Rules (recorded in ``attrs["rules"]``):

- ``submit_time``: the job's ``start_time``;
- ``duration``: the latest task ``end_time`` minus the earliest task ``start_time``;
- ``num_gpus``: ``ceil(sum(inst_num * plan_gpu) / 100)``: PAI shares GPUs fractionally, the schema
  counts whole GPUs, so fractional totals are rounded up (their number is in
  ``attrs["fractional_gpu_jobs"]``);
- ``gpu_type``: the tasks' ``gpu_type`` when they agree, else ``""``.

Jobs with no GPU request, no task rows, an unfinished task (empty ``end_time``) or zero duration are
left out and counted in ``attrs["excluded"]``. A task that ends before it starts is malformed.

``path`` is the folder holding both tables, or the job table (the task table is then
``pai_task_table.csv`` beside it unless ``task_table=`` names it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dlsched_gym.errors import TraceFormatError
from dlsched_gym.traces._base import MAX_INTEGER, Reader, RowChecker, finish, read_delimited
from dlsched_gym.workload import Workload

FORMAT = "alibaba-pai-2020"
JOB_COLUMNS = ("job_name", "inst_id", "user", "status", "start_time", "end_time")
TASK_COLUMNS = (
    "job_name",
    "task_name",
    "inst_num",
    "status",
    "start_time",
    "end_time",
    "plan_cpu",
    "plan_mem",
    "plan_gpu",
    "gpu_type",
)
META = {
    "source": "alibaba/clusterdata cluster-trace-gpu-v2020: pai_job_table, pai_task_table",
    "license": "CC BY 4.0",
    "citation": "Weng et al., MLaaS in the Wild: Workload Analysis and Scheduling in Large-Scale "
    "Heterogeneous GPU Clusters, NSDI 2022",
}


def _locate(path: Path, task_table: str | Path | None) -> tuple[Path, Path]:
    if path.is_dir():
        job, task = path / "pai_job_table.csv", path / "pai_task_table.csv"
    else:
        job, task = path, path.with_name("pai_task_table.csv")
    if task_table is not None:
        task = Path(task_table)
    for p in (job, task):
        if not p.is_file():
            raise TraceFormatError(f"{path}: {FORMAT} needs {p.name} (expected at {p})")
    return job, task


def read(
    path: Path,
    *,
    lenient: bool = False,
    drop_invalid: bool = False,
    name: str | None = None,
    task_table: str | Path | None = None,
) -> Workload:
    """Read the PAI 2020 job and task tables (see the module docstring for the rules)."""
    job_path, task_path = _locate(path, task_table)
    jobs = read_delimited(job_path, format_name=f"{FORMAT} job table", columns=JOB_COLUMNS)
    tasks = read_delimited(task_path, format_name=f"{FORMAT} task table", columns=TASK_COLUMNS)

    tcheck = RowChecker(task_path, tasks, lenient=lenient, first_line=1)
    t_job = tcheck.text("job_name")
    inst = tcheck.number("inst_num", minimum=0, allow_missing=True)
    plan_gpu = tcheck.number("plan_gpu", minimum=0, allow_missing=True)
    t_start = tcheck.number("start_time", minimum=0, allow_missing=True)
    t_end = tcheck.number("end_time", minimum=0, allow_missing=True)
    tcheck.flag(t_end < t_start, "end_time", "a time >= the task's start_time")
    gtype = tcheck.text("gpu_type", required=False)
    ok = tcheck.keep()
    with np.errstate(over="ignore"):  # a huge request overflows to inf, caught as too many GPUs below
        task_gpus = np.nan_to_num(inst) * np.nan_to_num(plan_gpu)
    per_task = pd.DataFrame(
        {
            "job": t_job[ok],
            "gpu": task_gpus[ok],
            "start": t_start[ok],
            "end": t_end[ok],
            "unfinished": np.isnan(t_end)[ok],
            "gtype": gtype[ok],
        }
    )
    grouped = per_task.groupby("job", sort=False)
    agg = pd.DataFrame(
        {
            "gpu": grouped["gpu"].sum(),
            "start": grouped["start"].min(),
            "end": grouped["end"].max(),
            "unfinished": grouped["unfinished"].any(),
            "gtype": grouped["gtype"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else ""),
        }
    )

    check = RowChecker(job_path, jobs, lenient=lenient, first_line=1)
    job_id = check.text("job_name")
    submit = check.number("start_time", minimum=0)
    status = check.text("status")
    user = check.text("user", required=False)
    joined = agg.reindex(job_id)
    has_tasks = joined["gpu"].notna().to_numpy()
    total_gpu = joined["gpu"].fillna(0).to_numpy()
    duration = (joined["end"] - joined["start"]).to_numpy()
    check.exclude(~has_tasks, "no rows in pai_task_table")
    check.exclude(total_gpu <= 0, "CPU-only job (no plan_gpu)")
    check.exclude(joined["unfinished"].fillna(False).to_numpy(dtype=bool), "unfinished task (no end_time)")
    check.exclude(~(duration > 0), "zero duration")
    gpus = np.ceil(np.round(total_gpu / 100, 9))
    check.flag(gpus > MAX_INTEGER, "job_name", "a job whose tasks ask for at most 2**53 GPUs in all "
               "(sum of inst_num x plan_gpu / 100)", values=total_gpu / 100)
    fractional = int((check.keep() & (gpus != total_gpu / 100)).sum())
    columns = {
        "job_id": job_id,
        "submit_time": submit,
        "duration": duration,
        "num_gpus": gpus,
        "user": user,
        "status": status,
        "gpu_type": joined["gtype"].fillna("").to_numpy(),
    }
    rules = {
        "duration": "latest task end_time - earliest task start_time",
        "num_gpus": "ceil(sum(inst_num * plan_gpu) / 100)",
    }
    attrs = {
        "format": FORMAT,
        "rules": rules,
        "fractional_gpu_jobs": fractional,
        "task_table": str(task_path),
    }
    if tcheck.skipped:
        attrs["skipped_tasks"] = dict(tcheck.skipped)
    return finish(
        columns, check, job_path, name=name or "pai-2020", drop_invalid=drop_invalid, meta=META, attrs=attrs
    )


READER = Reader(
    FORMAT,
    "Alibaba PAI 2020 pai_job_table.csv + pai_task_table.csv (headerless)",
    read,
    options=("task_table",),
    suffixes=("pai_job_table.csv",),
)
