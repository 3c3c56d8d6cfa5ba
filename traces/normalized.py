"""Reader for tables already in the normalized schema (:data:`dlsched_gym.workload.SCHEMA`).

CSV (with a header) or parquet. At least ``job_id, submit_time, duration, num_gpus``; the other
schema columns are optional (their defaults apply) and any other column is an error. Validation is
:func:`~dlsched_gym.workload.normalize`'s: a bad value raises
:class:`~dlsched_gym.errors.WorkloadError` naming the file, row and column; ``lenient=True`` (or
``drop_invalid=True``) drops such rows instead, counted in ``attrs["dropped"]``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlsched_gym.errors import TraceFormatError
from dlsched_gym.traces._base import Reader
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
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise TraceFormatError(f"{path}: cannot read a {FORMAT} table: {exc}") from exc
    return normalize(
        table,
        name=name or path.stem.removesuffix(".csv"),
        where=str(path),
        drop_invalid=lenient or drop_invalid,
        attrs={"format": FORMAT, "path": str(path)},
    )


READER = Reader(
    FORMAT,
    "a table in the normalized schema (CSV with header, or parquet)",
    read,
    suffixes=(".parquet",),
    header=("job_id", "submit_time", "duration", "num_gpus"),
)
