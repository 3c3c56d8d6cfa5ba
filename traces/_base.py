"""Shared machinery of the raw-format readers: reading a delimited file, checking its rows.

A reader turns one public trace file into a :class:`~dlsched_gym.workload.Workload`. Two kinds of
rows never reach the workload, and both are reported, never dropped in silence:

- *malformed* rows (a missing field, a bad number or timestamp): by default the reader raises
  :class:`~dlsched_gym.errors.TraceFormatError` naming the file, the row and the field; with
  ``lenient=True`` it skips them and counts them by reason in ``attrs["skipped"]``;
- *unusable* rows that the trace records correctly but a GPU simulator cannot run (CPU-only jobs,
  jobs that never started, zero run time): always left out, counted by reason in
  ``attrs["excluded"]``.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import math
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlsched_gym.errors import TraceFormatError
from dlsched_gym.workload import Workload, normalize

#: Largest integer field a reader accepts: every integer up to 2**53 is exact in a float64, and
#: anything larger would overflow or lose digits in the schema's int64 columns.
MAX_INTEGER = 2**53

#: What reading a (possibly gzip'd) trace file may raise: I/O errors, a truncated gzip stream
#: (EOFError) and a corrupt one (zlib.error, which is not an OSError).
READ_ERRORS = (OSError, EOFError, zlib.error)


def open_bytes(path: Path) -> io.BufferedIOBase:
    """Open ``path`` for reading bytes, decompressing ``.gz`` files transparently."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_delimited(
    path: Path,
    *,
    format_name: str,
    sep: str = ",",
    columns: Sequence[str] | None = None,
    required: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a delimited text file as strings, checking its layout.

    Args:
        path: the file (``.gz`` is decompressed).
        format_name: the format's name, used in error messages.
        sep: the field separator.
        columns: for a headerless file, the field names in order; every line must have exactly this
            many fields. ``None`` for a file with a header line.
        required: for a file with a header, the columns it must have.

    Returns:
        A DataFrame of strings (missing fields are NaN), index 0..n-1. Row ``i`` is on line ``i + 1``
        of a headerless file and on line ``i + 2`` of a file with a header.

    Raises:
        TraceFormatError: if the file cannot be read, or its header or field count is wrong.
    """
    try:
        with open_bytes(path) as fh:
            data = fh.read()
    except READ_ERRORS as exc:
        raise TraceFormatError(f"{path}: cannot read {format_name} file: {exc}") from exc
    if not data.strip():
        raise TraceFormatError(f"{path}: empty file, expected a {format_name} file")
    check_utf8(path, data, format_name)
    data = data.rstrip(b"\r\n") + b"\n"  # blank lines at the very end are not rows (blank lines inside are)
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            sep=sep,
            header=None if columns is not None else 0,
            dtype=str,
            keep_default_na=False,
            na_values=[],
            skip_blank_lines=False,
            quoting=3 if sep == "\t" else 0,
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise TraceFormatError(f"{path}: not a valid {format_name} file: {exc}") from exc
    if columns is not None:
        if frame.shape[1] != len(columns):
            raise TraceFormatError(
                f"{path}: line 1 has {frame.shape[1]} fields, but a {format_name} file has "
                f"{len(columns)} per line ({', '.join(columns)})"
            )
        frame.columns = list(columns)
    else:
        frame.columns = [str(c).strip() for c in frame.columns]
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise TraceFormatError(
                f"{path}: not a {format_name} file: missing column(s) {missing}; expected columns "
                f"{list(required)}, found {list(frame.columns)}"
            )
    return frame


def check_utf8(path: Path | str, data: bytes, format_name: str) -> None:
    """Raise TraceFormatError naming the line and byte offset if ``data`` is not UTF-8 text."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TraceFormatError(
            f"{path}: line {line}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); "
            f"expected a {format_name} file in UTF-8"
        ) from exc


class RowChecker:
    """Parses the columns of a raw table row by row, failing on or skipping malformed rows.

    Args:
        path: the file, named in error messages.
        frame: the raw table (strings; NaN marks a missing field).
        lenient: skip malformed rows (counted in :meth:`attrs`) instead of raising.
        first_line: the file line of row 0 (2 after a header line, 1 without one); ``None`` for a
            file that is not line-based (JSON), whose rows are named by their index.
    """

    def __init__(
        self, path: Path | str, frame: pd.DataFrame, *, lenient: bool, first_line: int | None
    ) -> None:
        self.path = path
        self.frame = frame
        self.lenient = lenient
        self.first_line = first_line
        self.bad = np.zeros(len(frame), dtype=bool)
        self.skipped: dict[str, int] = {}
        self.excluded: dict[str, int] = {}

    def flag(self, mask: np.ndarray, field: str, expected: str, values: Sequence[Any] | None = None) -> None:
        """Mark the rows in ``mask`` as malformed in ``field`` (raise unless lenient)."""
        mask = np.asarray(mask, dtype=bool) & ~self.bad
        if not mask.any():
            return
        if not self.lenient:
            row = int(np.flatnonzero(mask)[0])
            shown = (values if values is not None else self.frame[field].to_numpy())[row]
            got = "an empty or missing field" if _missing(shown) else repr(shown)
            where = f"row {row}" if self.first_line is None else f"row {row} (line {row + self.first_line})"
            raise TraceFormatError(f"{self.path}: {where}, field {field!r}: expected {expected}, got {got}")
        reason = f"{field}: expected {expected}"
        self.skipped[reason] = self.skipped.get(reason, 0) + int(mask.sum())
        self.bad |= mask

    def exclude(self, mask: np.ndarray, reason: str) -> None:
        """Leave out the (well-formed) rows in ``mask`` for ``reason``, counting them."""
        mask = np.asarray(mask, dtype=bool) & ~self.bad
        if mask.any():
            self.excluded[reason] = self.excluded.get(reason, 0) + int(mask.sum())
            self.bad |= mask

    def text(self, field: str, *, required: bool = True) -> np.ndarray:
        """The column as stripped strings; with ``required``, a missing or empty field is malformed."""
        raw = self.frame[field]
        values = raw.fillna("").astype(str).str.strip().to_numpy(dtype=object)
        if required:
            self.flag((values == "") | raw.isna().to_numpy(), field, "a non-empty value")
        return values

    def number(
        self,
        field: str,
        *,
        integer: bool = False,
        minimum: float | None = None,
        allow_missing: bool = False,
    ) -> np.ndarray:
        """The column as floats; non-numbers, non-integers and integers above :data:`MAX_INTEGER`
        (if ``integer``) and values below ``minimum`` are malformed. With ``allow_missing``, empty
        fields become NaN."""
        raw = self.frame[field]
        stripped = raw.fillna("").astype(str).str.strip()
        values = pd.to_numeric(stripped.replace("", np.nan), errors="coerce").to_numpy(dtype=float)
        empty = (stripped == "").to_numpy()
        bad = np.isnan(values) & ~(empty & allow_missing)
        bad |= np.isinf(values)
        kind = "an integer" if integer else "a number"
        if integer:
            bad |= ~np.isnan(values) & (np.mod(np.nan_to_num(values), 1) != 0)
        if minimum is not None:
            bad |= values < minimum
            kind += f" >= {minimum:g}"
        self.flag(bad, field, kind)
        if integer:
            too_big = np.abs(np.nan_to_num(values)) > MAX_INTEGER
            self.flag(too_big, field, f"an integer <= 2**53 ({MAX_INTEGER})")
        return values

    def timestamp(self, field: str, *, fmt: str | None, allow_missing: bool = False) -> np.ndarray:
        """The column as POSIX seconds (float).

        ``fmt`` is a ``strptime`` format (e.g. ``"%Y-%m-%d %H:%M:%S"``), or ``None`` for ISO 8601 with a
        UTC offset (``2023-03-01 08:00:00+08:00``). Naive times are taken as UTC, which only matters
        for absolute values: readers use differences.
        """
        raw = self.frame[field]
        stripped = raw.fillna("").astype(str).str.strip()
        empty = (stripped == "").to_numpy()
        if fmt is None:
            parsed = pd.to_datetime(stripped, errors="coerce", utc=True, format="ISO8601")
        else:
            parsed = pd.to_datetime(stripped, errors="coerce", format=fmt)
        values = parsed.to_numpy(dtype="datetime64[ns]").astype("int64").astype(float) / 1e9
        values[parsed.isna().to_numpy()] = np.nan
        bad = np.isnan(values) & ~(empty & allow_missing)
        self.flag(bad, field, f"a timestamp like {_example(fmt)}")
        return values

    def keep(self) -> np.ndarray:
        """Boolean mask of the rows that passed every check and were not excluded."""
        return ~self.bad

    def attrs(self) -> dict[str, Any]:
        """``{"skipped": ..., "excluded": ...}`` counts for the workload's attrs (empty ones left out)."""
        out: dict[str, Any] = {}
        if self.skipped:
            out["skipped"] = dict(self.skipped)
        if self.excluded:
            out["excluded"] = dict(self.excluded)
        return out


def _missing(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def _example(fmt: str | None) -> str:
    if fmt is None:
        return "'2023-03-01 08:00:00+08:00'"
    return repr(pd.Timestamp("2020-04-01 13:05:09").strftime(fmt))


def check_only_columns(
    path: Path | str, frame: pd.DataFrame, allowed: Sequence[str], format_name: str
) -> None:
    """Raise TraceFormatError if ``frame`` has a column outside ``allowed`` (a typo must not pass)."""
    extra = [c for c in frame.columns if c not in allowed]
    if extra:
        raise TraceFormatError(
            f"{path}: unexpected column(s) {extra} for a {format_name} file; expected a subset of "
            f"{list(allowed)}"
        )


def rebase(times: np.ndarray) -> tuple[np.ndarray, float]:
    """Shift ``times`` so the earliest is 0; returns the shifted array and the offset removed."""
    if len(times) == 0:
        return times, 0.0
    offset = float(np.nanmin(times))
    return times - offset, offset


@dataclasses.dataclass(frozen=True)
class Reader:
    """One raw trace format.

    Attributes:
        name: the format name passed as ``format=`` (e.g. ``"helios"``).
        description: one line: which files, from where.
        read: ``read(path, *, lenient=False, drop_invalid=False, name=None, **options) -> Workload``.
        options: the format-specific keyword options ``read`` accepts (besides the common ones).
        suffixes: file name endings that identify the format on their own (e.g. ``".trace"``).
        header: for a CSV with a header line, the columns that identify the format.
    """

    name: str
    description: str
    read: Callable[..., Workload]
    options: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    header: tuple[str, ...] = ()


#: Options every reader accepts.
COMMON_OPTIONS = ("lenient", "drop_invalid", "name")


def finish(
    columns: dict[str, Any],
    checker: RowChecker,
    path: Path | str,
    *,
    name: str,
    drop_invalid: bool,
    meta: dict[str, str],
    attrs: dict[str, Any] | None = None,
) -> Workload:
    """Keep the good rows, re-base times to the first submission, and normalize.

    ``columns`` maps schema columns to per-row arrays (or scalars); ``submit_time`` and ``deadline``
    are absolute and are shifted together so that the first kept submission is at 0 (the shift is
    recorded in ``attrs["time_offset_s"]``).
    """
    keep = checker.keep()
    table = pd.DataFrame(
        {k: (np.asarray(v)[keep] if np.ndim(v) else v) for k, v in columns.items()},
        index=range(int(keep.sum())),
    )
    submit, offset = rebase(table["submit_time"].to_numpy(dtype=float))
    table["submit_time"] = submit
    if "deadline" in table.columns:
        table["deadline"] = table["deadline"].to_numpy(dtype=float) - offset
    out_attrs = {"path": str(path), "time_offset_s": offset, **(attrs or {}), **checker.attrs()}
    return normalize(table, name=name, where=str(path), drop_invalid=drop_invalid, attrs=out_attrs, **meta)
