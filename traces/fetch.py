"""Fetch the large public job logs that are not bundled, into a local cache.

:data:`REMOTES` lists them: the full Philly release, the Helios data set, the Alibaba PAI 2020 job and
task tables, and the Acme Seren/Kalos job traces. :func:`download` streams each file to
``<cache>/<name>/`` (cache: ``cache_dir``, else ``$DLSCHED_CACHE``, else ``$XDG_CACHE_HOME/dlsched-gym``
or ``~/.cache/dlsched-gym``), verifies its sha256 where one is published, and unpacks archives safely
(no absolute paths, no ``..``, no links). Read the result with :func:`dlsched_gym.traces.load` and the
format named in the entry, e.g. ``load(folder / "cluster_log.csv", format="helios")``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import stat
import tarfile
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from dlsched_gym.errors import ConfigError, DownloadError

CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One file of a remote data set.

    Attributes:
        filename: its name in the cache folder.
        url: where it is published.
        sha256: its published sha256, or None where none is published (then it is not verified).
    """

    filename: str
    url: str
    sha256: str | None = None


@dataclasses.dataclass(frozen=True)
class Remote:
    """A downloadable data set.

    Attributes:
        name: the name passed to :func:`download`.
        description: what it is and which reader format reads it.
        files: its files.
        page: the page to fetch it from by hand.
        license: the data license.
    """

    name: str
    description: str
    files: tuple[RemoteFile, ...]
    page: str
    license: str


_PAI = "https://aliopentrace.oss-cn-beijing.aliyuncs.com/v2020GPUTraces/"
_ACME = "https://github.com/InternLM/AcmeTrace/raw/main/data/job_trace/"
#: Name -> downloadable data set.
REMOTES: dict[str, Remote] = {
    r.name: r
    for r in (
        Remote(
            "philly",
            "Philly trace-data.tar.gz (1.06 GB; cluster_job_log: format 'philly-job-log'), "
            "sha256 = the Git LFS oid of the release",
            (
                RemoteFile(
                    "trace-data.tar.gz",
                    "https://media.githubusercontent.com/media/msr-fiddle/philly-traces/master/trace-data.tar.gz",
                    "2037ccf63a725a02be718b0e1aeee6142c90b7f62d0d849295120e9f6ba13d2c",
                ),
            ),
            "https://github.com/msr-fiddle/philly-traces",
            "CC BY 4.0",
        ),
        Remote(
            "helios",
            "Helios data.zip (36.4 MB; <cluster>/cluster_log.csv: format 'helios')",
            (RemoteFile("data.zip", "https://github.com/S-Lab-System-Group/HeliosData/raw/main/data.zip"),),
            "https://github.com/S-Lab-System-Group/HeliosData",
            "CC BY 4.0",
        ),
        Remote(
            "alibaba-pai-2020",
            "Alibaba PAI 2020 job and task tables (format 'alibaba-pai-2020')",
            (
                RemoteFile("pai_job_table.tar.gz", _PAI + "pai_job_table.tar.gz"),
                RemoteFile("pai_task_table.tar.gz", _PAI + "pai_task_table.tar.gz"),
            ),
            "https://github.com/alibaba/clusterdata/tree/master/cluster-trace-gpu-v2020",
            "CC BY 4.0",
        ),
        Remote(
            "acme-seren",
            "Acme Seren job trace (format 'acme')",
            (RemoteFile("trace_seren.csv", _ACME + "trace_seren.csv"),),
            "https://github.com/InternLM/AcmeTrace",
            "CC BY 4.0",
        ),
        Remote(
            "acme-kalos",
            "Acme Kalos job trace (format 'acme')",
            (RemoteFile("trace_kalos.csv", _ACME + "trace_kalos.csv"),),
            "https://github.com/InternLM/AcmeTrace",
            "CC BY 4.0",
        ),
    )
}


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The cache folder: ``cache_dir``, ``$DLSCHED_CACHE``, or the user cache dir + ``dlsched-gym``."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("DLSCHED_CACHE"):
        return Path(os.environ["DLSCHED_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dlsched-gym"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _by_hand(remote: Remote, f: RemoteFile, target: Path) -> str:
    check = f" and check that its sha256 is {f.sha256}" if f.sha256 else ""
    return (
        f"download {f.url} (see {remote.page}) by hand, save it as {target}{check}, then call "
        f"download({remote.name!r}) again"
    )


def _fetch(remote: Remote, f: RemoteFile, url: str, target: Path) -> str:
    part = target.with_name(target.name + ".part")
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{remote.name}: could not download {url}: {exc}. To install it by hand: "
            f"{_by_hand(remote, f, target)}"
        ) from exc
    if f.sha256 and h.hexdigest() != f.sha256:
        part.unlink()
        raise DownloadError(
            f"{remote.name}: sha256 mismatch for {url}: expected {f.sha256}, got "
            f"{h.hexdigest()}; the partial file {part} was deleted"
        )
    part.replace(target)
    return h.hexdigest()


def _refuse(archive: Path, name: str, why: str) -> DownloadError:
    return DownloadError(f"{archive}: member {name!r} {why}; refusing to unpack")


def _check_name(archive: Path, name: str, dest: Path) -> None:
    """Refuse a member path that is absolute, has ``..`` or a backslash, or resolves outside ``dest``."""
    if "\\" in name:
        raise _refuse(archive, name, "has a backslash in its path (archives use '/')")
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not (dest / p).resolve().is_relative_to(dest.resolve()):
        raise _refuse(archive, name, "would be written outside the folder it is unpacked into")


#: Largest total unpacked size :func:`extract` accepts by default (the largest public trace
#: archive we know of, Alibaba's PAI tables, unpacks to a few GB).
MAX_UNPACKED_BYTES = 50 * 2**30


def extract(archive: Path, dest: Path, max_bytes: int = MAX_UNPACKED_BYTES) -> None:
    """Unpack a ``.tar.gz``/``.tgz``/``.tar`` or ``.zip`` into ``dest``.

    Every member is checked before anything is written: absolute paths, ``..`` components,
    backslashes, links (symbolic or hard, wherever they point) and special files (devices, FIFOs)
    are refused with a DownloadError naming the member. So is an archive whose members add up to
    more than ``max_bytes``, or to more than the free space where ``dest`` lies (member sizes are
    those the archive declares, which also bound what unpacking writes: a decompression bomb is
    refused before it is inflated). Tar members are then unpacked with tarfile's ``data`` filter (no
    set-uid bits, no foreign owners).
    """
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_name(archive, info.filename, dest)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise _refuse(archive, info.filename, "is a link")
            _check_size(archive, sum(i.file_size for i in zf.infolist()), dest, max_bytes)
            zf.extractall(dest)
        return
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            _check_name(archive, member.name, dest)
            if member.issym() or member.islnk():
                raise _refuse(archive, member.name, f"is a link (to {member.linkname!r})")
            if not (member.isfile() or member.isdir()):
                raise _refuse(archive, member.name, "is a special file (device or FIFO)")
        _check_size(archive, sum(m.size for m in members), dest, max_bytes)
        tar.extractall(dest, filter="data")


def _check_size(archive: Path, total: int, dest: Path, max_bytes: int) -> None:
    """Refuse unpacking ``total`` bytes above ``max_bytes`` or the free space at ``dest``."""
    if total > max_bytes:
        raise DownloadError(f"{archive}: unpacks to {total:,} bytes, more than the limit of "
                            f"{max_bytes:,} (pass a larger max_bytes if the archive is trusted)")
    where = Path(dest)
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    if total > free:
        raise DownloadError(f"{archive}: unpacks to {total:,} bytes, but only {free:,} are free "
                            f"on the disk of {where}")


def _is_archive(name: str) -> bool:
    return name.endswith((".tar.gz", ".tgz", ".tar", ".zip"))


def _unpack(remote: Remote, archive: Path, folder: Path) -> None:
    """Extract ``archive`` into a staging folder, then move its top-level items into ``folder``;
    items named like the data set's own files or the bookkeeping files are refused."""
    staging = folder / f".staging-{archive.name}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        extract(archive, staging)
        reserved = {f.filename for f in remote.files} | {f"{f.filename}.sha256" for f in remote.files}
        for item in staging.iterdir():
            if item.name in reserved or item.name.startswith((".unpacked-", ".staging-")):
                raise _refuse(archive, item.name, f"would replace {folder / item.name}, a file of the "
                              "download itself")
    except DownloadError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise DownloadError(f"{archive}: cannot unpack: {exc}") from exc
    for item in staging.iterdir():
        dest = folder / item.name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        elif dest.exists() or dest.is_symlink():
            dest.unlink()
        item.replace(dest)
    staging.rmdir()


def download(name: str, *, cache_dir: str | Path | None = None, url: str | None = None,
             sha256: Mapping[str, str] | None = None, allow_unpinned: bool = False) -> Path:
    """Download (if not cached) and unpack the data set ``name``; returns its cache folder.

    Every downloaded file is checked against a sha256: the published one, or one you pin with
    ``sha256``. A file with neither is not fetched unless ``allow_unpinned=True``; then its
    digest is written next to it (``<file>.sha256``) and shown in a warning, so that you can
    compare it with a trusted copy and pin it from then on.

    Args:
        name: a key of :data:`REMOTES`.
        cache_dir: the cache root (default: see :func:`cache_root`).
        url: another location: the file's URL for a one-file data set, or a base URL that the file
            names are appended to for a data set of several files (``file://`` works too).
        sha256: ``{file name: hex digest}`` pins for files without a published digest (or to
            override one).
        allow_unpinned: fetch files that have no digest at all, unverified.

    Raises:
        ConfigError: unknown name.
        DownloadError: the download failed (the message says where to put the file by hand), the
            sha256 did not match (the partial file is deleted), or an archive is unreadable or has
            a member :func:`extract` refuses (nothing of it is unpacked).
    """
    if name not in REMOTES:
        raise ConfigError(f"unknown download {name!r}; expected one of {sorted(REMOTES)}")
    remote = REMOTES[name]
    pins = dict(sha256 or {})
    unknown = sorted(set(pins) - {f.filename for f in remote.files})
    if unknown:
        raise ConfigError(f"download({name!r}): sha256 given for unknown file(s) {unknown}; the "
                          f"files are {[f.filename for f in remote.files]}")
    folder = cache_root(cache_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    for f in remote.files:
        f = dataclasses.replace(f, sha256=pins.get(f.filename, f.sha256))
        target = folder / f.filename
        source = f.url
        if url is not None:
            source = url if len(remote.files) == 1 else url.rstrip("/") + "/" + f.filename
        if target.exists() and f.sha256 and _sha256(target) != f.sha256:
            target.unlink()  # a stale or corrupt copy: fetch again
        if not target.exists():
            if f.sha256 is None and not allow_unpinned:
                raise DownloadError(
                    f"{name}: {f.filename} has no published sha256, so its download cannot be "
                    f"verified; pin it with download({name!r}, sha256={{{f.filename!r}: '<hex>'}}) "
                    f"or pass allow_unpinned=True to fetch it unverified (its digest is then "
                    f"written to {target}.sha256)")
            digest = _fetch(remote, f, source, target)
            if f.sha256 is None:
                (folder / f"{f.filename}.sha256").write_text(digest + "\n")
                warnings.warn(f"{name}: {f.filename} downloaded without verification; its sha256 "
                              f"is {digest} (pin it with sha256={{{f.filename!r}: ...}})",
                              stacklevel=2)
        marker = folder / f".unpacked-{f.filename}"
        if _is_archive(f.filename) and not marker.exists():
            _unpack(remote, target, folder)
            marker.touch()
    return folder
