"""Untrusted files: malicious trace archives are refused before anything is written, downloads
are checked against their pinned sha256 (a mismatch leaves no file), and the bundled agent's
sha256 is checked before its pickles are loaded.

Archives are built by hand in tmp_path; nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import stat
import tarfile
import zipfile
from importlib import resources
from pathlib import Path

import pytest

import dlsched_gym.agents.policies as policies
from dlsched_gym import traces
from dlsched_gym.cli import main
from dlsched_gym.errors import ConfigError, DownloadError
from dlsched_gym.traces import fetch


# ------------------------------------------------------------------------------------ archives
def make_tar(path: Path, *members: tuple[str, bytes | tuple[bytes, str]]) -> Path:
    """A .tar.gz of ``(name, data)`` regular files and ``(name, (type, linkname))`` other members
    (type: tarfile.SYMTYPE, LNKTYPE, CHRTYPE, FIFOTYPE)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, bytes):
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                info.type, info.linkname = content
                tar.addfile(info)
    return path


def make_zip(path: Path, *members: tuple[str, bytes, int | None]) -> Path:
    """A .zip of ``(name, data, unix mode or None)`` members."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


OK = ("ok.csv", b"job_id\n")  # a harmless member placed before the bad one

TAR_CASES = {
    "parent": (("../evil.txt", b"x"), "would be written outside"),
    "nested parent": (("data/../../evil.txt", b"x"), "would be written outside"),
    "absolute": (("/tmp/dlsched-evil.txt", b"x"), "would be written outside"),
    "backslash": (("..\\evil.txt", b"x"), "backslash"),
    "symlink out (absolute)": (("data", (tarfile.SYMTYPE, "/etc")), "is a link (to '/etc')"),
    "symlink out (relative)": (("data", (tarfile.SYMTYPE, "../../..")), "is a link"),
    "symlink inside": (("alias.csv", (tarfile.SYMTYPE, "ok.csv")), "is a link"),
    "hard link out": (("passwd", (tarfile.LNKTYPE, "/etc/passwd")), "is a link (to '/etc/passwd')"),
    "hard link inside": (("alias.csv", (tarfile.LNKTYPE, "ok.csv")), "is a link"),
    "device": (("tty", (tarfile.CHRTYPE, "")), "is a special file"),
    "fifo": (("pipe", (tarfile.FIFOTYPE, "")), "is a special file"),
}


@pytest.mark.parametrize("case", list(TAR_CASES))
def test_tar_member_refused_before_anything_is_written(tmp_path, case):
    member, needle = TAR_CASES[case]
    archive = make_tar(tmp_path / "evil.tar.gz", OK, member)
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError) as info:
        fetch.extract(archive, dest)
    msg = str(info.value)
    assert f"member {member[0]!r}" in msg and needle in msg and "refusing to unpack" in msg
    assert not dest.exists()  # not even the harmless member
    assert [p.name for p in tmp_path.rglob("*")] == ["evil.tar.gz"]


ZIP_CASES = {
    "parent": (("../evil.txt", b"x", None), "would be written outside"),
    "absolute": (("/evil.txt", b"x", None), "would be written outside"),
    "nested parent": (("data/../../evil.txt", b"x", None), "would be written outside"),
    "backslash": (("..\\evil.txt", b"x", None), "backslash"),
    "symlink": (("data", b"/etc", stat.S_IFLNK | 0o777), "is a link"),
}


@pytest.mark.parametrize("case", list(ZIP_CASES))
def test_zip_member_refused_before_anything_is_written(tmp_path, case):
    member, needle = ZIP_CASES[case]
    archive = make_zip(tmp_path / "evil.zip", (*OK, None), member)
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError, match="refusing to unpack") as info:
        fetch.extract(archive, dest)
    assert f"member {member[0]!r}" in str(info.value) and needle in str(info.value)
    assert not dest.exists()
    assert [p.name for p in tmp_path.rglob("*")] == ["evil.zip"]


def test_tar_setuid_bit_is_dropped(tmp_path):
    archive = tmp_path / "x.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("tool")
        info.size, info.mode = 1, 0o4755
        tar.addfile(info, io.BytesIO(b"x"))
    fetch.extract(archive, tmp_path / "dest")
    assert stat.S_IMODE((tmp_path / "dest" / "tool").stat().st_mode) & 0o7000 == 0


def test_download_of_a_malicious_archive_leaves_nothing_unpacked(tmp_path):
    archive = make_zip(tmp_path / "data.zip", ("data/Venus/cluster_log.csv", b"x", None),
                       ("../../escaped.txt", b"x", None))
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as info:
        traces.download("helios", allow_unpinned=True, cache_dir=cache, url=archive.as_uri())
    assert str(info.value) == (f"{cache / 'helios' / 'data.zip'}: member '../../escaped.txt' would be "
                               "written outside the folder it is unpacked into; refusing to unpack")
    # the download itself stays (for inspection, with its digest); nothing is unpacked or marked done
    assert sorted(p.name for p in (cache / "helios").iterdir()) == ["data.zip", "data.zip.sha256"]
    assert not list(tmp_path.rglob("escaped.txt"))


def test_archive_cannot_replace_the_downloads_own_files(tmp_path):
    # alibaba-pai-2020 has two archives; the first may not plant a file named like the second.
    src = tmp_path / "oss"
    src.mkdir()
    make_tar(src / "pai_job_table.tar.gz", ("pai_job_table.csv", b"x"), ("pai_task_table.tar.gz", b"x"))
    with pytest.raises(DownloadError, match="'pai_task_table.tar.gz' would replace .*download itself"):
        traces.download("alibaba-pai-2020", allow_unpinned=True, cache_dir=tmp_path / "cache",
                        url=src.as_uri() + "/")
    assert sorted(p.name for p in (tmp_path / "cache" / "alibaba-pai-2020").iterdir()) == \
        ["pai_job_table.tar.gz", "pai_job_table.tar.gz.sha256"]


def test_unreadable_archive_is_a_download_error(tmp_path):
    fake = tmp_path / "data.zip"
    fake.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(DownloadError, match=r"data\.zip: cannot unpack: File is not a zip file"):
        traces.download("helios", allow_unpinned=True, cache_dir=tmp_path / "cache", url=fake.as_uri())


# ------------------------------------------------------------------------------------ checksums
@pytest.fixture
def pinned(monkeypatch) -> bytes:
    """acme-seren pinned to the sha256 of b'job_id\\n1\\n' (the bytes a good download has)."""
    good = b"job_id\n1\n"
    remote = fetch.Remote("acme-seren", "test", (fetch.RemoteFile(
        "trace_seren.csv", "https://example.invalid/trace_seren.csv", hashlib.sha256(good).hexdigest()),),
        "https://example.invalid", "CC BY 4.0")
    monkeypatch.setitem(fetch.REMOTES, "acme-seren", remote)
    return good


def test_checksum_mismatch_raises_and_leaves_no_file(tmp_path, pinned):
    served = b"job_id\n2\n"  # one byte off
    bad = tmp_path / "served.csv"
    bad.write_bytes(served)
    expected, got = hashlib.sha256(pinned).hexdigest(), hashlib.sha256(served).hexdigest()
    with pytest.raises(DownloadError, match=f"sha256 mismatch.*expected {expected}, got {got}"):
        traces.download("acme-seren", allow_unpinned=True, cache_dir=tmp_path / "cache", url=bad.as_uri())
    assert list((tmp_path / "cache" / "acme-seren").iterdir()) == []  # no file, no .part


def test_corrupt_cached_copy_is_discarded(tmp_path, pinned):
    folder = tmp_path / "cache" / "acme-seren"
    folder.mkdir(parents=True)
    (folder / "trace_seren.csv").write_bytes(b"tampered")
    with pytest.raises(DownloadError, match="could not download"):  # refetched: the URL is broken
        traces.download("acme-seren", allow_unpinned=True, cache_dir=tmp_path / "cache", url="file:///nonexistent/x.csv")
    assert list(folder.iterdir()) == []
    good = tmp_path / "good.csv"
    good.write_bytes(pinned)
    folder = traces.download("acme-seren", allow_unpinned=True, cache_dir=tmp_path / "cache",
                             url=good.as_uri())
    assert (folder / "trace_seren.csv").read_bytes() == pinned


def test_mismatched_archive_is_never_unpacked(tmp_path):
    fake = make_tar(tmp_path / "trace-data.tar.gz", ("cluster_job_log", b"[]"), ("../evil", b"x"))
    with pytest.raises(DownloadError, match="sha256 mismatch"):  # philly is pinned
        traces.download("philly", cache_dir=tmp_path / "cache", url=fake.as_uri())
    assert list((tmp_path / "cache" / "philly").iterdir()) == []


# ------------------------------------------------------------------------------------ agent
@pytest.fixture
def pretrained_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the bundled pretrained folder that ``pretrained:philly`` resolves to."""
    filename, digest, _ = policies.PRETRAINED["philly"]
    source = Path(str(resources.files("dlsched_gym.agents").joinpath("pretrained")))
    if not (source / filename).is_file():
        pytest.skip("the pretrained agent is not built in this checkout")
    shutil.copytree(source, tmp_path / "pretrained")
    real = resources.files
    monkeypatch.setattr(policies.resources, "files",
                        lambda package: tmp_path if package == "dlsched_gym.agents" else real(package))
    return tmp_path / "pretrained" / filename


def test_untampered_copy_loads(pretrained_copy):
    assert policies.load_agent("pretrained:philly").window == 32


def test_tampered_agent_is_refused_before_unpickling(pretrained_copy, monkeypatch):
    data = bytearray(pretrained_copy.read_bytes())
    data[len(data) // 2] ^= 0x01  # flip one bit
    pretrained_copy.write_bytes(bytes(data))

    def must_not_load(*args, **kwargs):
        raise AssertionError("a tampered model was unpickled")

    monkeypatch.setattr(policies, "algorithms", lambda: {"maskable_ppo": must_not_load})
    expected = (f"pretrained agent 'philly': sha256 of {pretrained_copy} is "
                f"{hashlib.sha256(bytes(data)).hexdigest()}, expected {policies.PRETRAINED['philly'][1]}; "
                "refusing to unpickle it")
    with pytest.raises(ConfigError) as info:
        policies.load_agent("pretrained:philly")
    assert str(info.value) == expected


def test_tampered_agent_through_the_cli(pretrained_copy, tmp_path, capsys):
    pretrained_copy.write_bytes(pretrained_copy.read_bytes() + b"\0")
    trace = tmp_path / "trace.csv"
    trace.write_text("job_id,submit_time,duration,num_gpus\na,0,100,2\n")
    code = main(["simulate", "--trace", str(trace), "--cluster", "1x4", "--scheduler",
                 "agent:pretrained:philly", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("dlsched: error: pretrained agent 'philly': sha256 of")
    assert "refusing to unpickle it" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_decompression_bomb_refused_before_it_is_inflated(tmp_path):
    # 4 MiB of zeros compresses to a few KiB; with a 1 MiB limit neither archive is unpacked.
    bomb = b"\0" * (4 * 2**20)
    tar = make_tar(tmp_path / "bomb.tar.gz", ("zeros", bomb))
    zipped = tmp_path / "bomb.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros", bomb)
    assert tar.stat().st_size < 2**20 and zipped.stat().st_size < 2**20
    for archive in (tar, zipped):
        dest = tmp_path / f"dest-{archive.name}"
        with pytest.raises(DownloadError, match=r"unpacks to 4,194,304 bytes, more than the limit of "
                                                r"1,048,576"):
            fetch.extract(archive, dest, max_bytes=2**20)
        assert not dest.exists()
    fetch.extract(tar, tmp_path / "trusted", max_bytes=8 * 2**20)  # a larger limit lets it through
    assert (tmp_path / "trusted" / "zeros").stat().st_size == 4 * 2**20


def test_archive_larger_than_the_free_disk_space_is_refused(tmp_path, monkeypatch):
    archive = make_tar(tmp_path / "x.tar.gz", ("data.csv", b"x" * 1000))
    usage = shutil.disk_usage(tmp_path)._replace(free=999)
    monkeypatch.setattr(fetch.shutil, "disk_usage", lambda where: usage)
    with pytest.raises(DownloadError, match=r"unpacks to 1,000 bytes, but only 999 are free"):
        fetch.extract(archive, tmp_path / "a" / "b")
    assert not (tmp_path / "a").exists()
