"""The normalized job table every trace reader produces and the engine consumes.

One row per job, sorted by ``submit_time``; units are seconds and GPUs (see ``SCHEMA``). A
:class:`Workload` carries the table plus its provenance (name, source, license, citation) and a
record of every column that was synthesized rather than read from the trace.

Nothing here is silent: :func:`normalize` either returns a valid workload or raises
:class:`~dlsched_gym.errors.WorkloadError` naming the file, row and column, unless the caller asks
for ``drop_invalid=True``, in which case the dropped rows are counted by reason in
``workload.attrs["dropped"]``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from dlsched_gym.errors import WorkloadError

#: Column name -> (pandas dtype, default used when a trace lacks the column, meaning).
SCHEMA: dict[str, tuple[str, Any, str]] = {
    "job_id": ("str", None, "unique within the workload"),
    "submit_time": ("float64", None, "seconds since the trace's first submission"),
    "duration": ("float64", None, "run time (s) on the requested allocation of the reference GPU"),
    "num_gpus": ("int64", None, "GPUs requested (gang)"),
    "user": ("str", "", "submitter, where the trace has one"),
    "vc": ("str", "", "virtual cluster, where the trace has one"),
    "status": ("str", "", "trace outcome where known"),
    "model": ("str", "", "DL model name"),
    "batch_size": ("int64", 0, "global batch size (0 = unknown)"),
    "iterations": ("float64", math.nan, "total work in iterations (NaN = unknown)"),
    "deadline": ("float64", math.nan, "absolute deadline (s), NaN if none"),
    "min_gpus": ("int64", None, "smallest allocation an elastic job accepts (= num_gpus if rigid)"),
    "max_gpus": ("int64", None, "largest allocation an elastic job accepts (= num_gpus if rigid)"),
    "gpu_type": ("str", "", "requested GPU type, '' for any"),
    "priority": ("int64", 0, "larger is more important"),
    "region": ("str", "", "home region (geo-distributed scheduling)"),
    "dataset": ("str", "", "dataset the job reads (geo-distributed scheduling)"),
}

#: Columns every input table must have; the others get their documented defaults.
REQUIRED = ("job_id", "submit_time", "duration", "num_gpus")


@dataclasses.dataclass
class Workload:
    """A validated job table plus provenance.

    Attributes:
        table: the normalized table (columns in ``SCHEMA`` order, sorted by ``submit_time``,
            index 0..n-1).
        name: short name (e.g. ``"philly"``).
        source: where the data came from (repository, commit, file).
        license: the data license.
        citation: what to cite when using it.
        attrs: free-form metadata; ``attrs["augmented"]`` maps each synthesized column to the rule
            that produced it, ``attrs["dropped"]`` counts rows dropped by reason.
    """

    table: pd.DataFrame
    name: str = "workload"
    source: str = ""
    license: str = ""
    citation: str = ""
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        span = self.span_seconds
        return f"Workload({self.name!r}, {len(self)} jobs, span {span / 86400:.1f} days)"

    @property
    def span_seconds(self) -> float:
        """Time from the first to the last submission, in seconds."""
        if len(self.table) == 0:
            return 0.0
        col = self.table["submit_time"]
        return float(col.iloc[-1] - col.iloc[0])

    @property
    def max_gpus_requested(self) -> int:
        """The largest gang (``max_gpus``) any job may ask for."""
        return int(self.table["max_gpus"].max()) if len(self.table) else 0

    def replace(self, table: pd.DataFrame, **changes: Any) -> Workload:
        """A copy with a new table (re-normalized) and, optionally, new metadata fields."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["attrs"] = dict(self.attrs)
        fields.update(changes)
        fields["table"] = normalize(table, name=fields["name"]).table
        return Workload(**fields)

    def window(self, start: int, num_jobs: int) -> Workload:
        """Jobs ``start .. start+num_jobs-1`` (in submission order), times shifted to start at 0."""
        if start < 0 or num_jobs <= 0 or start >= len(self):
            raise WorkloadError(
                f"window(start={start}, num_jobs={num_jobs}) is outside the workload "
                f"{self.name!r} of {len(self)} jobs"
            )
        sub = self.table.iloc[start : start + num_jobs].copy()
        shift = sub["submit_time"].iloc[0]
        sub["submit_time"] -= shift
        sub.loc[:, "deadline"] = sub["deadline"] - shift
        out = self.replace(sub)
        out.attrs["window"] = {"start": start, "num_jobs": len(sub)}
        return out

    def scale_load(self, factor: float) -> Workload:
        """Scale the arrival rate by ``factor`` (inter-arrival times divided by it).

        ``factor=2`` packs the same jobs into half the time. Deadlines keep their offset from the
        job's submission.
        """
        if not (factor > 0 and math.isfinite(factor)):
            raise WorkloadError(f"load factor must be a positive finite number, got {factor!r}")
        sub = self.table.copy()
        rel_deadline = sub["deadline"] - sub["submit_time"]
        sub["submit_time"] = sub["submit_time"] / factor
        sub["deadline"] = sub["submit_time"] + rel_deadline
        out = self.replace(sub)
        out.attrs["load_scale"] = self.attrs.get("load_scale", 1.0) * factor
        return out

    def select(self, mask: np.ndarray | pd.Series, *, label: str) -> Workload:
        """The jobs where ``mask`` is true (e.g. one VC), times shifted to start at 0."""
        sub = self.table[np.asarray(mask, dtype=bool)].copy()
        if len(sub) == 0:
            raise WorkloadError(f"selection {label!r} of workload {self.name!r} is empty")
        shift = sub["submit_time"].iloc[0]
        sub["submit_time"] -= shift
        sub["deadline"] -= shift
        return self.replace(sub, name=f"{self.name}/{label}")


def _fail(where: str, row: int | None, column: str, problem: str, table: pd.DataFrame) -> None:
    loc = f"{where}: " if where else ""
    if row is None:
        raise WorkloadError(f"{loc}column {column!r}: {problem}")
    job = table["job_id"].iloc[row] if "job_id" in table.columns else "?"
    raise WorkloadError(f"{loc}row {row} (job_id {job!r}), column {column!r}: {problem}")


def _numeric(
    table: pd.DataFrame, column: str, where: str, *, integer: bool, allow_nan: bool, drop: bool,
    dropped: dict,
) -> tuple[pd.Series, np.ndarray]:
    """Parse ``column`` as numbers; return the values and a mask of rows that failed."""
    raw = table[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = (values.isna() & raw.notna()).to_numpy().copy()
    if not allow_nan:
        bad |= raw.isna().to_numpy()
    if integer:
        frac = values.notna().to_numpy() & (np.mod(values.fillna(0).to_numpy(), 1) != 0)
        bad |= frac
    if bad.any():
        if not drop:
            row = int(np.flatnonzero(bad)[0])
            kind = "an integer" if integer else "a number"
            _fail(where, row, column, f"expected {kind}, got {raw.iloc[row]!r}", table)
        dropped[f"non-numeric {column}"] = int(bad.sum())
    return values, bad


def normalize(
    table: pd.DataFrame,
    *,
    name: str = "workload",
    where: str = "",
    drop_invalid: bool = False,
    max_gpus_allowed: int | None = None,
    **meta: Any,
) -> Workload:
    """Validate ``table`` against ``SCHEMA`` and return a :class:`Workload`.

    Args:
        table: at least the ``REQUIRED`` columns; unknown extra columns are an error (a typo in a
            column name must not silently become a default).
        name: the workload's name.
        where: the file (or other origin) named in error messages.
        drop_invalid: skip rows that fail validation instead of raising; the counts per reason are
            kept in ``attrs["dropped"]``.
        max_gpus_allowed: if given, a job asking for more GPUs is invalid (e.g. larger than the
            cluster).
        **meta: ``source``, ``license``, ``citation``, ``attrs`` for the Workload.

    Raises:
        WorkloadError: naming the file, row and column, and what was expected.
    """
    if not isinstance(table, pd.DataFrame):
        raise WorkloadError(f"{where or name}: expected a pandas DataFrame, got {type(table)}")
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        _fail(where, None, missing[0], f"required column missing (have {list(table.columns)})", table)
    unknown = [c for c in table.columns if c not in SCHEMA]
    if unknown:
        _fail(where, None, unknown[0], f"unknown column; expected a subset of {list(SCHEMA)}", table)

    t = table.reset_index(drop=True)
    dropped: dict[str, int] = {}
    bad = np.zeros(len(t), dtype=bool)
    cols: dict[str, Any] = {}

    def check(mask: np.ndarray, column: str, problem: str) -> None:
        nonlocal bad
        mask = mask & ~bad
        if mask.any():
            if not drop_invalid:
                row = int(np.flatnonzero(mask)[0])
                _fail(where, row, column, f"{problem}, got {t[column].iloc[row]!r}", t)
            dropped[f"{column}: {problem}"] = int(mask.sum())
            bad |= mask

    for column, (dtype, default, _) in SCHEMA.items():
        if dtype == "str":
            if column in t.columns:
                col = t[column]
                if column == "job_id":
                    check(col.isna().to_numpy(), column, "expected a job id")
                cols[column] = col.fillna("").astype(str)
            else:
                cols[column] = None if default is None else default
        elif column in t.columns:
            optional_nan = isinstance(default, float) and math.isnan(default)
            values, b = _numeric(
                t, column, where, integer=dtype == "int64", allow_nan=optional_nan,
                drop=drop_invalid, dropped=dropped,
            )
            bad |= b
            cols[column] = values
        else:
            cols[column] = default

    if cols["job_id"] is None:
        cols["job_id"] = t["job_id"].astype(str)
    submit = cols["submit_time"].to_numpy(dtype=float, na_value=np.nan)
    duration = cols["duration"].to_numpy(dtype=float, na_value=np.nan)
    gpus = cols["num_gpus"].to_numpy(dtype=float, na_value=np.nan)
    check(~np.isfinite(submit) | (submit < 0), "submit_time", "expected a finite time >= 0 s")
    check(~np.isfinite(duration) | (duration <= 0), "duration", "expected a finite duration > 0 s")
    check(~np.isfinite(gpus) | (gpus < 1), "num_gpus", "expected an integer >= 1")
    if max_gpus_allowed is not None:
        check(gpus > max_gpus_allowed, "num_gpus", f"more GPUs than the cluster has ({max_gpus_allowed})")

    n = len(t)
    out = pd.DataFrame(index=range(n))
    for column in SCHEMA:
        value = cols[column]
        if value is None:  # min/max_gpus default to num_gpus
            value = cols["num_gpus"]
        if isinstance(value, pd.Series):
            value = value.to_numpy()
        out[column] = value if np.ndim(value) else [value] * n if n else []
    for column in ("min_gpus", "max_gpus"):
        vals = pd.to_numeric(out[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        check(~np.isfinite(vals) | (vals < 1), column, "expected an integer >= 1")
    mins = pd.to_numeric(out["min_gpus"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    maxs = pd.to_numeric(out["max_gpus"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    check((mins > gpus) | (gpus > maxs), "num_gpus", "expected min_gpus <= num_gpus <= max_gpus")
    dup = out["job_id"].duplicated().to_numpy()
    check(dup, "job_id", "duplicate job id")

    if bad.any():
        out = out[~bad]
    for column, (dtype, _, _) in SCHEMA.items():
        if dtype == "str":
            out[column] = out[column].astype(str)
        else:
            out[column] = out[column].astype(dtype)
    out = out.sort_values("submit_time", kind="stable").reset_index(drop=True)

    attrs = dict(meta.pop("attrs", {}) or {})
    if dropped:
        attrs["dropped"] = {**attrs.get("dropped", {}), **dropped}
    return Workload(table=out, name=name, attrs=attrs, **meta)


def from_records(records: list[Mapping[str, Any]] | pd.DataFrame, **kwargs: Any) -> Workload:
    """Build a workload from a list of dicts (handy in tests and notebooks)."""
    frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    if "job_id" not in frame.columns and len(frame):
        frame = frame.assign(job_id=[str(i) for i in range(len(frame))])
    return normalize(frame, **kwargs)
