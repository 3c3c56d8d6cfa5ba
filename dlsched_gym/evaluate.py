"""Run many simulations (cells) and rank the schedulers.

A *cell* is one simulation: one scheduler (a registered baseline with parameters, or a trained
agent) on one trace, one cluster, one load factor and one seed. :func:`expand_grid` builds the
cells of an experiment, :func:`run_grid` runs them in parallel and writes one result per cell,
:func:`leaderboard` ranks the schedulers (mean and 95% confidence interval over seeds).

Results directory layout (every file written atomically, so an interrupted sweep leaves only
complete results, and a rerun skips the cells already done)::

    DIR/cells/<key>.json        config, package versions and summary metrics (deterministic)
    DIR/jobs/<key>.parquet      per-job table (SimResult.jobs_frame)
    DIR/timeline/<key>.parquet  queue length and utilization samples over time
    DIR/timing/<key>.json       wall-clock seconds of the simulation (not deterministic)

``<key>`` is a hash of the cell's full configuration. Everything but ``timing/`` is bit-identical
for the same cell whatever the backend or worker count.

Example::

    from dlsched_gym import evaluate
    cells = evaluate.expand_grid(["fifo", "fifo-backfill"], ["trace.csv"], ["4x8"], seeds=[0, 1])
    df = evaluate.run_grid(cells, "results/", workers=4)
    print(evaluate.leaderboard(df))

Experiments can also be described in TOML (:func:`load_experiment`); see ``examples/``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import json
import math
import os
import platform
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dlsched_gym import __version__
from dlsched_gym.errors import ConfigError, DLSchedError, WorkloadError

#: The predictor name meaning "whatever the scheduler assumes".
AUTO_PREDICTOR = "auto"

if TYPE_CHECKING:
    from dlsched_gym.workload import Workload

#: Prefix of the scheduler name of a cell that runs a trained agent (``agent:<spec>``).
AGENT_PREFIX = "agent:"

#: Metrics the leaderboard always shows (mean and 95% CI over seeds).
LEADERBOARD_METRICS = ("avg_jct", "p99_jct", "avg_queueing_delay", "gpu_utilization", "wall_s")
#: Metrics the leaderboard shows when some cell reports them.
OPTIONAL_METRICS = ("deadlines_met", "avg_lateness", "cloud_cost", "jct_prediction_mape",
                    "max_region_demand_supply")
#: Columns that identify a setting; the leaderboard has one row per scheduler and setting.
SETTING_COLUMNS = ("trace", "cluster", "load")


# ---------------------------------------------------------------------------------------- files
def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` atomically: ``write(tmp)`` fills a temporary file in the same directory,
    which then replaces ``path`` (``os.replace``), so readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text))


def to_json(obj: Any, indent: int | None = 1) -> str:
    """Canonical JSON (sorted keys, non-finite floats as null, numpy scalars as numbers) used for
    results and hashing; ``indent=None`` gives one line."""
    return json.dumps(_jsonable(obj), sort_keys=True, indent=indent, allow_nan=False) + "\n"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def versions() -> dict[str, str]:
    """Versions of Python and the packages that determine a result."""
    import pyarrow

    return {"dlsched_gym": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "pandas": pd.__version__, "pyarrow": pyarrow.__version__}


# ---------------------------------------------------------------------------------------- cells
@dataclasses.dataclass(frozen=True)
class Cell:
    """One simulation of an experiment.

    Attributes:
        scheduler: a registered baseline name, or ``"agent:<spec>"`` for a trained agent (``spec``
            as :func:`dlsched_gym.agents.load_agent` takes it: a ``.zip`` path or
            ``"pretrained:philly"``).
        trace: a trace name (see ``dlsched traces list``) or a file path.
        cluster: a cluster spec (preset, ``NxG[-TYPE]`` or a TOML path).
        params: the scheduler's keyword parameters.
        label: the scheduler's name in results (defaults to ``scheduler`` plus its parameters).
        trace_options: keyword options for :func:`dlsched_gym.traces.load`.
        augment: keyword options of :meth:`Workload.augment` applied to the trace (empty: none),
            e.g. ``{"seed": 0, "deadlines": [0.5, 1.5]}``.
        load: arrival-rate factor (:meth:`Workload.scale_load`).
        seed: the engine's seed.
        perf, perf_options: the rate model and its options.
        predictor, predictor_options: the duration predictor and its options; ``"auto"`` (the
            default) uses what the scheduler's paper assumes (its ``predictor`` attribute, e.g.
            QSSF's history-based estimate), else the oracle.
        placement: the placement strategy for ``Start`` ops without GPUs.
        overhead: restart overhead after a preemption: seconds, or ``"lucid"`` (40 s up to 8 GPUs,
            60 s above).
        drop_invalid: drop unusable jobs (invalid rows, jobs larger than the cluster) instead of
            failing; the counts are recorded in the result.
        imports: modules imported before the scheduler is made, in whatever process runs the
            cell (a scheduler registered in user code reaches process-pool and Ray workers this
            way); left out of the configuration hash when empty.
        engine_options: further :class:`~dlsched_gym.engine.Engine` keywords, those in
            :data:`ENGINE_OPTIONS` (e.g. ``dataset_size_tb`` for MAST's data placement); left out
            of the configuration hash when empty.
    """

    scheduler: str
    trace: str
    cluster: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    label: str = ""
    trace_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    augment: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    load: float = 1.0
    seed: int = 0
    perf: str = "duration"
    perf_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    predictor: str = AUTO_PREDICTOR
    predictor_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    placement: str = "consolidated"
    overhead: float | str = 0.0
    drop_invalid: bool = False
    imports: tuple[str, ...] = ()
    engine_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        # Canonical types, so that equal configurations hash equally (TOML 0 vs CLI 0.0).
        object.__setattr__(self, "load", _positive(self.load, "loads"))
        object.__setattr__(self, "seed", _seed(self.seed))
        object.__setattr__(self, "overhead", _canonical_overhead(self.overhead))
        object.__setattr__(self, "imports", _module_names(self.imports))
        object.__setattr__(self, "engine_options", _engine_options(self.engine_options))
        if not self.label:
            object.__setattr__(self, "label", default_label(self.scheduler, self.params))

    def config(self) -> dict[str, Any]:
        """The full configuration as a JSON-ready dict."""
        config = json.loads(to_json(dataclasses.asdict(self)))
        for name in ("imports", "engine_options"):  # keep the keys of grids without them
            if not config[name]:
                del config[name]
        return config

    @property
    def key(self) -> str:
        """A hash of the configuration: the cell's file name in a results directory."""
        return hashlib.sha256(to_json(self.config()).encode()).hexdigest()[:16]

    def __hash__(self) -> int:
        return hash(self.key)


def default_label(scheduler: str, params: Mapping[str, Any]) -> str:
    """``name`` or ``name[k=v,...]``: the name of a scheduler with parameters in results."""
    if not params:
        return scheduler
    inner = ",".join(f"{k}={json.dumps(_jsonable(v))}" for k, v in sorted(params.items()))
    return f"{scheduler}[{inner}]"


def _as_spec(item: Any, what: str, name_key: str, extra: tuple[str, ...]) -> dict[str, Any]:
    """Normalize a grid entry given as a string or a mapping to a dict."""
    if isinstance(item, str):
        return {name_key: item}
    if isinstance(item, Mapping):
        unknown = sorted(set(item) - {name_key, *extra})
        if unknown:
            raise ConfigError(f"{what}: unknown key(s) {unknown}; expected {[name_key, *extra]}")
        if not isinstance(item.get(name_key), str):
            raise ConfigError(f"{what}: expected a string '{name_key}', got {item.get(name_key)!r}")
        return dict(item)
    raise ConfigError(f"{what}: expected a name or a table, got {item!r}")


def _check_table(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what}: expected a table of options, got {value!r}")
    return dict(value)


def expand_grid(
    schedulers: Iterable[str | Mapping[str, Any]],
    traces: Iterable[str | Mapping[str, Any]],
    clusters: Iterable[str],
    *,
    loads: Iterable[float] = (1.0,),
    seeds: Iterable[int] = (0,),
    agents: Iterable[str | Mapping[str, Any]] = (),
    perf: str = "duration",
    perf_options: Mapping[str, Any] | None = None,
    predictor: str = AUTO_PREDICTOR,
    predictor_options: Mapping[str, Any] | None = None,
    placement: str = "consolidated",
    overhead: float | str = 0.0,
    drop_invalid: bool = False,
    imports: Iterable[str] = (),
    engine_options: Mapping[str, Any] | None = None,
) -> list[Cell]:
    """All cells of scheduler x trace x cluster x load x seed, validated.

    Args:
        schedulers: baseline names, or mappings ``{"name": ..., "params": {...}, "label": ...}``.
        traces: trace names or paths, or mappings ``{"name": ..., "options": {...}}``.
        clusters: cluster specs.
        loads: arrival-rate factors.
        seeds: engine seeds.
        agents: trained agents: specs (a ``.zip`` path or ``"pretrained:<name>"``), or mappings
            ``{"path": ..., "label": ...}``.
        perf, perf_options, predictor, predictor_options, placement, overhead, drop_invalid:
            engine options shared by every cell (see :class:`Cell`).
        imports: modules to import first, here and in every worker (user schedulers).
        engine_options: further Engine keywords (:data:`ENGINE_OPTIONS`) for every cell.

    Raises:
        ConfigError: an unknown scheduler, parameter, predictor, placement or perf model, or a
            bad load, seed or overhead. ClusterSpecError: a malformed cluster spec.
    """
    from dlsched_gym import baselines
    from dlsched_gym.cluster import make_cluster
    from dlsched_gym.placement import PLACEMENTS
    from dlsched_gym.predictors import make_predictor

    imports = _module_names(tuple(imports))
    import_modules(imports)
    engine_options = _engine_options(engine_options or {})
    runs: list[dict[str, Any]] = []
    for i, item in enumerate(schedulers):
        s = _as_spec(item, f"schedulers[{i}]", "name", ("params", "label"))
        s["params"] = _check_table(s.get("params"), f"schedulers[{i}].params")
        baselines.make(s["name"], **s["params"])  # unknown names and parameters fail here
        runs.append({"scheduler": s["name"], "params": s["params"], "label": s.get("label", "")})
    for i, item in enumerate(agents):
        a = _as_spec(item, f"agents[{i}]", "path", ("label",))
        runs.append({"scheduler": AGENT_PREFIX + a["path"], "params": {}, "label": a.get("label", "")})
    if not runs:
        raise ConfigError("no schedulers or agents to evaluate")
    labels = [r["label"] or default_label(r["scheduler"], r["params"]) for r in runs]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise ConfigError(f"schedulers: label(s) {twice} used twice; give each entry its own 'label'")
    trace_specs = []
    for i, item in enumerate(traces):
        t = _as_spec(item, f"traces[{i}]", "name", ("options", "augment"))
        trace_specs.append((t["name"], _check_table(t.get("options"), f"traces[{i}].options"),
                            _check_table(t.get("augment"), f"traces[{i}].augment")))
    clusters = list(clusters)
    for c in clusters:
        make_cluster(c)
    loads = [_positive(x, "loads") for x in loads]
    seeds = [_seed(x) for x in seeds]
    for what, values in (("traces", trace_specs), ("clusters", clusters), ("loads", loads),
                         ("seeds", seeds)):
        if not values:
            raise ConfigError(f"{what}: expected at least one value")
    if placement not in PLACEMENTS:
        raise ConfigError(f"unknown placement {placement!r}; expected one of {sorted(PLACEMENTS)}")
    if predictor != AUTO_PREDICTOR:
        make_predictor(predictor, **dict(predictor_options or {}))
    _perf_model(perf, perf_options or {})
    return [
        Cell(scheduler=r["scheduler"], params=r["params"], label=r["label"], trace=trace,
             trace_options=topts, augment=aug, cluster=cluster, load=load, seed=seed, perf=perf,
             perf_options=dict(perf_options or {}), predictor=predictor,
             predictor_options=dict(predictor_options or {}), placement=placement,
             overhead=overhead, drop_invalid=bool(drop_invalid), imports=imports,
             engine_options=engine_options)
        for r in runs for trace, topts, aug in trace_specs for cluster in clusters for load in loads
        for seed in seeds
    ]


#: Engine keywords a grid may set through ``engine_options`` (the others have their own fields).
ENGINE_OPTIONS = ("dataset_size_tb", "initial_replicas", "resize_overhead", "max_time",
                  "timeline_interval")


def _engine_options(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"engine_options: expected a table of Engine options, got {value!r}")
    unknown = sorted(set(value) - set(ENGINE_OPTIONS))
    if unknown:
        raise ConfigError(f"engine_options: unknown option(s) {unknown}; expected some of "
                          f"{list(ENGINE_OPTIONS)}")
    return dict(value)


def _module_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(m, str) and m for m in value):
        raise ConfigError(f"imports: expected a list of module names, got {value!r}")
    return tuple(value)


def import_modules(names: Iterable[str]) -> None:
    """Import ``names`` (user modules that register schedulers), naming the one that fails."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"imports: cannot import module {name!r}: {exc}") from None


def _positive(x: Any, what: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(x, bool) or not (v > 0 and math.isfinite(v)):
        raise ConfigError(f"{what}: expected a positive number, got {x!r}")
    return v


def _seed(x: Any) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 0:
        raise ConfigError(f"seeds: expected an integer >= 0, got {x!r}")
    return int(x)


def _canonical_overhead(value: float | str) -> float | str:
    """``"lucid"`` or a float number of seconds >= 0."""
    if value == "lucid":
        return value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"overhead: expected seconds >= 0 or 'lucid', got {value!r}") from None
    valid = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (valid and value >= 0 and math.isfinite(value)):
        raise ConfigError(f"overhead: expected seconds >= 0 or 'lucid', got {value!r}")
    return float(value)


def _overhead(value: float | str) -> float | Callable[[int], float]:
    """The engine's ``restart_overhead`` for a cell's ``overhead``."""
    from dlsched_gym.engine import lucid_overhead

    return lucid_overhead if value == "lucid" else float(value)


def _perf_model(name: str, options: Mapping[str, Any]) -> Any:
    from dlsched_gym.perf import make_perf

    if not options:
        return make_perf(name)
    try:
        return make_perf(name, **options)
    except TypeError as exc:
        raise ConfigError(f"perf model {name!r}: bad options {dict(options)}: {exc}") from None


# ---------------------------------------------------------------------------------------- traces
def _is_normalized_table(path: Path) -> bool:
    """True if ``path`` is a CSV/parquet file whose columns all belong to the normalized schema."""
    from dlsched_gym.workload import SCHEMA

    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            columns = pd.read_csv(path, nrows=0).columns
        elif suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            columns = pq.read_schema(path).names
        else:
            return False
    except (OSError, ValueError) as exc:
        raise WorkloadError(f"{path}: cannot read the header: {exc}") from None
    return set(columns) <= set(SCHEMA)


def _read_table(path: Path) -> pd.DataFrame:
    from dlsched_gym.workload import SCHEMA

    try:
        if path.suffix.lower() == ".csv":
            text = [c for c, (dtype, _, _) in SCHEMA.items() if dtype == "str"]
            return pd.read_csv(path, dtype=dict.fromkeys(text, str), keep_default_na=False,
                               na_values={c: [""] for c in SCHEMA if c not in text})
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise WorkloadError(f"{path}: cannot read the table: {exc}") from None


def load_trace(trace: str, options: Mapping[str, Any] | None = None, *,
               drop_invalid: bool = False) -> Workload:
    """The :class:`~dlsched_gym.workload.Workload` of a trace name or file.

    A CSV or parquet file whose columns belong to the normalized schema (see
    :mod:`dlsched_gym.workload`) is read directly (unless ``options`` are given); anything else
    goes to :func:`dlsched_gym.traces.load`, with ``drop_invalid`` added to the options when set.
    """
    from dlsched_gym import traces
    from dlsched_gym.workload import normalize

    options = dict(options or {})
    path = Path(trace)
    loader = getattr(traces, "load", None)
    if path.is_file() and (loader is None or (not options and _is_normalized_table(path))):
        if options:
            raise ConfigError(f"trace {trace!r}: options {sorted(options)} need the trace library "
                              "(dlsched_gym.traces.load), which this installation lacks")
        return normalize(_read_table(path), name=path.stem, where=str(path), drop_invalid=drop_invalid,
                         source=str(path))
    if loader is None:
        raise ConfigError(f"trace {trace!r}: no such file, and this installation has no trace "
                          "catalogue (dlsched_gym.traces.load)")
    if drop_invalid:
        options["drop_invalid"] = True
    return loader(trace, **options)


@functools.lru_cache(maxsize=4)
def _cached_workload(trace: str, options_json: str, augment_json: str, cluster: str,
                     drop_invalid: bool, load: float):
    from dlsched_gym.cluster import make_cluster

    wl = load_trace(trace, json.loads(options_json), drop_invalid=drop_invalid)
    augment = json.loads(augment_json)
    if augment:
        try:
            wl = wl.augment(**augment)
        except TypeError as exc:
            raise ConfigError(f"trace {trace!r}: bad augment options {augment}: {exc}") from None
    if drop_invalid:
        capacity = make_cluster(cluster).num_gpus
        too_big = wl.table["min_gpus"].to_numpy() > capacity
        if too_big.any():
            dropped = {**wl.attrs.get("dropped", {}),
                       f"num_gpus: more GPUs than the cluster has ({capacity})": int(too_big.sum())}
            wl = wl.replace(wl.table[~too_big])
            wl.attrs["dropped"] = dropped
    if len(wl) == 0:
        raise WorkloadError(f"trace {trace!r}: no jobs left to simulate")
    return wl.scale_load(load) if load != 1.0 else wl


# ---------------------------------------------------------------------------------------- running
@dataclasses.dataclass
class CellOutput:
    """What one simulation produces: the result record, the per-job table, the timeline and the
    wall-clock time of the simulation."""

    record: dict[str, Any]
    jobs: pd.DataFrame
    timeline: pd.DataFrame
    wall_s: float


def make_scheduler(cell: Cell) -> Any:
    """The scheduler object of a cell (a baseline from the registry, or a loaded agent)."""
    if cell.scheduler.startswith(AGENT_PREFIX):
        from dlsched_gym import agents

        load_agent = getattr(agents, "load_agent", None)
        if load_agent is None:
            raise ConfigError("agents are not available: dlsched_gym.agents has no load_agent")
        return load_agent(cell.scheduler[len(AGENT_PREFIX):])
    from dlsched_gym import baselines

    import_modules(cell.imports)
    return baselines.make(cell.scheduler, **cell.params)


def resolve_predictor(name: str, scheduler: Any) -> str:
    """``name``, or for ``"auto"`` the scheduler's own ``predictor`` attribute (else oracle)."""
    return getattr(scheduler, "predictor", "oracle") if name == AUTO_PREDICTOR else name


def simulate_cell(cell: Cell, *, progress: bool = False) -> CellOutput:
    """Run one cell and return its :class:`CellOutput` (nothing is written)."""
    from dlsched_gym.engine import Engine
    from dlsched_gym.metrics import summarize
    from dlsched_gym.predictors import make_predictor

    wl = _cached_workload(cell.trace, to_json(cell.trace_options), to_json(cell.augment), cell.cluster,
                          cell.drop_invalid,
                          float(cell.load))
    scheduler = make_scheduler(cell)
    t0 = time.perf_counter()
    engine = Engine(wl, cell.cluster, placement=cell.placement,
                    perf=_perf_model(cell.perf, cell.perf_options),
                    predictor=make_predictor(resolve_predictor(cell.predictor, scheduler),
                                             **cell.predictor_options),
                    restart_overhead=_overhead(cell.overhead), seed=cell.seed,
                    **cell.engine_options)
    result = engine.run(scheduler, progress=progress)
    wall = time.perf_counter() - t0
    metrics = summarize(result)
    metrics["cluster_gpus"] = result.num_gpus
    record = {
        "key": cell.key,
        "label": cell.label,
        "config": cell.config(),
        "versions": versions(),
        "workload": {"name": wl.name, "jobs": len(wl), "dropped": wl.attrs.get("dropped", {})},
        "metrics": metrics,
    }
    timeline = result.timeline.copy()
    timeline["utilization"] = timeline["busy_gpus"] / result.num_gpus
    return CellOutput(record=json.loads(to_json(record)), jobs=result.jobs_frame(), timeline=timeline,
                      wall_s=wall)


def _paths(out_dir: Path, key: str) -> dict[str, Path]:
    return {"cell": out_dir / "cells" / f"{key}.json", "jobs": out_dir / "jobs" / f"{key}.parquet",
            "timeline": out_dir / "timeline" / f"{key}.parquet",
            "timing": out_dir / "timing" / f"{key}.json"}


def is_done(cell: Cell, out_dir: str | Path) -> bool:
    """True if ``out_dir`` holds the complete result of ``cell``."""
    return _paths(Path(out_dir), cell.key)["cell"].exists()


def write_cell(out_dir: str | Path, output: CellOutput) -> None:
    """Write a cell's files into a results directory; the summary goes last, so its presence means
    the cell is complete."""
    p = _paths(Path(out_dir), output.record["key"])
    atomic_write(p["jobs"], lambda tmp: output.jobs.to_parquet(tmp, index=False))
    atomic_write(p["timeline"], lambda tmp: output.timeline.to_parquet(tmp, index=False))
    atomic_write_text(p["timing"], to_json({"wall_s": output.wall_s}))
    atomic_write_text(p["cell"], to_json(output.record))


def run_cell(cell: Cell, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Run one cell; return its record (config, versions, metrics) plus ``wall_s``.

    With ``out_dir``, also write the cell's files there (see the module docstring).
    """
    output = simulate_cell(cell)
    if out_dir is not None:
        write_cell(out_dir, output)
    return {**output.record, "wall_s": output.wall_s}


# ---------------------------------------------------------------------------------------- backends
Outcome = tuple[Cell, "CellOutput | BaseException"]


def _local_backend(cells: Sequence[Cell], workers: int, **options: Any) -> Iterator[Outcome]:
    """Run cells in this process (``workers=1``) or in a process pool."""
    if options:
        raise ConfigError(f"backend 'local' takes no options, got {sorted(options)}")
    if workers == 1:
        for cell in cells:
            try:
                yield cell, simulate_cell(cell)
            except Exception as exc:  # reported with the cell by run_grid
                yield cell, exc
        return
    pool = ProcessPoolExecutor(max_workers=workers)
    try:
        futures = {pool.submit(simulate_cell, cell): cell for cell in cells}
        for fut in as_completed(futures):
            exc = fut.exception()
            yield futures[fut], exc if exc is not None else fut.result()
    finally:  # on an interrupt, drop the cells not started yet
        pool.shutdown(wait=True, cancel_futures=True)


def _ray_backend(cells: Sequence[Cell], workers: int, address: str | None = None,
                 **options: Any) -> Iterator[Outcome]:
    """Run cells as Ray tasks (one CPU each) on the cluster at ``address`` (a local Ray instance
    if None); ``workers`` bounds the tasks in flight."""
    if options:
        raise ConfigError(f"backend 'ray' takes only 'address', got {sorted(options)}")
    try:
        import ray
    except ImportError:
        raise ConfigError("backend 'ray' needs Ray: pip install 'dlsched-gym[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address)
    task = ray.remote(num_cpus=1)(simulate_cell)
    todo = list(cells)
    pending: dict[Any, Cell] = {}
    while todo or pending:
        while todo and len(pending) < workers:
            cell = todo.pop(0)
            pending[task.remote(cell)] = cell
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        cell = pending.pop(ref)
        try:
            yield cell, ray.get(ref)
        except Exception as exc:
            yield cell, getattr(exc, "cause", None) or exc


#: Registry of execution backends: name -> function(cells, workers, **options) yielding
#: ``(cell, CellOutput or exception)`` as cells complete.
BACKENDS: dict[str, Callable[..., Iterator[Outcome]]] = {"local": _local_backend, "ray": _ray_backend}


def run_grid(cells: Sequence[Cell], out_dir: str | Path, workers: int = 1, backend: str = "local",
             *, progress: bool = True, **backend_options: Any) -> pd.DataFrame:
    """Run every cell whose result is not in ``out_dir`` yet, write the results, and return the
    results of all ``cells`` as a DataFrame (one row per cell, see :func:`load_results`).

    Args:
        cells: from :func:`expand_grid`.
        out_dir: the results directory (created if needed).
        workers: parallel processes (``local``) or tasks in flight (``ray``).
        backend: a name in :data:`BACKENDS`.
        progress: show a progress bar over cells.
        **backend_options: e.g. ``address="ray://host:10001"`` for ``ray``.

    Raises:
        the error of the first failed cell (its label and key prepended), after all the other
        cells have run and been written.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; expected one of {sorted(BACKENDS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers: expected an integer >= 1, got {workers!r}")
    out = Path(out_dir)
    unique = list({c.key: c for c in cells}.values())
    todo = [c for c in unique if not is_done(c, out)]
    failures: list[tuple[Cell, BaseException]] = []
    if todo:
        from tqdm import tqdm

        with tqdm(total=len(todo), unit="cell", desc="cells", disable=not progress) as bar:
            for cell, outcome in BACKENDS[backend](todo, workers, **backend_options):
                if isinstance(outcome, BaseException):
                    failures.append((cell, outcome))
                    bar.write(f"cell {cell.label} [{cell.key}] failed: {outcome}", file=sys.stderr)
                else:
                    write_cell(out, outcome)
                bar.update(1)
    if failures:
        cell, exc = failures[0]
        msg = f"{len(failures)} of {len(todo)} cells failed; first: {cell.label} [{cell.key}]: {exc}"
        if isinstance(exc, DLSchedError):
            raise type(exc)(msg) from exc
        raise RuntimeError(msg) from exc
    return load_results(out, keys=[c.key for c in unique])


# ---------------------------------------------------------------------------------------- results
def load_results(out_dir: str | Path, keys: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per cell of a results directory: ``key``, ``scheduler`` (the label), the setting
    (``trace``, ``cluster``, ``load``), ``seed``, every summary metric, and ``wall_s``.

    ``keys`` restricts the rows to those cells (all cells in the directory by default).
    """
    out = Path(out_dir)
    files = ([_paths(out, k)["cell"] for k in keys] if keys is not None
             else sorted((out / "cells").glob("*.json")))
    rows = []
    for f in files:
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{f}: not a readable cell result: {exc}") from None
        timing = _paths(out, rec["key"])["timing"]
        wall = json.loads(timing.read_text())["wall_s"] if timing.exists() else math.nan
        cfg = rec["config"]
        rows.append({"key": rec["key"], "scheduler": rec["label"], "trace": cfg["trace"],
                     "cluster": cfg["cluster"], "load": cfg["load"], "seed": cfg["seed"],
                     **{k: (math.nan if v is None else v) for k, v in rec["metrics"].items()},
                     "wall_s": wall})
    return pd.DataFrame(rows)


def _ci95(values: pd.Series) -> float:
    from scipy.special import stdtrit  # Student's t quantile; much lighter than scipy.stats

    v = values.dropna().to_numpy(dtype=float)
    if len(v) < 2:
        return math.nan
    return float(stdtrit(len(v) - 1, 0.975) * v.std(ddof=1) / math.sqrt(len(v)))


def leaderboard(df: pd.DataFrame) -> pd.DataFrame:
    """Rank schedulers: one row per scheduler and setting (trace, cluster, load), with the mean
    and the half-width of the 95% confidence interval (Student's t) over seeds of each metric in
    :data:`LEADERBOARD_METRICS`, plus :data:`OPTIONAL_METRICS` present in ``df``. Sorted by
    setting, then by mean average JCT."""
    if df.empty:
        raise ConfigError("no results to rank")
    metrics = [m for m in LEADERBOARD_METRICS + OPTIONAL_METRICS
               if m in df.columns and (m in LEADERBOARD_METRICS or df[m].notna().any())]
    rows = []
    keys = [*SETTING_COLUMNS, "scheduler"]
    for group, sub in df.groupby(keys, sort=False):
        row: dict[str, Any] = dict(zip(keys, group))
        row["seeds"] = len(sub)
        for m in metrics:
            row[f"{m}_mean"] = float(sub[m].mean())
            row[f"{m}_ci95"] = _ci95(sub[m])
        rows.append(row)
    return (pd.DataFrame(rows).sort_values([*SETTING_COLUMNS, "avg_jct_mean"], kind="stable")
            .reset_index(drop=True))


def _fmt(mean: float, ci: float, metric: str) -> str:
    if not math.isfinite(mean):
        return "-"
    if metric in ("gpu_utilization", "deadlines_met", "jct_prediction_mape"):
        text = f"{100 * mean:.1f}%"
        return text + (f" ± {100 * ci:.1f}" if math.isfinite(ci) else "")
    digits = 2 if metric == "wall_s" else 0 if abs(mean) >= 100 else 1
    text = f"{mean:,.{digits}f}"
    return text + (f" ± {ci:,.{digits}f}" if math.isfinite(ci) else "")


#: Column headers of the formatted leaderboard, with units.
_HEADERS = {"avg_jct": "avg JCT (s)", "p99_jct": "p99 JCT (s)", "avg_queueing_delay": "avg queueing (s)",
            "gpu_utilization": "GPU util", "wall_s": "wall (s)", "deadlines_met": "deadlines met",
            "avg_lateness": "avg lateness (s)", "cloud_cost": "cloud cost ($)",
            "jct_prediction_mape": "JCT pred. error",
            "max_region_demand_supply": "max region demand/supply"}


def format_leaderboard(lb: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard as strings (``mean ± CI``), with unit-labelled headers, for display."""
    metrics = [c[: -len("_mean")] for c in lb.columns if c.endswith("_mean")]
    table = lb[[*SETTING_COLUMNS, "scheduler", "seeds"]].astype(str)
    varying = [c for c in SETTING_COLUMNS if lb[c].nunique() > 1]
    table = table[[*varying, "scheduler", "seeds"]]
    for m in metrics:
        table[_HEADERS.get(m, m)] = [_fmt(a, b, m) for a, b in zip(lb[f"{m}_mean"], lb[f"{m}_ci95"])]
    return table


def to_markdown(lb: pd.DataFrame) -> str:
    """The formatted leaderboard as a Markdown table (settings that never vary are listed above
    it, not as columns)."""
    table = format_leaderboard(lb)
    fixed = [f"{c}: {lb[c].iloc[0]}" for c in SETTING_COLUMNS if c not in table.columns]
    cells = [list(table.columns)] + table.to_numpy().tolist()
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(table.columns))]
    lines = ["| " + " | ".join(str(v).ljust(w) for v, w in zip(r, widths)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    head = ("; ".join(fixed) + "; mean ± 95% CI over seeds\n\n") if fixed else "mean ± 95% CI over seeds\n\n"
    return head + "\n".join(lines) + "\n"


def write_leaderboard(df: pd.DataFrame, out_dir: str | Path) -> pd.DataFrame:
    """Compute the leaderboard of ``df`` and write ``leaderboard.csv`` and ``leaderboard.md``
    without the wall-clock columns (so that both files are deterministic); return the full one."""
    lb = leaderboard(df)
    files = lb.drop(columns=["wall_s_mean", "wall_s_ci95"], errors="ignore")
    out = Path(out_dir)
    atomic_write(out / "leaderboard.csv", lambda tmp: files.to_csv(tmp, index=False))
    atomic_write_text(out / "leaderboard.md", to_markdown(files))
    return lb


# ---------------------------------------------------------------------------------------- TOML
@dataclasses.dataclass
class Experiment:
    """An experiment: the grid and how to run it (the TOML file format of ``dlsched evaluate``).

    Example file::

        out = "results/small"          # optional: the results directory
        seeds = [0, 1, 2]
        loads = [1.0, 2.0]
        clusters = ["4x8-V100"]
        workers = 4                    # optional; default: one process per CPU
        backend = "local"              # or "ray", with address = "ray://..."
        placement = "consolidated"     # optional engine options
        predictor = "auto"             # or "oracle", or { name = "noisy", sigma = 0.3 }
        overhead = 0                   # restart overhead (s) or "lucid"
        drop_invalid = false
        perf = { name = "duration" }   # other keys are the model's options
        imports = ["my_schedulers"]    # optional: modules that register your own schedulers
        engine = { dataset_size_tb = 10 }  # optional: further Engine options (ENGINE_OPTIONS)

        [[schedulers]]
        name = "fifo"
        [[schedulers]]
        name = "fifo"
        label = "fifo+backfill"
        params = { backfill = true }

        [[agents]]
        path = "runs/ppo/model.zip"
        label = "ppo"

        [[traces]]
        name = "philly"
        options = { }                   # keyword options of dlsched_gym.traces.load
        augment = { seed = 0 }          # optional: Workload.augment options (models, deadlines, ...)

    ``schedulers``, ``traces`` and ``agents`` may also be lists of plain strings.
    """

    schedulers: list[Any] = dataclasses.field(default_factory=list)
    traces: list[Any] = dataclasses.field(default_factory=list)
    clusters: list[str] = dataclasses.field(default_factory=list)
    agents: list[Any] = dataclasses.field(default_factory=list)
    loads: list[float] = dataclasses.field(default_factory=lambda: [1.0])
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0])
    perf: str = "duration"
    perf_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    predictor: str = AUTO_PREDICTOR
    predictor_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    placement: str = "consolidated"
    overhead: float | str = 0.0
    drop_invalid: bool = False
    imports: list[str] = dataclasses.field(default_factory=list)
    engine_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    workers: int | None = None
    backend: str = "local"
    address: str | None = None
    out: str | None = None
    source: str | None = None

    def cells(self) -> list[Cell]:
        """The cells of the grid (:func:`expand_grid`); errors name the source file, if any."""
        try:
            return self._cells()
        except ConfigError as exc:
            if self.source is None:
                raise
            raise ConfigError(f"{self.source}: {exc}") from None

    def _cells(self) -> list[Cell]:
        return expand_grid(self.schedulers, self.traces, self.clusters, loads=self.loads,
                           seeds=self.seeds, agents=self.agents, perf=self.perf,
                           perf_options=self.perf_options, predictor=self.predictor,
                           predictor_options=self.predictor_options, placement=self.placement,
                           overhead=self.overhead, drop_invalid=self.drop_invalid,
                           imports=self.imports, engine_options=self.engine_options)


#: TOML key -> (expected type(s), description for error messages).
_TOML_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "schedulers": ((list,), "a list of names or tables {name, params, label}"),
    "traces": ((list,), "a list of names or tables {name, options}"),
    "clusters": ((list,), "a list of cluster specs"),
    "agents": ((list,), "a list of paths or tables {path, label}"),
    "loads": ((list,), "a list of positive numbers"),
    "seeds": ((list,), "a list of integers >= 0"),
    "perf": ((str, dict), "a model name or a table {name, ...options}"),
    "predictor": ((str, dict), "a predictor name or a table {name, ...options}"),
    "placement": ((str,), "a placement name"),
    "overhead": ((int, float, str), "seconds >= 0 or 'lucid'"),
    "drop_invalid": ((bool,), "true or false"),
    "imports": ((list,), "a list of module names to import first (user schedulers)"),
    "engine": ((dict,), f"a table of further Engine options, some of {list(ENGINE_OPTIONS)}"),
    "workers": ((int,), "an integer >= 1"),
    "backend": ((str,), f"one of {sorted(BACKENDS)}"),
    "address": ((str,), "a Ray address"),
    "out": ((str,), "a directory"),
}


def load_experiment(path: str | Path) -> Experiment:
    """Parse an experiment TOML file (format in :class:`Experiment`).

    Raises:
        ConfigError: naming the file, the key and what was expected.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the experiment file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    fields: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _TOML_KEYS:
            raise ConfigError(f"{path}: unknown key {key!r}; expected one of {sorted(_TOML_KEYS)}")
        types, expected = _TOML_KEYS[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ConfigError(f"{path}: key {key!r}: expected {expected}, got {value!r}")
        if key in ("perf", "predictor") and isinstance(value, dict):
            options = dict(value)
            name = options.pop("name", None)
            if not isinstance(name, str):
                raise ConfigError(f"{path}: key {key!r}: expected a table with a string 'name', "
                                  f"got {value!r}")
            fields[key] = name
            fields[f"{key}_options"] = options
        elif key == "engine":
            fields["engine_options"] = value
        else:
            fields[key] = value
    for i, v in enumerate(fields.get("clusters", [])):
        if not isinstance(v, str):
            raise ConfigError(f"{path}: clusters[{i}]: expected a cluster spec string, got {v!r}")
    return Experiment(**fields, source=str(path))
