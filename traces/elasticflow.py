"""Reader for ElasticFlow traces (microsoft/elasticflow-traces and the pkusys/ElasticFlow artifact).

One reader covers the three CSV layouts, which share ``job_id``, ``num_gpu`` and ``duration`` (s):

- raw (``data/raw-traces.tar.gz``): ``job_id,submission_time,duration,num_gpu``;
- augmented (``data/elasticflow-traces.tar.gz``): raw plus ``num_iteration,model_name,deadline,
  batch_size`` (synthetic, per the release README);
- artifact (``traces_for_ElasticFlow/*.csv``): ``job_id,submit_time,iteration,model_name,ddl,
  batch_size,num_gpu,duration`` and optionally ``real_iteration,real_duration,best_effort``.

``deadline``/``ddl`` is an absolute time on the submission clock. Columns ``real_iteration``,
``real_duration`` and ``best_effort`` are not used; their presence is noted in ``attrs["unused_columns"]``.
"""

from __future__ import annotations

from pathlib import Path

from dlsched_gym.errors import TraceFormatError
from dlsched_gym.traces._base import Reader, RowChecker, check_only_columns, finish, read_delimited
from dlsched_gym.workload import Workload

FORMAT = "elasticflow"
#: schema column -> accepted source column names
ALIASES = {
    "submit_time": ("submission_time", "submit_time"),
    "iterations": ("num_iteration", "iteration"),
    "deadline": ("deadline", "ddl"),
}
REQUIRED = ("job_id", "duration", "num_gpu")
OPTIONAL = ("model_name", "batch_size")
UNUSED = ("real_iteration", "real_duration", "best_effort")
ALLOWED = REQUIRED + OPTIONAL + UNUSED + sum(ALIASES.values(), ())
META = {
    "source": "microsoft/elasticflow-traces@277ed24d0e908c31a1c98145819e2e3853d8ac00",
    "license": "MIT",
    "citation": "Gu et al., ElasticFlow: An Elastic Serverless Training Platform for Distributed Deep "
    "Learning, ASPLOS 2023",
}


def _pick(path: Path, columns: list[str], schema_column: str, required: bool) -> str | None:
    found = [c for c in ALIASES[schema_column] if c in columns]
    if len(found) > 1:
        raise TraceFormatError(f"{path}: both {found} present; expected one column for {schema_column}")
    if not found and required:
        raise TraceFormatError(
            f"{path}: not an {FORMAT} file: missing column {' or '.join(ALIASES[schema_column])}; "
            f"found {columns}"
        )
    return found[0] if found else None


def read(
    path: Path, *, lenient: bool = False, drop_invalid: bool = False, name: str | None = None
) -> Workload:
    """Read an ElasticFlow trace CSV in any of its three layouts (see the module docstring)."""
    frame = read_delimited(path, format_name=FORMAT, required=REQUIRED)
    check_only_columns(path, frame, ALLOWED, FORMAT)
    cols = list(frame.columns)
    submit_col = _pick(path, cols, "submit_time", required=True)
    checker = RowChecker(path, frame, lenient=lenient, first_line=2)
    columns = {
        "job_id": checker.text("job_id"),
        "submit_time": checker.number(submit_col, minimum=0),
        "duration": checker.number("duration", minimum=0),
        "num_gpus": checker.number("num_gpu", integer=True, minimum=1),
    }
    iter_col = _pick(path, cols, "iterations", required=False)
    if iter_col:
        columns["iterations"] = checker.number(iter_col, minimum=0)
    ddl_col = _pick(path, cols, "deadline", required=False)
    if ddl_col:
        columns["deadline"] = checker.number(ddl_col, minimum=0)
    if "model_name" in cols:
        columns["model"] = checker.text("model_name")
    if "batch_size" in cols:
        columns["batch_size"] = checker.number("batch_size", integer=True, minimum=0)
    checker.exclude(columns["duration"] == 0, "zero duration")
    attrs = {"format": FORMAT}
    unused = [c for c in UNUSED if c in cols]
    if unused:
        attrs["unused_columns"] = unused
    return finish(
        columns, checker, path, name=name or path.stem, drop_invalid=drop_invalid, meta=META, attrs=attrs
    )


READER = Reader(
    FORMAT,
    "ElasticFlow trace CSV (raw, augmented or artifact layout)",
    read,
    header=("job_id", "duration", "num_gpu"),
)
