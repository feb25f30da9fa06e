"""Assign the rows of a table of points (enterprises by address point) to their owners.

A CSV written to a CSV is streamed in chunks of rows, so files far larger than memory go
through; Excel ``.xlsx`` and Parquet (in, or out: the output's format follows its extension)
are read whole. Each chunk is located in one vectorised call. The lon/lat columns are found by
their usual names (经度/lon/lng/x, 纬度/lat/y: `geo.columns.find_coordinates`) unless named.
A bad row never aborts the file: it is written with status ``invalid`` and a reason. Status
``ok``: a community owns the point; ``outside``: the point is valid but no community owns it.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from geo import crs as crs_mod
from geo.atlas import LEVELS, Atlas
from geo.columns import find_coordinates
from geo.errors import InvalidInput
from geo.io import InputError, defuse_formula, write_csv
from geo.sources import read_source, suffix_of

OUTPUT_COLUMNS = [f"{name}_id" for name in LEVELS] + ["status", "reason"]
OUTPUT_SUFFIXES = (".csv", ".xlsx", ".parquet")
_WHOLE_TABLES = (".xlsx", ".parquet", ".geoparquet")  # read whole; any other input streams as CSV


class BatchError(InvalidInput):
    """The file as a whole cannot be processed (missing columns, unreadable)."""


@dataclass
class BatchSummary:
    """What a batch assignment did: rows read, and rows by status (ok, outside, invalid)."""

    rows: int = 0
    status: dict[str, int] = field(default_factory=lambda: {"ok": 0, "outside": 0, "invalid": 0})


def detect_encoding(path: Path, probe_bytes: int = 1 << 20) -> str:
    """A first guess from the file's first ``probe_bytes``: ``utf-8-sig`` when they decode as
    UTF-8, else ``gb18030`` (GBK). An ASCII start proves nothing: `assign_csv` starts over in
    GB18030 when a later byte is not UTF-8."""
    with path.open("rb") as f:
        head = f.read(probe_bytes)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the probe's end
            return "gb18030"
    return "utf-8-sig"


FIELD_LIMIT = 1 << 24  # characters in one CSV field (Python's csv default is 131,072)


def assign_csv(
    atlas: Atlas,
    src: Path,
    dst: Path,
    *,
    crs: str | None = None,
    lon_col: str | None = None,
    lat_col: str | None = None,
    crs_col: str = "crs",
    chunk_rows: int = 100_000,
    progress: Callable[[int], None] | None = None,
) -> BatchSummary:
    """Write ``dst`` (CSV): every row of ``src`` (CSV) plus `OUTPUT_COLUMNS`, streaming.

    The CRS is ``crs`` when given, else the row's ``crs_col`` when the file has one, else WGS84.
    The coordinate columns are ``lon_col``/``lat_col``, found by name when not given.
    ``progress`` is called with the number of input bytes read so far. The text is read as
    UTF-8 unless its first megabyte says GBK; a file that turns out not to be UTF-8 further
    on is read again from the start as GB18030 (one pass in the common cases, two at worst).
    Nothing is left at ``dst`` (nor beside it) when this raises.
    """
    if crs is not None:
        crs = crs_mod.normalize_crs(crs)
    if csv.field_size_limit() < FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)
    tmp = dst.with_name(dst.name + ".part")
    encoding = detect_encoding(src)
    try:
        try:
            summary = _stream(atlas, src, tmp, encoding, crs, (lon_col, lat_col, crs_col),
                              chunk_rows, progress)  # fmt: skip
        except UnicodeDecodeError:
            if encoding == "gb18030":
                raise
            encoding = "gb18030"  # an ASCII (or UTF-8-looking) start, GBK further on
            summary = _stream(atlas, src, tmp, encoding, crs, (lon_col, lat_col, crs_col),
                              chunk_rows, progress)  # fmt: skip
        tmp.replace(dst)
    except UnicodeDecodeError as exc:
        raise BatchError(
            f"{src}: not UTF-8 nor GBK/GB18030 text (byte {exc.start} of a block: {exc.reason})"
            "; save it as CSV in UTF-8"
        ) from exc
    except csv.Error as exc:
        raise BatchError(
            f"{src}: not a readable CSV file ({exc}; fields may hold at most "
            f"{FIELD_LIMIT:,} characters); save it as CSV"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return summary


def _stream(
    atlas: Atlas,
    src: Path,
    tmp: Path,
    encoding: str,
    crs: str | None,
    names: tuple[str | None, str | None, str],
    chunk_rows: int,
    progress: Callable[[int], None] | None,
) -> BatchSummary:
    """One pass of `assign_csv`: ``src`` read as ``encoding``, written to ``tmp``."""
    lon_col, lat_col, crs_col = names
    summary = BatchSummary()
    with src.open("rb") as raw, tmp.open("w", encoding="utf-8-sig", newline="") as out:
        reader = csv.reader(io.TextIOWrapper(raw, encoding=encoding, newline=""))
        header = next(reader, None)
        if not header:
            raise BatchError(f"{src} is empty: expected a header row with lon/lat columns")
        cols = _columns(src, header, lon_col, lat_col, crs_col if crs is None else None)
        writer = csv.writer(out)
        writer.writerow([defuse_formula(c) for c in header] + OUTPUT_COLUMNS)
        for rows in _chunks(reader, chunk_rows):
            result = _assign_rows(atlas, rows, cols, crs)
            writer.writerows(_padded(rows, len(header), result))
            _count(summary, result)
            if progress:
                progress(raw.tell())
    return summary


def _padded(rows: list[list[str]], width: int, result: list[list[str]]) -> Iterator[list[str]]:
    """Output rows: the input cells (formulas defused, padded to the header) + the owners."""
    for r, extra in zip(rows, result, strict=True):
        yield [defuse_formula(c) for c in (r + [""] * (width - len(r)))[:width]] + extra


def _count(summary: BatchSummary, result: list[list[str]]) -> None:
    summary.rows += len(result)
    for row in result:
        summary.status[row[4]] += 1


def _columns(
    src: Path, header: list[str], lon: str | None, lat: str | None, crs: str | None
) -> _Columns:
    """The coordinate (and crs) columns of ``header``; a BatchError naming them if absent."""
    try:
        lon_col, lat_col = find_coordinates(header, lon, lat)
    except InputError as exc:
        raise BatchError(f"{src}: {exc}") from exc
    return _Columns(header, lon_col, lat_col, crs)


def assign_file(
    atlas: Atlas,
    src: Path,
    dst: Path,
    *,
    crs: str | None = None,
    lon_col: str | None = None,
    lat_col: str | None = None,
    crs_col: str = "crs",
    sheet: str | None = None,
    chunk_rows: int = 100_000,
    progress: Callable[[int], None] | None = None,
) -> BatchSummary:
    """`assign_csv` for any table: CSV, ``.xlsx`` (``sheet``) or Parquet in; CSV, ``.xlsx`` or
    Parquet out, by ``dst``'s extension. CSV to CSV streams; the others are read whole."""
    out_suffix = dst.suffix.lower()
    if out_suffix not in OUTPUT_SUFFIXES:
        raise BatchError(
            f"{dst}: cannot write {out_suffix or 'that'}; use {', '.join(OUTPUT_SUFFIXES)}"
        )
    if suffix_of(src) not in _WHOLE_TABLES and out_suffix == ".csv" and sheet is None:
        return assign_csv(
            atlas,
            src,
            dst,
            crs=crs,
            lon_col=lon_col,
            lat_col=lat_col,
            crs_col=crs_col,
            chunk_rows=chunk_rows,
            progress=progress,
        )
    if crs is not None:
        crs = crs_mod.normalize_crs(crs)
    source = read_source(src, layer=sheet)
    if source.is_vector:
        raise BatchError(f"{src}: a vector layer, not a table; give a table with lon/lat columns")
    table = source.frame.reset_index(drop=True)
    header = [str(c) for c in table.columns]
    cols = _columns(src, header, lon_col, lat_col, crs_col if crs is None else None)
    cells = table.astype(object).where(table.notna(), "").astype(str).to_numpy().tolist()
    summary = BatchSummary()
    result: list[list[str]] = []
    for start in range(0, len(cells), chunk_rows):
        part = _assign_rows(atlas, cells[start : start + chunk_rows], cols, crs)
        _count(summary, part)
        result += part
    _write_table(table, pd.DataFrame(result, columns=OUTPUT_COLUMNS, dtype=object), dst)
    if progress:
        progress(src.stat().st_size if src.is_file() else 0)
    return summary


def _write_table(table: pd.DataFrame, owners: pd.DataFrame, dst: Path) -> None:
    """The input table + the owner columns, as CSV, .xlsx or Parquet (by ``dst``'s suffix)."""
    if len(owners) == 0:
        owners = pd.DataFrame(columns=OUTPUT_COLUMNS, dtype=object)
    frame = pd.concat([table, owners.set_index(table.index)], axis=1)
    tmp = dst.with_name(f".{dst.stem}.part{dst.suffix}")
    try:
        if dst.suffix.lower() == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif dst.suffix.lower() == ".xlsx":
            text = frame.select_dtypes(include=["object", "string"]).columns
            frame[text] = frame[text].map(lambda v: defuse_formula(v) if isinstance(v, str) else v)
            frame.columns = [defuse_formula(str(c)) for c in frame.columns]  # headers too
            frame.to_excel(tmp, index=False, engine="openpyxl")
        else:
            write_csv(frame, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dst)


@dataclass(frozen=True)
class _Columns:
    header: list[str]
    lon: str
    lat: str
    crs: str | None

    def index(self, name: str | None) -> int | None:
        return self.header.index(name) if name in self.header else None


def _chunks(reader: Iterator[list[str]], size: int) -> Iterator[list[list[str]]]:
    while chunk := list(itertools.islice(reader, size)):
        yield chunk


def _assign_rows(
    atlas: Atlas, rows: list[list[str]], cols: _Columns, crs: str | None
) -> list[list[str]]:
    """Owners, status and reason for each row of one chunk."""
    n = len(rows)
    width = len(cols.header)
    i_lon, i_lat, i_crs = cols.index(cols.lon), cols.index(cols.lat), cols.index(cols.crs)
    shaped = np.fromiter((len(r) == width for r in rows), dtype=bool, count=n)
    lon = pd.to_numeric(
        pd.Series([r[i_lon] if ok else "" for r, ok in zip(rows, shaped, strict=True)]),
        errors="coerce",
    ).to_numpy(np.float64)
    lat = pd.to_numeric(
        pd.Series([r[i_lat] if ok else "" for r, ok in zip(rows, shaped, strict=True)]),
        errors="coerce",
    ).to_numpy(np.float64)
    if crs is not None:
        row_crs = pd.Series(crs, index=range(n))
    elif i_crs is not None:
        row_crs = pd.Series(
            [
                r[i_crs].strip().lower() or "wgs84" if ok else "wgs84"
                for r, ok in zip(rows, shaped, strict=True)
            ]
        )
    else:
        row_crs = pd.Series("wgs84", index=range(n))

    reason = np.full(n, "", dtype=object)
    for i in np.flatnonzero(~shaped):
        cells = rows[i]
        reason[i] = f"row has {len(cells)} fields, the header {width}" + (
            f"; cells beyond the header: {cells[width:]!r}" if len(cells) > width else ""
        )
    reason[shaped & ~(np.isfinite(lon) & np.isfinite(lat))] = (
        f"{cols.lon}/{cols.lat} are not numbers"
    )
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    for name, idx in row_crs.groupby(row_crs).groups.items():
        idx = np.asarray(idx)
        try:
            kind = crs_mod.normalize_crs(name)
        except crs_mod.UnknownCRSError as exc:
            reason[idx] = np.where(reason[idx] == "", str(exc), reason[idx])
            continue
        live = idx[reason[idx] == ""]
        if len(live) == 0:
            continue
        diag = atlas.diagnose(lon[live], lat[live], kind)
        reason[live] = [d or "" for d in diag]
        x[live], y[live] = crs_mod.to_wgs84(lon[live], lat[live], kind)

    valid = reason == ""
    x[~valid] = np.nan
    y[~valid] = np.nan
    owners = atlas.locate_indices(x, y)
    ids = {name: atlas.ids_of(name, owners[name]) for name in LEVELS}
    status = np.where(~valid, "invalid", np.where(owners["community"] >= 0, "ok", "outside"))
    return [[ids[name][i] or "" for name in LEVELS] + [status[i], reason[i]] for i in range(n)]
