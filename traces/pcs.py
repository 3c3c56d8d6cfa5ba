"""Reader for the PCS (OSDI'24, TuftsNATLab/PCS) per-VC Philly traces ``traces/trace_<vc>.csv``.

Columns ``app_id,submit_time,service,num_jobs,sleep_time,model_name``: ``submit_time`` and ``service``
(the job's size: its service time on one GPU) in seconds, ``num_jobs`` the GPUs requested,
``sleep_time`` the gap to the previous arrival (redundant with ``submit_time``, not used),
``model_name`` a Gavel-style model (e.g. ``TransformerModel256``), kept verbatim as ``model``.
``duration`` = ``service / num_jobs`` (linear scaling: the trace has no speed-up curve) and
``app_id`` becomes the ``job_id``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlsched_gym.traces._base import Reader, RowChecker, finish, read_delimited
from dlsched_gym.workload import Workload

FORMAT = "pcs"
COLUMNS = ("app_id", "submit_time", "service", "num_jobs", "sleep_time", "model_name")
META = {
    "source": "TuftsNATLab/PCS@4ed6b2e45b31e9654359b8584caa5c54b381d3ef traces/trace_<vc>.csv "
    "(derived from the Philly trace)",
    "license": "MIT",
    "citation": "Bin Faisal et al., When will my ML Job finish? Toward providing Completion Time "
    "Estimates through Predictability-Centric Scheduling, OSDI 2024; Philly: Jeon et al., "
    "USENIX ATC 2019",
}


def read(
    path: Path, *, lenient: bool = False, drop_invalid: bool = False, name: str | None = None, vc: str = ""
) -> Workload:
    """Read one PCS trace file; ``vc`` labels its jobs (and prefixes their ids, ``<vc>-<app_id>``)."""
    frame = read_delimited(path, format_name=FORMAT, required=COLUMNS)
    checker = RowChecker(path, frame, lenient=lenient, first_line=2)
    app = checker.text("app_id")
    columns = {
        "job_id": [f"{vc}-{a}" for a in app] if vc else app,
        "submit_time": checker.number("submit_time", minimum=0),
        "duration": checker.number("service", minimum=0),  # 1-GPU service time; divided below
        "num_gpus": checker.number("num_jobs", integer=True, minimum=1),
        "model": checker.text("model_name"),
        "vc": vc,
    }
    checker.exclude(columns["duration"] == 0, "zero service time")
    # PCS's size is the 1-GPU service time (Bin Faisal et al., OSDI'24, section 3); the run time on
    # the requested GPUs assumes linear scaling, as the trace carries no speed-up curve.
    service, gpus = columns["duration"], columns["num_gpus"]  # gpus < 1 only in malformed rows
    columns["duration"] = np.divide(service, gpus, out=np.full(len(frame), np.nan), where=gpus >= 1)
    return finish(
        columns,
        checker,
        path,
        name=name or path.stem,
        drop_invalid=drop_invalid,
        meta=META,
        attrs={"format": FORMAT,
               "rules": {"duration": "service / num_jobs (service is the 1-GPU service time; "
                                     "linear scaling assumed)", "num_gpus": "num_jobs"}},
    )


READER = Reader(
    FORMAT,
    "PCS per-VC Philly trace CSV (app_id,submit_time,service,num_jobs,...)",
    read,
    options=("vc",),
    header=COLUMNS,
)
