"""Reader for Philly's raw ``cluster_job_log`` (JSON), from ``trace-data.tar.gz`` of msr-fiddle/philly-traces.

The file is one JSON array; each element is a job::

    {"status": "Pass", "vc": "6214e9", "jobid": "application_1506638472019_10238", "user": "...",
     "submitted_time": "2017-10-05 13:51:39",
     "attempts": [{"start_time": "2017-10-05 13:51:44", "end_time": "2017-10-05 13:56:10",
                   "detail": [{"ip": "m192", "gpus": ["gpu0", "gpu1"]}]}]}

Rules (documented choices, recorded in ``attrs["rules"]``):

- ``duration``: the sum over attempts of ``end_time - start_time`` (the time the job held GPUs; the
  gaps between retries are queueing, not run time);
- ``num_gpus``: the most GPUs any attempt held (``len(gpus)`` summed over the attempt's ``detail``);
- ``status``: Pass / Killed / Failed as recorded.

Jobs that never started (no attempts), whose last attempt has no ``end_time`` (still running when the
log ends; ``null`` or ``"None"``), that held no GPU, or whose run time is zero are left out and counted
in ``attrs["excluded"]``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlsched_gym.errors import TraceFormatError
from dlsched_gym.traces._base import READ_ERRORS, Reader, RowChecker, finish, open_bytes
from dlsched_gym.workload import Workload

FORMAT = "philly-job-log"
META = {
    "source": "msr-fiddle/philly-traces, trace-data.tar.gz: cluster_job_log",
    "license": "CC BY 4.0",
    "citation": "Jeon et al., Analysis of Large-Scale Multi-Tenant GPU Clusters for DNN Training "
    "Workloads, USENIX ATC 2019",
}
FIELDS = ("jobid", "vc", "user", "status", "submitted_time", "attempts")
_NO_END = (None, "None", "")


def _attempt_seconds(attempts: Any) -> tuple[float, int, str | None, str, Any]:
    """(run seconds, max GPUs, problem field, expected, got) for one job's attempts list."""
    if not isinstance(attempts, list):
        return np.nan, 0, "attempts", "a list of attempts", attempts
    total, gpus = 0.0, 0
    for k, att in enumerate(attempts):
        where = f"attempts[{k}]"
        if not isinstance(att, dict):
            return np.nan, 0, where, "an object with start_time, end_time, detail", att
        for key in ("start_time", "end_time", "detail"):
            if key not in att:
                return np.nan, 0, f"{where}.{key}", "a value", None
        detail = att["detail"]
        if not isinstance(detail, list) or not all(
            isinstance(d, dict) and isinstance(d.get("gpus"), list) and "ip" in d for d in detail
        ):
            return np.nan, 0, f"{where}.detail", "a list of {ip, gpus: [...]}", detail
        gpus = max(gpus, sum(len(d["gpus"]) for d in detail))
        if att["end_time"] in _NO_END:
            if k == len(attempts) - 1:
                return -1.0, gpus, None, "", None  # unfinished: excluded, not malformed
            return np.nan, 0, f"{where}.end_time", "a timestamp (only the last attempt may lack one)", None
        try:
            start = dt.datetime.fromisoformat(str(att["start_time"]))
        except ValueError:
            return (
                np.nan,
                0,
                f"{where}.start_time",
                "a timestamp like '2017-10-05 13:51:44'",
                att["start_time"],
            )
        try:
            end = dt.datetime.fromisoformat(str(att["end_time"]))
        except ValueError:
            return np.nan, 0, f"{where}.end_time", "a timestamp like '2017-10-05 13:51:44'", att["end_time"]
        if (start.tzinfo is None) != (end.tzinfo is None):
            return (
                np.nan,
                0,
                f"{where}.end_time",
                f"a timestamp {'without' if start.tzinfo is None else 'with'} a UTC offset, like "
                f"start_time {att['start_time']!r}",
                att["end_time"],
            )
        if end < start:
            return (
                np.nan,
                0,
                f"{where}.end_time",
                f"a time after start_time {att['start_time']!r}",
                att["end_time"],
            )
        total += (end - start).total_seconds()
    return total, gpus, None, "", None


def read(
    path: Path, *, lenient: bool = False, drop_invalid: bool = False, name: str | None = None
) -> Workload:
    """Read a Philly ``cluster_job_log`` JSON file (see the module docstring for the rules)."""
    try:
        with open_bytes(path) as fh:
            jobs = json.load(fh)
    except json.JSONDecodeError as exc:
        raise TraceFormatError(
            f"{path}: not a {FORMAT} file (invalid or truncated JSON at line {exc.lineno}, "
            f"column {exc.colno}: {exc.msg})"
        ) from exc
    except (*READ_ERRORS, UnicodeDecodeError) as exc:
        raise TraceFormatError(f"{path}: cannot read {FORMAT} file: {exc}") from exc
    except RecursionError as exc:
        raise TraceFormatError(f"{path}: not a {FORMAT} file: JSON nested too deeply") from exc
    if not isinstance(jobs, list):
        raise TraceFormatError(
            f"{path}: not a {FORMAT} file: expected a JSON array of jobs, got {type(jobs).__name__}"
        )
    n = len(jobs)
    raw = {f: np.full(n, np.nan, dtype=object) for f in FIELDS if f != "attempts"}
    seconds = np.full(n, np.nan)
    gpus = np.zeros(n, dtype=np.int64)
    problems: list[tuple[int, str, str, Any]] = []
    for i, job in enumerate(jobs):
        if not isinstance(job, dict):
            problems.append((i, "job", f"a JSON object with keys {list(FIELDS)}", job))
            continue
        for f in raw:
            value = job.get(f)
            raw[f][i] = np.nan if value is None else str(value)
        if "attempts" not in job:
            problems.append((i, "attempts", "a list of attempts", None))
            continue
        seconds[i], gpus[i], field, expected, got = _attempt_seconds(job["attempts"])
        if field is not None:
            problems.append((i, field, expected, got))
    frame = pd.DataFrame(raw)
    checker = RowChecker(path, frame, lenient=lenient, first_line=None)
    groups: dict[tuple[str, str], list[tuple[int, Any]]] = {}
    for i, field, expected, got in problems:  # in row order, so the first group holds the first row
        groups.setdefault((field, expected), []).append((i, got))
    for (field, expected), rows in groups.items():
        mask = np.zeros(n, dtype=bool)
        values = np.empty(n, dtype=object)
        for i, got in rows:
            mask[i], values[i] = True, got
        checker.flag(mask, field, expected, values)
    job_id = checker.text("jobid")
    submit = checker.timestamp("submitted_time", fmt="%Y-%m-%d %H:%M:%S")
    status = checker.text("status")
    vc = checker.text("vc", required=False)
    user = checker.text("user", required=False)
    attempts_empty = np.array([isinstance(j, dict) and j.get("attempts") == [] for j in jobs], dtype=bool)
    checker.exclude(attempts_empty, "never started (no attempts)")
    checker.exclude(seconds == -1.0, "still running at the end of the log (last attempt has no end_time)")
    checker.exclude(gpus == 0, "held no GPU in any attempt")
    checker.exclude(seconds == 0.0, "zero run time")
    columns = {
        "job_id": job_id,
        "submit_time": submit,
        "duration": seconds,
        "num_gpus": gpus,
        "user": user,
        "vc": vc,
        "status": status,
    }
    rules = {
        "duration": "sum over attempts of end_time - start_time",
        "num_gpus": "most GPUs held by any attempt (len(gpus) summed over detail)",
    }
    return finish(
        columns,
        checker,
        path,
        name=name or path.stem,
        drop_invalid=drop_invalid,
        meta=META,
        attrs={"format": FORMAT, "rules": rules},
    )


READER = Reader(
    FORMAT,
    "Philly cluster_job_log (JSON array of jobs with attempts)",
    read,
    suffixes=("cluster_job_log", ".json", ".json.gz"),
)
