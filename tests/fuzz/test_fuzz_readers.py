"""Fuzzing every trace reader with malformed, truncated and wrong-format files.

The readers document three errors (:func:`dlsched_gym.traces.readers.read`): ``TraceFormatError``
(the file does not match its format), ``WorkloadError`` (a row violates the normalized schema) and
``ConfigError`` (unknown format or option, or a format that cannot be inferred). Whatever the bytes
in the file, a reader must either return a valid workload or raise one of them with a message that
names the file; a bad value in a well-formed row must also name the row and the field. Any other
exception (``KeyError``, ``IndexError``, ``UnicodeDecodeError``, pandas' ``ValueError``, ...) is a
reader bug.

Inputs start from the hand-written fixtures in ``tests/traces/fixtures/`` and are mutated: random
bytes, truncation (also of gzip'd files), corrupt gzip streams, random field values (non-numeric,
negative, NaN, infinite, huge, empty, odd Unicode), broken structure (missing, extra and renamed
columns, dropped and duplicated lines, other separators, quotes), other text encodings, random JSON
for the Philly job log and Gavel's throughput table, random parquet tables, and every fixture read
with every other format's reader.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlsched_gym.errors import ConfigError, TraceFormatError, WorkloadError
from dlsched_gym.traces import readers
from dlsched_gym.workload import SCHEMA, Workload
from tests.fuzz.budget import fuzz_settings

FIX = Path(__file__).parents[1] / "traces" / "fixtures"

#: The errors a reader documents.
DOCUMENTED = (ConfigError, TraceFormatError, WorkloadError)

#: Format -> its single-file fixtures (the Alibaba PAI tables, a folder of two, are fuzzed apart).
SAMPLES: dict[str, tuple[str, ...]] = {
    "philly-job-log": ("cluster_job_log",),
    "philly-pollux": ("pollux_philly.csv",),
    "helios": ("helios_cluster_log.csv",),
    "acme": ("trace_seren.csv",),
    "elasticflow": ("elasticflow_raw.csv", "elasticflow_artifact.csv"),
    "pollux": ("pollux_workload.csv",),
    "synergy": ("synergy_trace.csv",),
    "gavel": ("gavel_msr.trace", "gavel_physical.trace"),
    "pcs": ("pcs_trace.csv",),
    "normalized": ("normalized.csv",),
}
#: (format, fixture) pairs of the delimited-text formats, and their field separators.
DELIMITED = [(fmt, name) for fmt, names in SAMPLES.items() if fmt != "philly-job-log" for name in names]
SEP = {"gavel": "\t"}
#: Formats whose files have no header line.
HEADERLESS = ("synergy", "gavel")
PAI_TABLES = ("pai_job_table.csv", "pai_task_table.csv")

#: Field values that have broken parsers before: empty, blanks, NaN spellings, signs, infinities,
#: overflow, underflow, huge integers, bad dates, odd Unicode.
NASTY = ["", " ", "nan", "NaN", "NA", "null", "None", "-1", "-0", "-1e-9", "inf", "-inf", "Infinity",
         "1e400", "1e308", "1e-320", "9" * 30, "1.5", "0", "0x10", "1_000", "True", "abc", "\u00e9",
         "\U0001f600", "\x00", "2020-13-45 99:99:99", "2017-10-03", "2023-03-01T08:00:00Z",
         "1970-01-01 00:00:00", "9999-12-31 23:59:59", "NaT", "[]", "{}"]
#: Characters that would change a delimited file's structure rather than one field's value.
STRUCTURE_CHARS = ",\t\n\r\"'"

field_values = st.one_of(
    st.sampled_from(NASTY),
    st.text(st.characters(blacklist_characters=STRUCTURE_CHARS, blacklist_categories=("Cs",)),
            max_size=12),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(2**70), 2**70).map(str),
)
options = st.fixed_dictionaries({}, optional={"lenient": st.booleans(), "drop_invalid": st.booleans()})
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers(-(2**64), 2**64) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh folder per example (hypothesis reruns a test body many times in one test call)."""
    folder = Path(tempfile.mkdtemp(prefix="dlsched-fuzz-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_workload(wl: Workload) -> None:
    """A returned workload satisfies the normalized schema."""
    t = wl.table
    assert list(t.columns) == list(SCHEMA)
    submit, duration = t["submit_time"].to_numpy(), t["duration"].to_numpy()
    assert np.isfinite(submit).all() and (submit >= 0).all()
    assert np.isfinite(duration).all() and (duration > 0).all()
    assert (t["num_gpus"] >= 1).all()
    assert (t["min_gpus"] <= t["num_gpus"]).all() and (t["num_gpus"] <= t["max_gpus"]).all()
    assert t["job_id"].is_unique
    assert (np.diff(submit) >= 0).all()


def read_or_error(path: Path, fmt: str | None, *, names: tuple[Path, ...] = (), **opts):
    """Read ``path``; return the workload (checked) or the documented error, whose message must
    name the file (or one of ``names``, for a reader of several files). Anything else propagates
    and fails the test."""
    try:
        wl = readers.read(path, format=fmt, **opts)
    except DOCUMENTED as exc:
        msg = str(exc)
        assert any(str(p) in msg for p in (path, *names)), f"error does not name the file: {msg}"
        return exc
    check_workload(wl)
    return wl


def names_row_and_field(exc: Exception) -> bool:
    """The message says which row and which field (or column) was bad."""
    msg = str(exc)
    return bool(re.search(r"\brow \d+", msg) and re.search(r"\b(field|column) '", msg))


def split_fields(fmt: str, name: str) -> tuple[list[list[str]], str]:
    """A delimited fixture as rows of fields (header first, if any), and its separator."""
    sep = SEP.get(fmt, ",")
    lines = (FIX / name).read_text().rstrip("\n").split("\n")
    return [line.split(sep) for line in lines], sep


def join_fields(rows: list[list[str]], sep: str) -> str:
    """The inverse of :func:`split_fields`."""
    return "\n".join(sep.join(r) for r in rows) + "\n"


# --------------------------------------------------------------------------------------------------
# Byte-level damage
# --------------------------------------------------------------------------------------------------


@fuzz_settings(80)
@given(fmt=st.sampled_from([*SAMPLES, None]), data=st.binary(max_size=400), gz=st.booleans(),
       which=st.integers(0, 1), opts=options)
def test_random_bytes(fmt, data, gz, which, opts):
    names = SAMPLES.get(fmt, ("cluster_job_log", "helios_cluster_log.csv", "gavel_msr.trace", "x.csv"))
    name = names[which % len(names)]
    with scratch() as tmp:
        path = tmp / (name + (".gz" if gz else ""))
        path.write_bytes(data)
        read_or_error(path, fmt, **opts)


@fuzz_settings(80)
@given(sample=st.sampled_from([(f, n) for f, ns in SAMPLES.items() for n in ns]),
       cut=st.floats(0, 1), gz=st.sampled_from(["plain", "gzip", "gzip-truncated", "gzip-corrupt"]),
       flip=st.integers(0, 10**6), opts=options)
def test_truncated_and_corrupt_gzip(sample, cut, gz, flip, opts):
    fmt, name = sample
    data = (FIX / name).read_bytes()
    if gz == "plain":
        data = data[: int(len(data) * cut)]
    else:
        data = gzip.compress(data)
        if gz == "gzip-truncated":
            data = data[: int(len(data) * cut)]
        elif gz == "gzip-corrupt":  # damage the deflate stream, past the 10-byte gzip header
            pos = 10 + flip % max(len(data) - 18, 1)
            data = data[:pos] + bytes([data[pos] ^ 0x5A]) + data[pos + 1:]
    with scratch() as tmp:
        path = tmp / (name + ("" if gz == "plain" else ".gz"))
        path.write_bytes(data)
        read_or_error(path, fmt, **opts)


@fuzz_settings(60)
@given(sample=st.sampled_from([(f, n) for f, ns in SAMPLES.items() for n in ns]),
       encoding=st.sampled_from(["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252", "utf-8-sig",
                                 "shift_jis"]),
       accent=st.sampled_from(["", "\u00e9", "\u00fc\u00df", "\u65e5\u672c"]), at=st.integers(0, 10**6),
       opts=options)
def test_other_text_encodings(sample, encoding, accent, at, opts):
    fmt, name = sample
    text = (FIX / name).read_text()
    pos = at % (len(text) + 1)
    text = text[:pos] + accent + text[pos:]
    with scratch() as tmp:
        path = tmp / name
        path.write_bytes(text.encode(encoding, errors="replace"))
        read_or_error(path, fmt, **opts)


@pytest.mark.parametrize("fmt", ["helios", "philly-job-log", "gavel"])
def test_corrupt_gzip_stream(tmp_path, fmt):
    # Flipping a byte inside the deflate stream makes zlib raise zlib.error, which is not an
    # OSError; readers used to let it through.
    name = SAMPLES[fmt][0]
    data = bytearray(gzip.compress((FIX / name).read_bytes() * 4))
    data[len(data) // 2] ^= 0xFF
    data[len(data) // 2 + 1] ^= 0x55
    path = tmp_path / (name + ".gz")
    path.write_bytes(bytes(data))
    with pytest.raises(TraceFormatError, match=re.escape(str(path))):
        readers.read(path, format=fmt)


def test_non_utf8_error_names_the_line(tmp_path):
    # Line 3 of the Helios fixture gets a Latin-1 'é' (byte 0xe9), which is not UTF-8.
    lines = (FIX / "helios_cluster_log.csv").read_text().split("\n")
    lines[2] = lines[2].replace("uB", "u\u00e9")
    path = tmp_path / "cluster_log.csv"
    path.write_bytes("\n".join(lines).encode("latin-1"))
    with pytest.raises(TraceFormatError, match=r"cluster_log.csv: line 3: not UTF-8 text \(byte 0xe9"):
        readers.read(path, format="helios")


@pytest.mark.parametrize("content", [b"", b"   \n\n", b"\xef\xbb\xbf", b"\n"], ids=["empty", "blank",
                                                                               "bom", "newline"])
@pytest.mark.parametrize("sample", [(f, n) for f, ns in SAMPLES.items() for n in ns[:1]],
                         ids=lambda s: s[0])
def test_empty_files(tmp_path, sample, content):
    fmt, name = sample
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DOCUMENTED) as info:
        readers.read(path, format=fmt)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("sample", [(f, n) for f, n in DELIMITED if f not in HEADERLESS], ids=lambda s: s[1])
def test_header_only_files_are_empty_workloads_or_errors(tmp_path, sample):
    fmt, name = sample
    path = tmp_path / name
    path.write_text((FIX / name).read_text().split("\n")[0] + "\n")
    result = read_or_error(path, fmt)
    assert isinstance(result, DOCUMENTED) or len(result) == 0


# --------------------------------------------------------------------------------------------------
# Field-level damage: one bad value in a well-formed row must be reported with its row and field
# --------------------------------------------------------------------------------------------------


@fuzz_settings(100)
@given(sample=st.sampled_from(DELIMITED), picks=st.lists(st.tuples(st.integers(0, 99), st.integers(0, 99),
                                                                   field_values), min_size=1, max_size=3),
       opts=options)
def test_bad_field_values(sample, picks, opts):
    fmt, name = sample
    rows, sep = split_fields(fmt, name)
    first = 0 if fmt in HEADERLESS else 1
    for r, c, value in picks:
        row = rows[first + r % (len(rows) - first)]
        row[c % len(row)] = value
    with scratch() as tmp:
        path = tmp / name
        path.write_bytes(join_fields(rows, sep).encode("utf-8", errors="surrogatepass"))
        result = read_or_error(path, fmt, **opts)
    if isinstance(result, (TraceFormatError, WorkloadError)) and not opts.get("lenient"):
        assert names_row_and_field(result), f"error does not name row and field: {result}"


@pytest.mark.parametrize(("fmt", "name", "field", "value", "expected"), [
    # a negative, NaN, infinite or non-numeric duration is reported with its row and field
    ("helios", "helios_cluster_log.csv", 10, "-3600", r"row 0 \(line 2\), field 'duration': expected a "
                                                      r"number >= 0, got '-3600'"),
    ("helios", "helios_cluster_log.csv", 10, "NaN", r"row 0 \(line 2\), field 'duration'"),
    ("elasticflow", "elasticflow_raw.csv", 2, "inf", r"row 0 \(line 2\), field 'duration'"),
    ("pcs", "pcs_trace.csv", 2, "fast", r"row 0 \(line 2\), field 'service': expected a number"),
    # an integer field beyond 2**53 would wrap around in int64 (it used to become -2**63 GPUs)
    ("pcs", "pcs_trace.csv", 3, "1e308", r"row 0 \(line 2\), field 'num_jobs': expected an integer "
                                         r"<= 2\*\*53"),
    ("synergy", "synergy_trace.csv", 4, "9" * 30, r"row 0 \(line 1\), field 'gpu_demand': expected an "
                                                  r"integer <= 2\*\*53"),
    ("pollux", "pollux_workload.csv", 3, "1e20", r"row 0 \(line 2\), field 'num_replicas'"),
    ("normalized", "normalized.csv", 3, "1e300", r"row 0 \(job_id 'x'\), column 'num_gpus': expected an "
                                                 r"integer <= 2\*\*53 \(9007199254740992\), got 1e\+300$"),
])
def test_bad_values_are_named(tmp_path, fmt, name, field, value, expected):
    rows, sep = split_fields(fmt, name)
    rows[0 if fmt in HEADERLESS else 1][field] = value
    path = tmp_path / name
    path.write_text(join_fields(rows, sep))
    with pytest.raises((TraceFormatError, WorkloadError), match=expected):
        readers.read(path, format=fmt)


# --------------------------------------------------------------------------------------------------
# Structure-level damage
# --------------------------------------------------------------------------------------------------


def _damage(rows: list[list[str]], kind: str, i: int, token: str) -> list[list[str]]:
    rows = [list(r) for r in rows]
    if not rows:  # every line already dropped: an empty file
        return rows
    r = i % len(rows)
    if kind == "drop-line":
        del rows[r]
    elif kind == "duplicate-line":
        rows.insert(r, list(rows[r]))
    elif kind == "blank-line":
        rows.insert(r, [""])
    elif kind == "extra-field":
        rows[r].append(token)
    elif kind == "missing-field" and len(rows[r]) > 1:
        rows[r].pop(i % len(rows[r]))
    elif kind == "drop-column":
        c = i % len(rows[0])
        rows = [row[:c] + row[c + 1:] for row in rows]
    elif kind == "rename-column":
        rows[0][i % len(rows[0])] = token
    elif kind == "swap-columns" and len(rows[0]) > 1:
        c = i % (len(rows[0]) - 1)
        for row in rows:
            if len(row) > c + 1:
                row[c], row[c + 1] = row[c + 1], row[c]
    elif kind == "quote":
        row = rows[r]
        row[i % len(row)] = '"' + row[i % len(row)]
    return rows


@fuzz_settings(120)
@given(sample=st.sampled_from(DELIMITED),
       damage=st.lists(st.tuples(st.sampled_from(["drop-line", "duplicate-line", "blank-line",
                                                  "extra-field", "missing-field", "drop-column",
                                                  "rename-column", "swap-columns", "quote"]),
                                 st.integers(0, 99), field_values), min_size=1, max_size=3),
       sep=st.sampled_from(["same", ",", "\t", ";"]), newline=st.sampled_from(["\n", "\r\n"]),
       opts=options)
def test_broken_structure(sample, damage, sep, newline, opts):
    fmt, name = sample
    rows, own_sep = split_fields(fmt, name)
    for kind, i, token in damage:
        rows = _damage(rows, kind, i, token)
    text = join_fields(rows, own_sep if sep == "same" else sep).replace("\n", newline)
    with scratch() as tmp:
        path = tmp / name
        path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        read_or_error(path, fmt, **opts)


@pytest.mark.parametrize("fmt", sorted(readers.READERS))
def test_every_fixture_with_every_reader(tmp_path, fmt):
    opts = {"task_table": FIX / "pai" / "pai_task_table.csv"} if fmt == "alibaba-pai-2020" else {}
    for names in [*SAMPLES.values(), [f"pai/{t}" for t in PAI_TABLES]]:
        for name in names:
            for lenient in (False, True):
                path = FIX / name
                read_or_error(path, fmt, names=(opts.get("task_table", path),), lenient=lenient, **opts)


# --------------------------------------------------------------------------------------------------
# JSON formats: Philly's cluster_job_log and Gavel's throughput table
# --------------------------------------------------------------------------------------------------

PHILLY_JOBS = json.loads((FIX / "cluster_job_log").read_text())


@st.composite
def philly_documents(draw) -> object:
    """The fixture's jobs with random keys replaced, deleted or added, or random JSON."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    jobs = json.loads(json.dumps(PHILLY_JOBS))
    for _ in range(draw(st.integers(1, 4))):
        target = jobs[draw(st.integers(0, len(jobs) - 1))]
        if not isinstance(target, dict):
            continue
        attempts = target.get("attempts")
        if isinstance(attempts, list) and attempts and draw(st.booleans()):
            target = attempts[draw(st.integers(0, len(attempts) - 1))]
            if not isinstance(target, dict):
                continue
            detail = target.get("detail")
            if isinstance(detail, list) and detail and isinstance(detail[0], dict) and draw(st.booleans()):
                target = detail[0]
        key = draw(st.sampled_from(sorted(target) + ["extra"]))
        action = draw(st.sampled_from(["replace", "delete", "timestamp"]))
        if action == "delete":
            target.pop(key, None)
        elif action == "timestamp":
            target[key] = draw(st.sampled_from(["2017-10-03 10:00:00", "2017-10-03T10:00:00+05:00",
                                                "2017-10-03", "10:00", "2017-10-03 09:00:00Z", "None"]))
        else:
            target[key] = draw(json_values)
    if draw(st.integers(0, 4)) == 0:
        jobs.append(draw(json_values))
    return jobs


@fuzz_settings(100)
@given(doc=philly_documents(), opts=options)
def test_philly_job_log_json(doc, opts):
    with scratch() as tmp:
        path = tmp / "cluster_job_log"
        path.write_text(json.dumps(doc))
        result = read_or_error(path, "philly-job-log", **opts)
    if isinstance(result, TraceFormatError) and isinstance(doc, list) and not opts.get("lenient"):
        assert names_row_and_field(result), f"error does not name row and field: {result}"


@pytest.mark.parametrize("text", ["[" * 100_000, "[]" * 3, "{\"a\": 1}", "null", "\"jobs\""],
                         ids=["deep", "trailing", "object", "null", "string"])
def test_philly_job_log_not_an_array(tmp_path, text):
    path = tmp_path / "cluster_job_log"
    path.write_text(text)
    with pytest.raises(TraceFormatError, match="cluster_job_log: not a philly-job-log file"):
        readers.read(path, format="philly-job-log")


def test_philly_mixed_utc_offsets_are_named(tmp_path):
    # Attempt 0 of job 0 starts with a UTC offset and ends without one: the two cannot be
    # subtracted (this used to raise Python's TypeError).
    jobs = json.loads(json.dumps(PHILLY_JOBS))
    jobs[0]["attempts"][0]["start_time"] = "2017-10-03T10:00:30+05:00"
    path = tmp_path / "cluster_job_log"
    path.write_text(json.dumps(jobs))
    with pytest.raises(TraceFormatError, match=r"row 0, field 'attempts\[0\].end_time': expected a "
                                               r"timestamp with a UTC offset"):
        readers.read(path, format="philly-job-log")


GAVEL_TPUT = json.loads((FIX / "gavel_throughputs.json").read_text())


@st.composite
def gavel_throughput_documents(draw) -> object:
    """The fixture's throughput table with random parts replaced, or random JSON."""
    if draw(st.booleans()):
        return draw(json_values)
    doc = json.loads(json.dumps(GAVEL_TPUT))
    worker = draw(st.sampled_from(sorted(doc)))
    if draw(st.booleans()):
        doc[worker] = draw(json_values)
    else:
        key = draw(st.sampled_from(sorted(doc[worker])))
        doc[worker][key] = draw(st.one_of(json_values, st.fixed_dictionaries({"null": json_values})))
    return doc


@fuzz_settings(100)
@given(doc=gavel_throughput_documents(), nan=st.booleans())
def test_gavel_throughput_json(doc, nan):
    with scratch() as tmp:
        tput = tmp / "throughputs.json"
        tput.write_text(json.dumps(doc, allow_nan=nan) if nan or _finite(doc) else "{")
        read_or_error(FIX / "gavel_msr.trace", "gavel", names=(tput,), throughputs=tput)


@pytest.mark.parametrize(("doc", "expected"), [
    ([1, 2], "expected a JSON object worker type"),
    ({"v100": []}, "v100: expected an object job key"),
    ({"v100": {"('A3C', 1)": {"null": "fast"}}}, "key \"\\('A3C', 1\\)\": expected"),
    ({"v100": {"('A3C', 1)": 5.0}}, "key \"\\('A3C', 1\\)\": expected"),
    ({"v100": {}}, "no throughputs"),
    ({"k80": {"('A3C', 1)": {"null": 1.0}}}, "worker_type 'v100' is not in .*throughputs.json"),
])
def test_gavel_throughput_json_errors(tmp_path, doc, expected):
    # Each of these used to escape as AttributeError, ValueError or an error naming no file.
    tput = tmp_path / "throughputs.json"
    tput.write_text(json.dumps(doc))
    with pytest.raises((TraceFormatError, ConfigError), match=expected):
        readers.read(FIX / "gavel_msr.trace", format="gavel", throughputs=tput)


def test_gavel_zero_throughput_is_named(tmp_path):
    # Gavel's tables hold 0 steps/s for infeasible (job type, scale factor) pairs. Line 4 of
    # gavel_msr.trace is A3C at scale factor 1: with A3C at 0 steps/s its duration would be
    # 50 / 0 = inf (it used to surface as normalize's "duration ... got inf").
    doc = json.loads(json.dumps(GAVEL_TPUT))
    doc["v100"]["('A3C', 1)"] = {"null": 0.0}
    tput = tmp_path / "throughputs.json"
    tput.write_text(json.dumps(doc))
    with pytest.raises(TraceFormatError, match=r"gavel_msr.trace: row 3 \(line 4\), field 'job_type': "
                                               r"expected a job type that runs on v100.*0 steps/s"):
        readers.read(FIX / "gavel_msr.trace", format="gavel", throughputs=tput)


def _finite(doc: object) -> bool:
    if isinstance(doc, float):
        return math.isfinite(doc)
    if isinstance(doc, list):
        return all(_finite(x) for x in doc)
    if isinstance(doc, dict):
        return all(_finite(x) for x in doc.values())
    return True


# --------------------------------------------------------------------------------------------------
# Alibaba PAI: two headerless tables joined on job_name
# --------------------------------------------------------------------------------------------------


@fuzz_settings(60)
@given(table=st.sampled_from(PAI_TABLES),
       picks=st.lists(st.tuples(st.integers(0, 99), st.integers(0, 99), field_values), max_size=3),
       damage=st.lists(st.tuples(st.sampled_from(["drop-line", "duplicate-line", "blank-line",
                                                  "extra-field", "missing-field", "quote"]),
                                 st.integers(0, 99), field_values), max_size=2),
       cut=st.one_of(st.none(), st.floats(0, 1)), via=st.sampled_from(["folder", "job-table"]),
       opts=options)
def test_alibaba_tables(table, picks, damage, cut, via, opts):
    rows = [line.split(",") for line in (FIX / "pai" / table).read_text().rstrip("\n").split("\n")]
    for r, c, value in picks:
        row = rows[r % len(rows)]
        row[c % len(row)] = value
    for kind, i, token in damage:
        rows = _damage(rows, kind, i, token)
    data = join_fields(rows, ",").encode("utf-8", errors="surrogatepass")
    if cut is not None:
        data = data[: int(len(data) * cut)]
    with scratch() as tmp:
        for name in PAI_TABLES:
            (tmp / name).write_bytes(data if name == table else (FIX / "pai" / name).read_bytes())
        path = tmp if via == "folder" else tmp / PAI_TABLES[0]
        result = read_or_error(path, "alibaba-pai-2020", names=tuple(tmp / n for n in PAI_TABLES), **opts)
    if isinstance(result, (TraceFormatError, WorkloadError)) and not (damage or cut is not None
                                                                       or opts.get("lenient")):
        assert names_row_and_field(result), f"error does not name row and field: {result}"


def test_alibaba_missing_task_table(tmp_path):
    shutil.copy(FIX / "pai" / "pai_job_table.csv", tmp_path / "pai_job_table.csv")
    with pytest.raises(TraceFormatError, match="needs pai_task_table.csv"):
        readers.read(tmp_path, format="alibaba-pai-2020")
    with pytest.raises(TraceFormatError, match="needs"):
        readers.read(tmp_path / "pai_job_table.csv", format="alibaba-pai-2020", task_table=tmp_path)


# --------------------------------------------------------------------------------------------------
# Normalized parquet tables of random content
# --------------------------------------------------------------------------------------------------

column_values = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=3, max_size=3),
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=3, max_size=3),
    st.lists(st.text(max_size=8), min_size=3, max_size=3),
    st.lists(st.booleans(), min_size=3, max_size=3),
    st.lists(st.one_of(st.none(), st.floats(0, 100)), min_size=3, max_size=3),
    st.just("datetime"),
    st.just("timedelta"),
)


@fuzz_settings(60)
@given(columns=st.dictionaries(st.sampled_from([*SCHEMA, "bogus"]), column_values, min_size=1, max_size=8),
       base=st.booleans(), opts=options)
def test_normalized_parquet(columns, base, opts):
    data = {"job_id": ["a", "b", "c"], "submit_time": [0.0, 1.0, 2.0], "duration": [5.0, 5.0, 5.0],
            "num_gpus": [1, 2, 4]} if base else {}
    for name, values in columns.items():
        if values == "datetime":
            values = pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"])
        elif values == "timedelta":
            values = pd.to_timedelta([1, 2, 3], unit="s")
        data[name] = values
    with scratch() as tmp:
        path = tmp / "jobs.parquet"
        pd.DataFrame(data).to_parquet(path)
        read_or_error(path, "normalized", **opts)


def test_normalized_parquet_dates_and_overflowing_integers(tmp_path):
    # A datetime submit_time used to be read silently as microseconds since 1970 (1.5e15 s); a
    # uint64 num_gpus of 2**63 + 5 used to wrap around to -2**63 + 5 GPUs in the int64 column.
    base = {"job_id": ["a", "b"], "submit_time": [0.0, 1.0], "duration": [5.0, 5.0]}
    dates = tmp_path / "dates.parquet"
    pd.DataFrame({**base, "num_gpus": [1, 1],
                  "submit_time": pd.to_datetime(["2020-01-01", "2020-01-02"])}).to_parquet(dates)
    with pytest.raises(TraceFormatError, match=r"dates.parquet: column 'submit_time' holds datetime64"):
        readers.read(dates)
    huge = tmp_path / "huge.parquet"
    pd.DataFrame({**base, "num_gpus": np.array([1, 2**63 + 5], dtype=np.uint64)}).to_parquet(huge)
    with pytest.raises(WorkloadError, match=r"huge.parquet: row 1 \(job_id 'b'\), column 'num_gpus': "
                                            r"expected an integer <= 2\*\*53"):
        readers.read(huge)
    wl = readers.read(huge, lenient=True)  # the row is dropped and counted instead
    assert wl.table["job_id"].tolist() == ["a"]
    assert wl.attrs["dropped"] == {"num_gpus: expected an integer <= 2**53 (9007199254740992)": 1}
