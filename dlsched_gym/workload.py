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
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dlsched_gym.errors import ConfigError, WorkloadError

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

    def augment(self, **options: Any) -> Workload:
        """A copy with synthesized performance fields; see :func:`augment` for the options."""
        return augment(self, **options)

    def select(self, mask: np.ndarray | pd.Series, *, label: str) -> Workload:
        """The jobs where ``mask`` is true (e.g. one VC), times shifted to start at 0."""
        sub = self.table[np.asarray(mask, dtype=bool)].copy()
        if len(sub) == 0:
            raise WorkloadError(f"selection {label!r} of workload {self.name!r} is empty")
        shift = sub["submit_time"].iloc[0]
        sub["submit_time"] -= shift
        sub["deadline"] -= shift
        return self.replace(sub, name=f"{self.name}/{label}")


def _show(value: object) -> str:
    """A cell value for an error message: numpy scalars as plain Python numbers (``-5``, not
    ``np.int64(-5)``), strings quoted."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


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
    huge = np.zeros(len(raw), dtype=bool)
    if integer:
        v = values.fillna(0).to_numpy(dtype=np.float64)
        bad |= values.notna().to_numpy() & (np.mod(v, 1) != 0)
        # beyond 2**53 a float no longer holds every integer, and int64 would wrap silently
        huge = values.notna().to_numpy() & (np.abs(v) > 2**53)
        bad |= huge
    if bad.any():
        if not drop:
            row = int(np.flatnonzero(bad)[0])
            kind = "an integer <= 2**53" if huge[row] else "an integer" if integer else "a number"
            _fail(where, row, column, f"expected {kind}, got {_show(raw.iloc[row])}", table)
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
                _fail(where, row, column, f"{problem}, got {_show(t[column].iloc[row])}", t)
            dropped[f"{column}: {problem}"] = int(mask.sum())
            bad |= mask

    for column, (dtype, default, _) in SCHEMA.items():
        if dtype == "str":
            if column in t.columns:
                col = t[column]
                if column == "job_id":
                    check(col.isna().to_numpy(), column, "expected a job id")
                cols[column] = col.astype(object).where(col.notna(), "").astype(str)
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
    data: dict[str, Any] = {}
    for column, (dtype, _, _) in SCHEMA.items():
        value = cols[column]
        if value is None:  # min/max_gpus default to num_gpus
            value = cols["num_gpus"]
        if isinstance(value, pd.Series):
            data[column] = value.to_numpy()
        else:  # a default: broadcast by pandas in C, not as a Python list
            data[column] = pd.Series(value, index=range(n), dtype="str" if dtype == "str" else None)
    out = pd.DataFrame(data, index=range(n))
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
        target = "str" if dtype == "str" else dtype
        if out[column].dtype != target:
            out[column] = out[column].astype(target)
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


# ---------------------------------------------------------------------------------------------
# Augmentation: synthesize the fields a trace lacks (explicit, seeded, recorded)
# ---------------------------------------------------------------------------------------------

#: Columns :func:`augment` can synthesize, with the value that means "the trace lacks it".
_AUGMENTABLE = ("model", "batch_size", "iterations", "deadline", "min_gpus", "max_gpus", "region",
                "dataset")


def default_model_pool() -> list[tuple[str, int]]:
    """Every (model, batch size) with a measured throughput curve in the bundled perf tables:
    Gavel's job types (K80/P100/V100) and ElasticFlow's A100 and T4 (Pollux) configurations."""
    from dlsched_gym.perf import load_tables

    curves = load_tables()["curves"]
    return [(m, int(b)) for m in sorted(curves) for b in sorted(curves[m], key=int)]


def _has_data(table: pd.DataFrame, column: str) -> bool:
    col = table[column]
    if column in ("min_gpus", "max_gpus"):
        return bool((col != table["num_gpus"]).any())
    if column in ("iterations", "deadline"):
        return bool(col.notna().any())
    if column == "batch_size":
        return bool((col != 0).any())
    return bool((col != "").any())


def _pool_weights(pool: list[tuple[str, int]], weights: Any) -> np.ndarray:
    from dlsched_gym.perf import canonical_model, load_tables

    if isinstance(weights, str):
        if weights == "uniform":
            w = np.ones(len(pool))
        elif weights == "trace":
            mix = load_tables()["gavel_trace_mix"]
            w = np.array([mix.get(f"{canonical_model(m)}@{b}", 0) for m, b in pool], dtype=float)
            missing = [p for p, v in zip(pool, w) if v == 0]
            if missing:
                raise ConfigError(
                    f"augment: weights='trace' uses the job-type mix of Gavel's Philly-derived traces, "
                    f"which has no jobs of {missing[:5]}; use a pool of Gavel job types or explicit weights"
                )
        else:
            raise ConfigError(f"augment: weights must be 'uniform', 'trace' or a sequence, got {weights!r}")
    else:
        w = np.asarray(weights, dtype=float).reshape(-1)
        if len(w) != len(pool) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
            raise ConfigError(f"augment: weights must be {len(pool)} non-negative numbers with a positive "
                              f"sum, got {weights!r}")
    return w / w.sum()


def _names(spec: int | Sequence[str], what: str, prefix: str) -> list[str]:
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        if spec < 1:
            raise ConfigError(f"augment: {what} must be >= 1, got {spec}")
        return [f"{prefix}{i}" for i in range(int(spec))]
    names = [str(x) for x in spec]
    if not names or any(not x for x in names):
        raise ConfigError(f"augment: {what} must be a count or non-empty names, got {spec!r}")
    return names


def augment(
    workload: Workload,
    *,
    seed: int,
    model_pool: Sequence[tuple[str, int] | str] | None = None,
    weights: str | Sequence[float] = "uniform",
    iterations: bool = True,
    deadlines: tuple[float, float] | None = (0.5, 1.5),
    elastic: tuple[float, float] | None = None,
    memory: bool = True,
    regions: int | Sequence[str] | None = None,
    datasets: int | Sequence[str] | None = None,
    overwrite: bool = False,
) -> Workload:
    """Synthesize the performance fields a trace lacks, seeded and recorded.

    Each synthesized column and its rule go into ``attrs["augmented"]``; a column the trace already
    has (any non-default value) is kept and listed in ``attrs["augment_kept"]`` unless
    ``overwrite=True``.

    Args:
        seed: seeds every draw (same seed, same workload -> same result).
        model_pool: ``(model, batch_size)`` pairs or ``"model@batch"`` strings; default
            :func:`default_model_pool` (Gavel and ElasticFlow/Pollux configurations), or Gavel's job
            types when ``weights="trace"``.
        weights: ``"uniform"``, ``"trace"`` (the job-type mix of Gavel's Philly-derived traces,
            seed 0) or one weight per pool entry.
        iterations: ``iterations = duration x iterations/s`` of (model, batch) on the requested
            GPU count of the reference type (ElasticFlow's recipe; NaN for models without a curve).
        deadlines: ``(lo, hi)``: ``deadline = submit + U(lo, hi) x duration`` (ElasticFlow's trace
            generator uses (0.5, 1.5)); None leaves deadlines alone.
        elastic: ``(min_frac, max_frac)``: ``min_gpus = max(1, floor(num_gpus x min_frac))``,
            ``max_gpus = ceil(num_gpus x max_frac)`` (Lyra's spec suggests (0.5, 2.0)); None
            keeps jobs rigid.
        memory: record the GPU-memory rule (``perf.memory_gb(model, batch)``: model state,
            16 bytes per parameter); the schema has no memory column, so it is derived from
            ``model`` when needed.
        regions: a count or names: each user (each job when the trace has no users) gets a home
            region uniformly at random (MAST spec, reconstruction).
        datasets: a count or names: each job reads dataset k with probability proportional to
            1/k (Zipf, s=1; MAST spec, reconstruction).
        overwrite: replace columns the trace already has.

    Raises:
        ConfigError: a bad option (names it and what was expected).
    """
    from dlsched_gym.perf import REFERENCE_GPU_TYPE, canonical_model, iterations_per_second, load_tables

    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ConfigError(f"augment: seed must be an integer, got {seed!r}")
    if model_pool is None:
        pool = default_model_pool()
        if weights == "trace":
            mix = load_tables()["gavel_trace_mix"]
            pool = [p for p in pool if f"{p[0]}@{p[1]}" in mix]
    else:
        pool = []
        for entry in model_pool:
            model, batch = (entry.split("@") if isinstance(entry, str) else entry)
            if canonical_model(model) not in load_tables()["curves"]:
                raise ConfigError(f"augment: model {model!r} in model_pool has no throughput curve; "
                                  f"known: {sorted(load_tables()['curves'])}")
            pool.append((str(model), int(batch)))
        if not pool:
            raise ConfigError("augment: model_pool is empty")
    probs = _pool_weights(pool, weights)

    rng = np.random.default_rng(int(seed))
    r_model, r_deadline, r_region, r_dataset = rng.spawn(4)
    t = workload.table.copy()
    n = len(t)
    done: dict[str, dict[str, Any]] = {}
    kept: list[str] = []

    def wanted(column: str) -> bool:
        if _has_data(t, column) and not overwrite:
            kept.append(column)
            return False
        return True

    if wanted("model"):
        pick = r_model.choice(len(pool), size=n, p=probs)
        t["model"] = np.array([m for m, _ in pool], dtype=object)[pick]
        t["batch_size"] = np.array([b for _, b in pool], dtype=np.int64)[pick]
        rule = f"drawn from a pool of {len(pool)} (model, batch size) pairs, weights={weights!r}"
        done["model"] = {"rule": rule, "pool": [f"{m}@{b}" for m, b in pool]}
        done["batch_size"] = {"rule": "with the model, from the same pool entry"}
    elif wanted("batch_size"):
        curves = load_tables()["curves"]
        by_model = {m: sorted(curves[k], key=int)[len(curves[k]) // 2] if (k := canonical_model(m)) in curves
                    else 0 for m in t["model"].unique()}
        t["batch_size"] = t["model"].map(by_model).astype(np.int64)
        done["batch_size"] = {"rule": "the median measured batch size of the trace's model (0 if unknown)"}

    if iterations and wanted("iterations"):
        keys = t[["model", "batch_size", "num_gpus"]].drop_duplicates()
        ips = {}
        for m, b, g in keys.itertuples(index=False):
            ips[(m, b, g)] = (iterations_per_second(m, int(b), int(g), REFERENCE_GPU_TYPE)
                              if canonical_model(m) in load_tables()["curves"] else math.nan)
        rate = np.array([ips[k] for k in zip(t["model"], t["batch_size"], t["num_gpus"])], dtype=float)
        t["iterations"] = t["duration"].to_numpy() * rate
        done["iterations"] = {
            "rule": f"duration x iterations/s of (model, batch_size) on num_gpus {REFERENCE_GPU_TYPE} GPUs "
                    "(perf.iterations_per_second; ElasticFlow's recipe)",
            "unknown_model_rows": int(np.isnan(rate).sum()),
        }

    if deadlines is not None and wanted("deadline"):
        lo, hi = (float(x) for x in deadlines)
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise ConfigError(f"augment: deadlines must be (lo, hi) with 0 < lo <= hi, got {deadlines!r}")
        factor = r_deadline.uniform(lo, hi, size=n)
        t["deadline"] = t["submit_time"].to_numpy() + factor * t["duration"].to_numpy()
        done["deadline"] = {"rule": f"submit_time + U({lo}, {hi}) x duration (ElasticFlow's trace generator)"}

    if elastic is not None and (wanted("min_gpus") & wanted("max_gpus")):
        lo, hi = (float(x) for x in elastic)
        if not (0 < lo <= 1 <= hi and math.isfinite(hi)):
            raise ConfigError(f"augment: elastic must be (min_frac, max_frac) with 0 < min_frac <= 1 <= "
                              f"max_frac, got {elastic!r}")
        g = t["num_gpus"].to_numpy()
        t["min_gpus"] = np.maximum(1, np.floor(g * lo)).astype(np.int64)
        t["max_gpus"] = np.ceil(g * hi).astype(np.int64)
        rule = f"min_gpus = max(1, floor(num_gpus x {lo})), max_gpus = ceil(num_gpus x {hi})"
        done["min_gpus"] = done["max_gpus"] = {"rule": rule}

    if memory:
        done["gpu_mem_gb"] = {"rule": "perf.memory_gb(model, batch_size): parameters x 16 bytes (ZeRO, "
                                      "SC'20), a lower bound; no schema column, derived from model"}

    if regions is not None and wanted("region"):
        names = _names(regions, "regions", "region")
        users = t["user"].to_numpy(dtype=object)
        codes, uniq = pd.factorize(users)
        anonymous = users == ""
        codes[anonymous] = len(uniq) + np.arange(int(anonymous.sum()))
        draw = r_region.integers(0, len(names), size=len(uniq) + int(anonymous.sum()))
        t["region"] = np.array(names, dtype=object)[draw[codes]]
        done["region"] = {"rule": f"per user (per job without one), uniform over {names}"}

    if datasets is not None and wanted("dataset"):
        names = _names(datasets, "datasets", "dataset")
        p = 1.0 / np.arange(1, len(names) + 1)
        t["dataset"] = np.array(names, dtype=object)[r_dataset.choice(len(names), size=n, p=p / p.sum())]
        done["dataset"] = {"rule": f"per job, Zipf (p ~ 1/rank) over {len(names)} datasets"}

    for info in done.values():
        info["seed"] = int(seed)
    out = workload.replace(t)
    out.attrs["augmented"] = {**workload.attrs.get("augmented", {}), **done}
    if kept:
        out.attrs["augment_kept"] = sorted(set(kept))
    return out
