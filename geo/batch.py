"""Assign the rows of a CSV of points (enterprises by address point) to their owners, streaming.

The file is read in chunks of rows, so files far larger than memory go through; each chunk is
located in one vectorised call. A bad row never aborts the file: it is written with status
``invalid`` and a reason. Status ``ok``: a community owns the point; ``outside``: the point is
valid but no community owns it.
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
from geo.io import defuse_formula

OUTPUT_COLUMNS = [f"{name}_id" for name in LEVELS] + ["status", "reason"]


class BatchError(ValueError):
    """The file as a whole cannot be processed (missing columns, unreadable)."""


@dataclass
class BatchSummary:
    rows: int = 0
    status: dict[str, int] = field(default_factory=lambda: {"ok": 0, "outside": 0, "invalid": 0})


def detect_encoding(path: Path, probe_bytes: int = 1 << 20) -> str:
    """``utf-8-sig`` when the start of the file decodes as UTF-8, else ``gb18030`` (GBK)."""
    head = path.open("rb").read(probe_bytes)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the probe's end
            return "gb18030"
    return "utf-8-sig"


def assign_csv(
    atlas: Atlas,
    src: Path,
    dst: Path,
    *,
    crs: str | None = None,
    lon_col: str = "lon",
    lat_col: str = "lat",
    crs_col: str = "crs",
    chunk_rows: int = 100_000,
    progress: Callable[[int], None] | None = None,
) -> BatchSummary:
    """Write ``dst``: every row of ``src`` plus `OUTPUT_COLUMNS`.

    The CRS is ``crs`` when given, else the row's ``crs_col`` when the file has one, else WGS84.
    ``progress`` is called with the number of input bytes read so far.
    """
    if crs is not None:
        crs = crs_mod.normalize_crs(crs)
    summary = BatchSummary()
    tmp = dst.with_name(dst.name + ".part")
    with src.open("rb") as raw, tmp.open("w", encoding="utf-8-sig", newline="") as out:
        text = io.TextIOWrapper(raw, encoding=detect_encoding(src), newline="")
        reader = csv.reader(text)
        header = next(reader, None)
        if not header:
            raise BatchError(f"{src} is empty: expected a header row with {lon_col} and {lat_col}")
        missing = [c for c in (lon_col, lat_col) if c not in header]
        if missing:
            raise BatchError(
                f"{src} has no column {', '.join(missing)} (columns: {', '.join(header)}); "
                "name the coordinate columns with --lon-col and --lat-col"
            )
        cols = _Columns(header, lon_col, lat_col, crs_col if crs is None else None)
        writer = csv.writer(out)
        writer.writerow(header + OUTPUT_COLUMNS)
        for rows in _chunks(reader, chunk_rows):
            result = _assign_rows(atlas, rows, cols, crs)
            width = len(header)
            writer.writerows(
                [defuse_formula(c) for c in (r + [""] * (width - len(r)))[:width]] + extra
                for r, extra in zip(rows, result, strict=True)
            )
            summary.rows += len(rows)
            for row in result:
                summary.status[row[4]] += 1
            if progress:
                progress(raw.tell())
    tmp.replace(dst)
    return summary


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
