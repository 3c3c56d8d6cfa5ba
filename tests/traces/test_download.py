"""download(): file:// URLs, checksum verification, safe unpacking, and instructions on failure."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from dlsched_gym import traces
from dlsched_gym.errors import ConfigError, DownloadError
from dlsched_gym.traces import fetch as dl

FIX = Path(__file__).parent / "fixtures"


def make_tar(path: Path, members: dict[str, bytes], link: tuple[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link[0])
            info.type = tarfile.SYMTYPE
            info.linkname = link[1]
            tar.addfile(info)
    return path


def test_single_file_download_then_load(tmp_path):
    src = FIX / "trace_seren.csv"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    folder = traces.download("acme-seren", cache_dir=tmp_path / "cache", url=src.as_uri(),
                             sha256={"trace_seren.csv": digest})  # pinned by the caller
    assert folder == tmp_path / "cache" / "acme-seren"
    wl = traces.load(folder / "trace_seren.csv", format="acme")
    assert wl.table["job_id"].tolist() == ["s1", "s3"]


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DLSCHED_CACHE", str(tmp_path / "env-cache"))
    folder = traces.download("acme-kalos", allow_unpinned=True, url=(FIX / "trace_seren.csv").as_uri())
    assert folder == tmp_path / "env-cache" / "acme-kalos" and (folder / "trace_kalos.csv").is_file()


def test_zip_archive_is_unpacked(tmp_path):
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(FIX / "helios_cluster_log.csv", "data/Venus/cluster_log.csv")
    folder = traces.download("helios", allow_unpinned=True, cache_dir=tmp_path / "cache",
                             url=archive.as_uri())
    wl = traces.load(folder / "data" / "Venus" / "cluster_log.csv", format="helios")
    assert wl.table["job_id"].tolist() == ["j1", "j5", "j4"]


def test_several_files_from_a_base_url(tmp_path):
    src = tmp_path / "oss"
    src.mkdir()
    make_tar(
        src / "pai_job_table.tar.gz", {"pai_job_table.csv": (FIX / "pai/pai_job_table.csv").read_bytes()}
    )
    make_tar(
        src / "pai_task_table.tar.gz", {"pai_task_table.csv": (FIX / "pai/pai_task_table.csv").read_bytes()}
    )
    folder = traces.download("alibaba-pai-2020", allow_unpinned=True, cache_dir=tmp_path / "cache",
                             url=src.as_uri() + "/")
    assert traces.load(folder).table["job_id"].tolist() == ["j1", "j2"]


def test_philly_sha256_mismatch_deletes_partial_file(tmp_path):
    fake = make_tar(tmp_path / "trace-data.tar.gz", {"cluster_job_log": b"[]"})
    with pytest.raises(
        DownloadError, match="sha256 mismatch.*expected 2037ccf63a72.*partial file .* was deleted"
    ):
        traces.download("philly", cache_dir=tmp_path / "cache", url=fake.as_uri())
    assert list((tmp_path / "cache" / "philly").iterdir()) == []


def test_matching_sha256_is_accepted_and_cached(tmp_path, monkeypatch):
    data = (FIX / "trace_seren.csv").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    remote = dl.Remote(
        "acme-seren",
        "test",
        (dl.RemoteFile("trace_seren.csv", "https://example.invalid/x", digest),),
        "https://example.invalid",
        "CC BY 4.0",
    )
    monkeypatch.setitem(dl.REMOTES, "acme-seren", remote)
    url = (FIX / "trace_seren.csv").as_uri()
    folder = traces.download("acme-seren", allow_unpinned=True, cache_dir=tmp_path, url=url)
    assert (folder / "trace_seren.csv").read_bytes() == data
    # cached: a second call does not fetch (a broken URL would fail otherwise)
    assert traces.download("acme-seren", allow_unpinned=True, cache_dir=tmp_path,
                           url="file:///nonexistent/x") == folder


def test_unreachable_url_says_where_to_put_the_file(tmp_path):
    with pytest.raises(
        DownloadError,
        match=r"could not download.*by hand.*save it as .*philly/trace-data\.tar\.gz"
        r" and check that its sha256 is 2037ccf63a72",
    ):
        traces.download("philly", cache_dir=tmp_path, url=(tmp_path / "missing.tar.gz").as_uri())
    assert not list((tmp_path / "philly").iterdir())


def test_path_traversal_and_links_are_refused(tmp_path):
    evil = make_tar(tmp_path / "evil.tar.gz", {"../outside.txt": b"x"})
    with pytest.raises(DownloadError, match=r"member '\.\./outside\.txt' would be written outside"):
        dl.extract(evil, tmp_path / "out")
    linked = make_tar(tmp_path / "link.tar.gz", {"a.txt": b"x"}, link=("b.txt", "/etc/passwd"))
    with pytest.raises(DownloadError, match="member 'b.txt' is a link"):
        dl.extract(linked, tmp_path / "out2")
    zevil = tmp_path / "evil.zip"
    with zipfile.ZipFile(zevil, "w") as zf:
        zf.writestr("/abs.txt", b"x")
    with pytest.raises(DownloadError, match="would be written outside"):
        dl.extract(zevil, tmp_path / "out3")
    assert not (tmp_path / "outside.txt").exists()


def test_unknown_name():
    with pytest.raises(ConfigError, match="unknown download 'nope'.*acme-kalos"):
        traces.download("nope")


def test_unpinned_download_is_refused_unless_allowed(tmp_path):
    src = FIX / "trace_seren.csv"
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match=r"trace_seren\.csv has no published sha256.*allow_unpinned=True"):
        traces.download("acme-seren", cache_dir=cache, url=src.as_uri())
    assert not (cache / "acme-seren" / "trace_seren.csv").exists()  # nothing fetched
    with pytest.warns(UserWarning, match="downloaded without verification"):
        folder = traces.download("acme-seren", cache_dir=cache, url=src.as_uri(), allow_unpinned=True)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    assert (folder / "trace_seren.csv.sha256").read_text().strip() == digest
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        traces.download("acme-seren", cache_dir=tmp_path / "other", url=src.as_uri(),
                        sha256={"trace_seren.csv": "0" * 64})
    with pytest.raises(ConfigError, match=r"unknown file\(s\) \['x.csv'\]"):
        traces.download("acme-seren", cache_dir=cache, sha256={"x.csv": digest})
