"""Build the bundled trace files in ``traces/data/`` from the public source files.

Usage::

    python -m dlsched_gym.traces.bundle /work/shared/traces

``SOURCE`` is the folder described by its ``SOURCES.md`` (Philly, Gavel, PCS, ElasticFlow, Pollux,
Synergy and Helios files). Every source file is checked against that folder's ``SHA256SUMS`` first.
Each trace is parsed with its format's reader (so the bundle and ``load(path)`` agree) and written as
zstd-compressed parquet holding only the columns that differ from the schema defaults, plus the
columns that select a part (seed, cluster, workload, ...). ``manifest.json`` records each file's
sha256 and each catalogue entry's job count and span. Re-running on the same sources gives the same
tables.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dlsched_gym.errors import TraceFormatError
from dlsched_gym.traces import elasticflow, gavel, pcs, philly_pollux, pollux, synergy
from dlsched_gym.workload import SCHEMA, Workload

DATA = Path(__file__).resolve().parent / "data"
MANIFEST = "manifest.json"
#: Pollux workload folder -> the ``scale`` option value.
POLLUX_SCALES = {
    "workloads-0.5": "0.5",
    "workloads": "1",
    "workloads-1.5": "1.5",
    "workloads-2.0": "2",
    "workloads-realistic": "realistic",
}
SYNERGY_FILES = {"static-100": "static_100job_6_3_1100.0.csv", "test": "test_trace.csv"}


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sources(source: Path) -> None:
    """Check every file listed in ``SOURCE/SHA256SUMS`` (raises TraceFormatError on a mismatch)."""
    for line in (source / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split(maxsplit=1)
        if (source / rel).exists() and sha256_of(source / rel) != digest:
            raise TraceFormatError(f"{source / rel}: sha256 differs from SHA256SUMS ({digest})")


def compact(table: pd.DataFrame, keys: dict[str, Any] | None = None) -> pd.DataFrame:
    """The table without columns that hold only their schema default, plus constant key columns."""
    keep = []
    for column, (_, default, _) in SCHEMA.items():
        col = table[column]
        if column in ("min_gpus", "max_gpus"):
            is_default = bool((col == table["num_gpus"]).all())
        elif isinstance(default, float):
            is_default = bool(col.isna().all())
        else:
            is_default = default is not None and bool((col == default).all())
        if not is_default:
            keep.append(column)
    out = table[keep].copy()
    for k, v in (keys or {}).items():
        out.insert(0, k, v)
    return out


def write_parquet(frames: list[pd.DataFrame], filename: str) -> Path:
    """Concatenate ``frames`` (filling absent schema columns with defaults) and write zstd parquet."""
    table = pd.concat(frames, ignore_index=True)
    for column, (_, default, _) in SCHEMA.items():
        if column in table.columns and table[column].isna().any() and default is not None:
            if not (isinstance(default, float) and np.isnan(default)):
                table[column] = table[column].fillna(default)
    path = DATA / filename
    pq.write_table(
        pa.Table.from_pandas(table, preserve_index=False), path, compression="zstd", compression_level=19
    )
    return path


def _members(archive: Path, tmp: Path) -> Path:
    out = tmp / archive.name.removesuffix(".tar.gz")
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(out, filter="data")
    return out


def build_philly(src: Path, tmp: Path) -> dict[str, Any]:
    """philly.parquet from the Pollux-processed Philly table."""
    wl = philly_pollux.read(src / "philly/pollux_philly_jobs.csv.gz", name="philly")
    write_parquet([compact(wl.table)], "philly.parquet")
    return {"philly.parquet": _attrs(wl)}


def build_gavel(src: Path, tmp: Path) -> dict[str, Any]:
    """gavel_throughputs.parquet and gavel_philly.parquet (5 seeds x 15 VCs)."""
    tput = gavel.parse_throughputs(src / "gavel/simulation_throughputs.json.gz")
    pq.write_table(
        pa.Table.from_pandas(tput, preserve_index=False),
        DATA / gavel.THROUGHPUT_FILE,
        compression="zstd",
        compression_level=19,
    )
    gavel._bundled_throughputs.cache_clear()
    root = _members(src / "gavel/gavel_msr_traces.tar.gz", tmp) / "msr"
    frames, extrapolated = [], 0
    for trace in sorted(root.glob("seed=*/*.trace")):
        seed = int(trace.parent.name.split("=")[1])
        wl = gavel.read(trace, vc=trace.stem)
        extrapolated += wl.attrs["augmented"]["duration"]["extrapolated_jobs"]
        frames.append(compact(wl.table, {"seed": seed}))
    write_parquet(frames, "gavel_philly.parquet")
    rule = {"rule": wl.attrs["augmented"]["duration"]["rule"], "extrapolated_jobs_in_file": extrapolated}
    return {"gavel_philly.parquet": {"augmented": {"duration": rule}}}


def build_pcs(src: Path, tmp: Path) -> dict[str, Any]:
    """pcs_philly.parquet (12 VC files)."""
    root = _members(src / "pcs/pcs_philly_vc_traces.tar.gz", tmp) / "traces"
    frames = [
        compact(pcs.read(f, vc=f.stem.removeprefix("trace_")).table) for f in sorted(root.glob("*.csv"))
    ]
    write_parquet(frames, "pcs_philly.parquet")
    return {"pcs_philly.parquet": {}}


def build_elasticflow(src: Path, tmp: Path) -> dict[str, Any]:
    """elasticflow.parquet (10 clusters; the augmented files, checked against the raw ones) and the
    two artifact traces."""
    raw = _members(src / "elasticflow/raw-traces.tar.gz", tmp)
    aug = _members(src / "elasticflow/elasticflow-traces.tar.gz", tmp)
    frames = []
    for k in range(1, 11):
        a = elasticflow.read(aug / f"cluster{k:02d}.csv")
        r = elasticflow.read(raw / f"cluster{k:02d}.csv")
        same = ["job_id", "submit_time", "duration", "num_gpus"]
        if not a.table[same].equals(r.table[same]):
            raise TraceFormatError(f"cluster{k:02d}.csv: raw and augmented traces differ in {same}")
        frames.append(compact(a.table, {"cluster": k}))
    write_parquet(frames, "elasticflow.parquet")
    out = {"elasticflow.parquet": {}}
    for stem, filename in (
        ("philly_103959", "elasticflow_philly_103959.parquet"),
        ("elasticVpollux_e", "elasticflow_pollux_195.parquet"),
    ):
        wl = elasticflow.read(src / f"elasticflow/{stem}.csv")
        write_parquet([compact(wl.table)], filename)
        out[filename] = _attrs(wl)
    return out


def build_pollux(src: Path, tmp: Path) -> dict[str, Any]:
    """pollux.parquet (8 workloads x 5 scales); durations from elasticVpollux_e.csv medians."""
    durations = pollux.median_durations(elasticflow.read(src / "elasticflow/elasticVpollux_e.csv").table)
    root = _members(src / "pollux/pollux_workloads.tar.gz", tmp)
    frames = []
    for folder, scale in POLLUX_SCALES.items():
        for k in range(1, 9):
            wl = pollux.read(root / folder / f"workload-{k}.csv", durations=durations)
            frames.append(compact(wl.table, {"workload": k, "scale": scale}))
    write_parquet(frames, "pollux.parquet")
    augmented = {"duration": {"rule": pollux.DURATION_RULE, "seconds": durations}}
    return {"pollux.parquet": {"augmented": augmented}}


def build_synergy(src: Path, tmp: Path) -> dict[str, Any]:
    """synergy.parquet (the two example traces, default unit options)."""
    frames = []
    for key, filename in SYNERGY_FILES.items():
        wl = synergy.read(src / "synergy" / filename)
        frames.append(compact(wl.table, {"trace": key}))
    write_parquet(frames, "synergy.parquet")
    return {"synergy.parquet": {"augmented": wl.attrs["augmented"]}}


def build_helios(src: Path, tmp: Path) -> dict[str, Any]:
    """helios_cluster_summary.parquet and helios_vc_gpus.parquet (calibration inputs)."""
    summary = pd.read_csv(src / "helios/helios_cluster_summary.csv")
    pq.write_table(
        pa.Table.from_pandas(summary, preserve_index=False),
        DATA / "helios_cluster_summary.parquet",
        compression="zstd",
    )
    frames = []
    for cluster in ("Venus", "Earth"):
        wide = pd.read_csv(src / f"helios/{cluster}_cluster_gpu_number.csv").drop(columns="total")
        long = wide.melt(id_vars="date", var_name="vc", value_name="gpus")
        long.insert(0, "cluster", cluster.lower())
        frames.append(long)
    vcs = pd.concat(frames, ignore_index=True)
    pq.write_table(
        pa.Table.from_pandas(vcs, preserve_index=False), DATA / "helios_vc_gpus.parquet", compression="zstd"
    )
    return {"helios_cluster_summary.parquet": {}, "helios_vc_gpus.parquet": {}}


def _attrs(wl: Workload) -> dict[str, Any]:
    keep = ("augmented", "rules", "excluded", "unused_columns", "time_offset_s")
    return {k: v for k, v in wl.attrs.items() if k in keep}


#: The build steps, in order (Pollux needs nothing built before it; Gavel's throughputs come first).
STEPS: tuple[Callable[[Path, Path], dict[str, Any]], ...] = (
    build_philly,
    build_gavel,
    build_pcs,
    build_elasticflow,
    build_pollux,
    build_synergy,
    build_helios,
)


def build(source: Path) -> dict[str, Any]:
    """Build every bundled file and the manifest; returns the manifest."""
    verify_sources(source)
    files: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for step in STEPS:
            files.update(step(source, Path(tmp)))
    manifest: dict[str, Any] = {"files": {}, "catalogue": {}}
    for name, attrs in sorted(files.items()):
        manifest["files"][name] = {"sha256": sha256_of(DATA / name), "attrs": attrs}
    (DATA / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    from dlsched_gym.traces import library  # reads the manifest just written

    library.reset_cache()
    for name in library.CATALOGUE:
        wl = library.load(name)
        manifest["catalogue"][name] = {"jobs": len(wl), "span_seconds": wl.span_seconds}
    (DATA / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="folder with the public trace files (see SOURCES.md)")
    args = parser.parse_args(argv)
    manifest = build(args.source)
    total = sum((DATA / f).stat().st_size for f in manifest["files"])
    for name, entry in manifest["catalogue"].items():
        print(f"{name:32s} {entry['jobs']:>8d} jobs  {entry['span_seconds'] / 86400:8.1f} days")
    print(f"{len(manifest['files'])} files, {total / 1e6:.2f} MB in {DATA}")


if __name__ == "__main__":
    main()
