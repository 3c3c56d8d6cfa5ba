"""Reader for tables already in the normalized schema (:data:`dlsched_gym.workload.SCHEMA`).

CSV (with a header) or parquet. At least ``job_id, submit_time, duration, num_gpus``; the other
schema columns are optional (their defaults apply) and any other column is an error. Validation is
:func:`~dlsched_gym.workload.normalize`'s: a bad value raises
:class:`~dlsched_gym.errors.WorkloadError` naming the file, row and column; ``lenient=True`` (or
``drop_invalid=True``) drops such rows instead, counted in ``attrs["dropped"]``. Integer columns
reject values above 2**53 (they would overflow int64 or lose digits) the same way; a date or
duration column where the schema wants seconds is a :class:`~dlsched_gym.errors.TraceFormatError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from dlsched_gym.errors import TraceFormatError, WorkloadError
from dlsched_gym.traces._base import MAX_INTEGER, READ_ERRORS, Reader
from dlsched_gym.workload import SCHEMA, Workload, normalize

FORMAT = "normalized"
_TEXT = [c for c, (dtype, _, _) in SCHEMA.items() if dtype == "str"]


def read(
    path: Path, *, lenient: bool = False, drop_invalid: bool = False, name: str | None = None
) -> Workload:
    """Read a normalized-schema CSV or parquet file."""
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(
                path,
                dtype={c: str for c in _TEXT},
                keep_default_na=False,
                na_values={c: [""] for c in SCHEMA if c not in _TEXT},
            )
    except (*READ_ERRORS, ValueError, pd.errors.ParserError, pa.ArrowException) as exc:
        raise TraceFormatError(f"{path}: cannot read a {FORMAT} table: {exc}") from exc
    table, dropped = _check_numbers(table, path, drop=lenient or drop_invalid)
    attrs = {"format": FORMAT, "path": str(path)}
    if dropped:
        attrs["dropped"] = dropped
    return normalize(
        table,
        name=name or path.stem.removesuffix(".csv"),
        where=str(path),
        drop_invalid=lenient or drop_invalid,
        attrs=attrs,
    )


def _check_numbers(table: pd.DataFrame, path: Path, *, drop: bool) -> tuple[pd.DataFrame, dict[str, int]]:
    """What :func:`normalize` does not check: date/duration columns in numeric fields (an error) and
    integers above :data:`MAX_INTEGER` (an error naming the row, or dropped rows when ``drop``)."""
    keep = np.ones(len(table), dtype=bool)
    dropped: dict[str, int] = {}
    for column, (dtype, _, _) in SCHEMA.items():
        if dtype == "str" or column not in table.columns:
            continue
        values = table[column]
        if values.dtype.kind in "mM":
            raise TraceFormatError(
                f"{path}: column {column!r} holds {values.dtype} values; expected plain numbers "
                f"({SCHEMA[column][2]})"
            )
        if dtype != "int64":
            continue
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        big = (np.abs(np.nan_to_num(numbers)) > MAX_INTEGER) & keep
        if not big.any():
            continue
        problem = f"expected an integer <= 2**53 ({MAX_INTEGER})"
        if not drop:
            row = int(np.flatnonzero(big)[0])
            job = table["job_id"].iloc[row] if "job_id" in table.columns else "?"
            got = values.iloc[row]
            got = got.item() if isinstance(got, np.generic) else got  # 1e+300, not np.float64(1e+300)
            raise WorkloadError(
                f"{path}: row {row} (job_id {job!r}), column {column!r}: {problem}, got {got!r}"
            )
        dropped[f"{column}: {problem}"] = int(big.sum())
        keep &= ~big
    return (table if keep.all() else table[keep]), dropped


READER = Reader(
    FORMAT,
    "a table in the normalized schema (CSV with header, or parquet)",
    read,
    suffixes=(".parquet",),
    header=("job_id", "submit_time", "duration", "num_gpus"),
)
