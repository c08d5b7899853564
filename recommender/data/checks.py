"""Value checks shared by the catalogue reader and ingest, and safe file reading.

Every value is checked in its widest form (text, or int64/uint64/float64 as
pandas read it) *before* any cast, against the limits of the database columns
it is bound for, so nothing wraps around (2**64 - 1 is not -1), nothing is
silently clipped, and SQLite and PostgreSQL accept exactly the same files.
Messages name the file, the line and the original text of the value.
"""

from __future__ import annotations

import bz2
import csv
import io
import lzma
import re
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.core.validate import MAX_ID
from recommender.errors import DataFormatError

#: Longest ``type`` the anime table stores (its column is VARCHAR(32)).
MAX_TYPE_LENGTH = 32
#: Longest text kept in any other catalogue column (titles are far shorter; more is abuse).
MAX_TEXT_LENGTH = 100_000
_PANDAS_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (library messages can run to many lines)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else exc.__class__.__name__


def _reading_problem(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, PermissionError):
        return "cannot be read (permission denied)"
    if isinstance(exc, zipfile.BadZipFile):
        return "is not a valid zip archive"
    if isinstance(exc, tarfile.TarError):
        return "is not a valid tar archive"
    if isinstance(exc, lzma.LZMAError):
        return "is not a valid xz/lzma file"
    if isinstance(exc, EOFError):
        return "the compressed data ends early (is the file truncated?)"
    if isinstance(exc, zlib.error) or type(exc).__name__ == "BadGzipFile":
        return "is not a valid gzip file"
    if isinstance(exc, UnicodeDecodeError):
        return "is not UTF-8 text (save it as UTF-8 and try again)"
    if isinstance(exc, ImportError):
        return f"needs a decompression library that is not installed ({one_line(exc)})"
    if isinstance(exc, pd.errors.EmptyDataError):
        return "is empty (no header line)"
    if isinstance(exc, pd.errors.ParserError):
        match = _PANDAS_FIELDS.search(str(exc))
        if match:
            expected, line, saw = match.groups()
            return f"line {line}: {saw} fields where the header has {expected}"
        return f"is not valid CSV: {one_line(exc)}"
    return f"cannot be read: {one_line(exc)}"


#: What reading a (possibly compressed) CSV can raise besides our own errors.
READ_ERRORS = (OSError, EOFError, ValueError, ImportError, zipfile.BadZipFile,
               tarfile.TarError, lzma.LZMAError, zlib.error, csv.Error, UnicodeDecodeError,
               pd.errors.ParserError, pd.errors.EmptyDataError, MemoryError)


@contextmanager
def reading(path: Path):
    """Turn any error of reading ``path`` (compression included) into one DataFormatError."""
    try:
        yield
    except DataFormatError:
        raise
    except READ_ERRORS as exc:
        raise DataFormatError(f"{path}: {_reading_problem(exc)}") from None


def open_text(path: Path) -> io.TextIOBase:
    """``path`` as UTF-8 text, decompressed by its suffix (.gz, .bz2, .xz, .zip), strictly.

    A BOM is dropped. Decompression errors surface while reading, so callers
    read under :func:`reading`.
    """
    suffix = path.suffix.lower()
    if suffix == ".gz":
        import gzip

        raw = gzip.open(path, "rb")
    elif suffix == ".bz2":
        raw = bz2.open(path, "rb")
    elif suffix in (".xz", ".lzma"):
        raw = lzma.open(path, "rb")
    elif suffix == ".zip":
        archive = zipfile.ZipFile(path)
        names = [n for n in archive.namelist() if not n.endswith("/")]
        if len(names) != 1:
            raise DataFormatError(f"{path}: a zip archive must hold exactly one file, "
                                  f"it holds {len(names)}")
        raw = archive.open(names[0])
    elif suffix in (".tar", ".zst", ".zstd", ".7z", ".rar"):
        raise DataFormatError(f"{path}: {suffix} files are not supported; give a .csv, "
                              ".csv.gz, .bz2, .xz or .zip")
    else:
        raw = open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")


def record_lines(text: str) -> list[int]:
    """The physical line (1-based) on which each CSV record after the header starts.

    A quoted field may span lines (a name with a line break), so record ``i``
    is not always on line ``i + 2``.
    """
    reader = csv.reader(io.StringIO(text))
    starts, previous = [], 0
    for number, _row in enumerate(reader):
        if number > 0:
            starts.append(previous + 1)
        previous = reader.line_num
    return starts


def first_data_row_too_long(text_head: str) -> int | None:
    """The field count of the first data row when it has more fields than the header.

    pandas would otherwise take the extra leading field as an index and shift
    every column, or silently drop it.
    """
    rows = list(csv.reader(io.StringIO(text_head)))[:2]
    if len(rows) == 2 and len(rows[1]) > len(rows[0]):
        return len(rows[1])
    return None


def line_of(lines: Sequence[int] | None, row: int) -> int:
    """The line of record ``row`` (0-based), from :func:`record_lines` when known."""
    return lines[row] if lines is not None and row < len(lines) else row + 2


def first_bad_number(values: pd.Series, low: int, high: int, *, missing: str = "error",
                     text: pd.Series | None = None) -> tuple[np.ndarray, int | None, str]:
    """``values`` as numbers, checked in the type pandas read them as, before any cast.

    Returns the values (int64; float64 with NaN for empty cells when ``missing``
    is "na"), the first row that is not a whole number in [low, high] (None
    when all are) and what is wrong with it, quoting the original text
    (``text``, default ``values``).
    """
    shown = values if text is None else text
    kind = values.dtype.kind
    if kind in "iu" and pd.api.types.is_extension_array_dtype(values.dtype):
        # A nullable integer column (pandas' Int64): its NA cells take the float path.
        values = values.astype("float64") if values.isna().any() else values.astype("int64")
        kind = values.dtype.kind
    if kind in "iu":
        raw = values.to_numpy()
        bad = (raw < low) | (raw > high)  # compared in the column's own dtype: no wrap
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            return raw, row, f"{str(shown.iloc[row])[:40]} is outside {low}..{high}"
        return raw.astype(np.int64), None, ""
    if kind == "b":
        return (np.zeros(len(values), np.int64), 0,
                f"{str(shown.iloc[0])[:40]!r} is not an integer")
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    absent = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
    with np.errstate(invalid="ignore"):
        bad = (~np.isfinite(numbers) | (numbers != np.round(numbers))
               | (numbers < low) | (numbers > high))
    if missing == "na":
        bad &= ~absent
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        if absent[row]:
            return numbers, row, "is missing"
        value = str(shown.iloc[row])[:40]
        whole = np.isfinite(numbers[row]) and numbers[row] == np.round(numbers[row])
        return numbers, row, f"{value!r} " + (f"is outside {low}..{high}" if whole
                                              else "is not an integer")
    return (numbers if missing == "na" else numbers.astype(np.int64)), None, ""


def whole_numbers(values: pd.Series, name: str, low: int, high: int,
                  where: Callable[[int], str], *, missing: str = "error",
                  text: pd.Series | None = None) -> np.ndarray:
    """:func:`first_bad_number`, raising :class:`DataFormatError` at ``where(row)``."""
    numbers, row, problem = first_bad_number(values, low, high, missing=missing, text=text)
    if row is not None:
        raise DataFormatError(f"{where(row)}: {name} {problem}")
    return numbers


def checked_text(values: pd.Series, name: str, where: Callable[[int], str],
                 max_length: int = MAX_TEXT_LENGTH) -> pd.Series:
    """Text cells with no NUL byte (PostgreSQL rejects them) and at most ``max_length``."""
    text = values.fillna("").astype(str)
    nul = text.str.contains("\x00", regex=False).to_numpy()
    if nul.any():
        raise DataFormatError(f"{where(int(np.flatnonzero(nul)[0]))}: {name} contains a NUL "
                              "byte")
    long = (text.str.len() > max_length).to_numpy()
    if long.any():
        raise DataFormatError(f"{where(int(np.flatnonzero(long)[0]))}: {name} is longer than "
                              f"{max_length} characters")
    return text


__all__ = ["MAX_ID", "MAX_TEXT_LENGTH", "MAX_TYPE_LENGTH", "READ_ERRORS", "checked_text",
           "first_bad_number", "first_data_row_too_long", "line_of", "one_line", "open_text",
           "reading", "record_lines", "whole_numbers"]
