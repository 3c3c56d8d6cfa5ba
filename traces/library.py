"""The catalogue of named traces: bundled data files and generated workloads.

:data:`CATALOGUE` maps each name to an entry that knows its file, provenance, options and how to
build the workload. Job counts, spans and sha256 come from ``data/manifest.json``, written by
:mod:`dlsched_gym.traces.bundle`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from dlsched_gym.errors import ConfigError
from dlsched_gym.traces import (
    elasticflow,
    gavel,
    helios_synth,
    pcs,
    philly_pollux,
    pollux,
    readers,
    synergy,
)
from dlsched_gym.workload import Workload, normalize

MANIFEST = "manifest.json"


@dataclasses.dataclass(frozen=True)
class TraceInfo:
    """What the catalogue knows about one named trace.

    Attributes:
        name: the catalogue name, passed to :func:`load`.
        description: one paragraph: what the jobs are and how fields were derived.
        jobs: job count with the default options.
        span_seconds: first to last submission with the default options.
        source: repository, commit and file it comes from.
        license: the data license.
        citation: what to cite.
        file: the bundled file under ``traces/data/`` (None for a generated workload without one).
        sha256: the sha256 of ``file`` (None when there is no file).
        generated: True for synthetic workloads.
        options: option name -> "allowed values (default)".
    """

    name: str
    description: str
    jobs: int
    span_seconds: float
    source: str
    license: str
    citation: str
    file: str | None
    sha256: str | None
    generated: bool
    options: dict[str, str]


@dataclasses.dataclass(frozen=True)
class Option:
    """One load option: its default and allowed values (``None``: any value ``check`` accepts)."""

    default: Any
    choices: tuple[Any, ...] | None = None
    help: str = ""

    def describe(self) -> str:
        """Allowed values and default, for :class:`TraceInfo`."""
        allowed = ", ".join(map(str, self.choices)) if self.choices else self.help
        return f"{allowed} (default {self.default!r})"


@dataclasses.dataclass(frozen=True)
class _Entry:
    description: str
    meta: dict[str, str]
    build: Callable[..., Workload]
    file: str | None = None
    options: dict[str, Option] = dataclasses.field(default_factory=dict)
    generated: bool = False


def _data_path(filename: str) -> Path:
    with resources.as_file(resources.files("dlsched_gym.traces").joinpath("data", filename)) as p:
        return p


@functools.cache
def manifest() -> dict[str, Any]:
    """The bundle manifest (file sha256 and attrs, catalogue job counts and spans)."""
    path = _data_path(MANIFEST)
    if not path.is_file():
        return {"files": {}, "catalogue": {}}
    return json.loads(path.read_text())


def reset_cache() -> None:
    """Forget the cached manifest and tables (after the bundle is rebuilt)."""
    manifest.cache_clear()
    _read_bundled.cache_clear()


def _bundled(
    filename: str,
    name: str,
    meta: dict[str, str],
    drop_invalid: bool,
    select: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
) -> Workload:
    """Read a bundled parquet, keep the rows whose key columns equal ``select``, normalize.

    Results are cached (the files are read-only package data); each call returns its own copy.
    """
    cached = _read_bundled(
        filename, name, tuple(meta.items()), drop_invalid, tuple((select or {}).items()), drop
    )
    return dataclasses.replace(cached, table=cached.table.copy(), attrs=copy.deepcopy(cached.attrs))


@functools.lru_cache(maxsize=32)
def _read_bundled(
    filename: str,
    name: str,
    meta: tuple[tuple[str, str], ...],
    drop_invalid: bool,
    select: tuple[tuple[str, Any], ...],
    drop: tuple[str, ...],
) -> Workload:
    filters = [(k, "==", v) for k, v in select] or None
    table = pd.read_parquet(_data_path(filename), filters=filters)
    table = table.drop(columns=[*(k for k, _ in select), *drop])
    file_attrs = manifest()["files"].get(filename, {})
    attrs = {**file_attrs.get("attrs", {}), "bundled_file": filename, "sha256": file_attrs.get("sha256")}
    if select:
        attrs["selected"] = dict(select)
    where = f"traces/data/{filename}"
    return normalize(table, name=name, where=where, drop_invalid=drop_invalid, attrs=attrs, **dict(meta))


def _philly(drop_invalid: bool, vc: str | None) -> Workload:
    wl = _bundled("philly.parquet", "philly", philly_pollux.META, drop_invalid)
    return wl if vc is None else wl.select(wl.table["vc"] == vc, label=f"vc={vc}")


def _gavel(drop_invalid: bool, seed: int, vc: str) -> Workload:
    return _bundled(
        "gavel_philly.parquet",
        f"gavel-philly/seed={seed}/{vc}",
        gavel.META,
        drop_invalid,
        select={"seed": seed, "vc": vc},
    )


def _pcs(drop_invalid: bool, vc: str) -> Workload:
    return _bundled("pcs_philly.parquet", f"pcs-philly/{vc}", pcs.META, drop_invalid, select={"vc": vc})


def _elasticflow(drop_invalid: bool, cluster: int, variant: str) -> Workload:
    synthetic = ("model", "batch_size", "iterations", "deadline")
    wl = _bundled(
        "elasticflow.parquet",
        f"elasticflow/cluster{cluster:02d}/{variant}",
        elasticflow.META,
        drop_invalid,
        select={"cluster": cluster},
        drop=synthetic if variant == "raw" else (),
    )
    if variant == "augmented":
        wl.attrs["augmented"] = {c: "synthetic in the ElasticFlow release (README)" for c in synthetic}
    return wl


def _pollux(drop_invalid: bool, workload: int, scale: str) -> Workload:
    return _bundled(
        "pollux.parquet",
        f"pollux/workload-{workload}/scale={scale}",
        pollux.META,
        drop_invalid,
        select={"workload": workload, "scale": str(scale)},
    )


def _synergy(drop_invalid: bool, trace: str) -> Workload:
    return _bundled(
        "synergy.parquet", f"synergy/{trace}", synergy.META, drop_invalid, select={"trace": trace}
    )


def _file(filename: str, name: str, meta: dict[str, str]) -> Callable[..., Workload]:
    return functools.partial(_bundled, filename, name, meta)


def _helios(cluster: str, drop_invalid: bool, seed: int, fraction: float) -> Workload:
    return helios_synth.generate_helios(cluster, seed=seed, fraction=fraction)


PHILLY_VCS = (
    "0e4a51",
    "103959",
    "11cb48",
    "23dbec",
    "2869ce",
    "51b7ef",
    "6214e9",
    "6c71a0",
    "795a4c",
    "7f04ca",
    "925e2b",
    "b436b2",
    "e13805",
    "ed69ec",
    "ee9e8c",
)
PCS_VCS = (
    "0e4a51",
    "103959",
    "11cb48",
    "2869ce",
    "51b7ef",
    "6214e9",
    "6c71a0",
    "7f04ca",
    "b436b2",
    "e13805",
    "ed69ec",
    "ee9e8c",
)
EF_103959_META = {
    **elasticflow.META,
    "license": "Apache-2.0 (pkusys/ElasticFlow); Philly data CC BY 4.0",
    "source": "pkusys/ElasticFlow@04a0109a6acdd7d89f4cb31b6a6a7a128bee6bb0 "
    "ElasticFlow/traces_for_ElasticFlow/philly_103959.csv",
    "citation": elasticflow.META["citation"] + "; Philly: Jeon et al., USENIX ATC 2019",
}
EF_POLLUX_META = {
    **elasticflow.META,
    "license": "Apache-2.0 (pkusys/ElasticFlow)",
    "source": "pkusys/ElasticFlow@04a0109a6acdd7d89f4cb31b6a6a7a128bee6bb0 "
    "ElasticFlow/traces_for_ElasticFlow/elasticVpollux_e.csv",
}
POLLUX_SCALES = ("0.5", "1", "1.5", "2", "realistic")


def _entries() -> dict[str, _Entry]:
    table: dict[str, _Entry] = {
        "philly": _Entry(
            "Philly (Microsoft, 2017), 82,247 GPU jobs as processed by the Pollux artifact: submit_time is "
            "seconds since the first timestamp, vc the VC hash, job_id the source row number. No status, "
            "user or model.",
            philly_pollux.META,
            _philly,
            "philly.parquet",
            {"vc": Option(None, (None, *PHILLY_VCS), "one VC hash")},
        ),
        "gavel-philly": _Entry(
            "Gavel's Philly-derived per-VC traces (traces/msr): model and batch size from the job type, "
            "iterations = total_steps, duration = total_steps / Gavel's isolated V100 throughput at the "
            "job's scale factor (unmeasured scale factors extrapolated linearly).",
            gavel.META,
            _gavel,
            "gavel_philly.parquet",
            {"seed": Option(0, (0, 1, 2, 3, 4)), "vc": Option("6214e9", PHILLY_VCS)},
        ),
        "pcs-philly": _Entry(
            "PCS's per-VC Philly traces: duration = service, num_gpus = num_jobs, model = model_name.",
            pcs.META,
            _pcs,
            "pcs_philly.parquet",
            {"vc": Option("6214e9", PCS_VCS)},
        ),
        "elasticflow": _Entry(
            "ElasticFlow's Microsoft ITP traces, 10 clusters, 2021. variant='raw' has only the recorded "
            "fields; 'augmented' adds the release's synthetic model, batch size, iterations and deadline.",
            elasticflow.META,
            _elasticflow,
            "elasticflow.parquet",
            {"cluster": Option(1, tuple(range(1, 11))), "variant": Option("augmented", ("raw", "augmented"))},
        ),
        "elasticflow-philly-103959": _Entry(
            "ElasticFlow artifact: 876 jobs of Philly VC 103959 with synthetic model, iterations and "
            "deadline.",
            EF_103959_META,
            _file("elasticflow_philly_103959.parquet", "elasticflow-philly-103959", EF_103959_META),
            "elasticflow_philly_103959.parquet",
        ),
        "elasticflow-pollux-195": _Entry(
            "ElasticFlow artifact: 195 jobs with Pollux applications (elasticVpollux_e.csv).",
            EF_POLLUX_META,
            _file("elasticflow_pollux_195.parquet", "elasticflow-pollux-195", EF_POLLUX_META),
            "elasticflow_pollux_195.parquet",
        ),
        "pollux": _Entry(
            "Pollux artifact workloads (8 x 5 load scales). The format has no run time: duration is the "
            "median duration of the application in elasticflow-pollux-195 (attrs['augmented']).",
            pollux.META,
            _pollux,
            "pollux.parquet",
            {"workload": Option(1, tuple(range(1, 9))), "scale": Option("1", POLLUX_SCALES)},
        ),
        "synergy": _Entry(
            "Synergy's two example traces. Units undocumented: arrival_time read as seconds, duration = "
            "num_iters x 1 s (a placeholder; see attrs['augmented']).",
            synergy.META,
            _synergy,
            "synergy.parquet",
            {"trace": Option("static-100", ("static-100", "test"))},
        ),
    }
    for vc in pd.read_csv(_data_path("philly_vc_nodes.csv"), dtype=str)["vc"]:  # the 11 modelled VCs
        table[f"philly-vc/{vc}"] = _Entry(
            f"The jobs of Philly VC {vc} from 'philly', times re-based to 0.",
            philly_pollux.META,
            functools.partial(_philly, vc=vc),
            "philly.parquet",
        )
    for cluster in helios_synth.CLUSTERS:
        table[f"helios-{cluster}-synth"] = _Entry(
            f"GENERATED Helios {cluster.capitalize()}-like workload (not the real trace), calibrated to the "
            "published Helios statistics; calibration targets and seed in attrs.",
            helios_synth.META,
            functools.partial(_helios, cluster),
            None,
            {
                "seed": Option(0, None, "any integer"),
                "fraction": Option(0.05, None, "share of the 181-day window, in (0, 1]"),
            },
            generated=True,
        )
    return table


#: Catalogue name -> entry.
CATALOGUE: dict[str, _Entry] = _entries()


def _same_choice(choice: Any, value: Any) -> bool:
    """``value`` names ``choice``: equal, equal as text (``"3"``) or as numbers (``2.0`` for ``"2"``)."""
    if choice == value or (choice is not None and str(choice) == str(value)):
        return True
    try:
        return choice is not None and float(choice) == float(value)
    except (TypeError, ValueError):
        return False


def _check_options(name: str, entry: _Entry, options: dict[str, Any]) -> dict[str, Any]:
    valid = ["drop_invalid", *entry.options]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"trace {name!r}: unknown option(s) {unknown}; valid options: {valid}")
    out = {"drop_invalid": bool(options.get("drop_invalid", False))}
    for key, opt in entry.options.items():
        value = options.get(key, opt.default)
        if opt.choices is not None:
            matched = [c for c in opt.choices if _same_choice(c, value)]
            if not matched:
                raise ConfigError(
                    f"trace {name!r}: option {key}={value!r}; expected one of {list(opt.choices)}"
                )
            value = matched[0]
        out[key] = value
    return out


def load(name: str, **options: Any) -> Workload:
    """Load the catalogue trace ``name`` (options per :func:`info`)."""
    if name not in CATALOGUE:
        raise ConfigError(f"unknown trace {name!r}; expected one of {sorted(CATALOGUE)}")
    entry = CATALOGUE[name]
    wl = entry.build(**_check_options(name, entry, options))
    wl.attrs["catalogue_name"] = name
    return wl


def info(name: str) -> TraceInfo:
    """The :class:`TraceInfo` of catalogue trace ``name``."""
    if name not in CATALOGUE:
        raise ConfigError(f"unknown trace {name!r}; expected one of {sorted(CATALOGUE)}")
    entry = CATALOGUE[name]
    stats = manifest()["catalogue"].get(name, {})
    sha = manifest()["files"].get(entry.file, {}).get("sha256") if entry.file else None
    return TraceInfo(
        name=name,
        description=entry.description,
        jobs=int(stats.get("jobs", 0)),
        span_seconds=float(stats.get("span_seconds", 0.0)),
        source=entry.meta["source"],
        license=entry.meta["license"],
        citation=entry.meta["citation"],
        file=entry.file,
        sha256=sha,
        generated=entry.generated,
        options={k: o.describe() for k, o in entry.options.items()},
    )


def catalogue() -> list[TraceInfo]:
    """Every catalogue trace, sorted by name."""
    return [info(name) for name in sorted(CATALOGUE)]


def load_any(name_or_path: str | Path, *, format: str | None = None, **options: Any) -> Workload:
    """A catalogue name, or a file read with :func:`dlsched_gym.traces.readers.read`."""
    if isinstance(name_or_path, str) and name_or_path in CATALOGUE:
        if format is not None:
            raise ConfigError(f"{name_or_path!r} is a catalogue name; format= applies to file paths only")
        return load(name_or_path, **options)
    path = Path(name_or_path)
    if not path.exists():
        raise ConfigError(
            f"{name_or_path!s}: neither a catalogue trace ({', '.join(sorted(CATALOGUE))}) "
            "nor an existing file"
        )
    return readers.read(path, format=format, **options)
