"""The columnar core of `geo assign`: one Arrow batch in, the same rows and their owners out.

Everything here is vectorised over the batch (Arrow compute and numpy); Python loops run only
over the rows that are wrong (their reasons) and over the distinct CRS names of a batch. The
answers are the atlas's own (`geo.atlas.Atlas.locate_indices`, ~9 M points/s): a row is ``ok``
when a community owns its point, ``outside`` (with the reason `OUTSIDE`) when its point is valid
but no community owns it, and ``invalid`` (with the reason) when it cannot be located.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geo import crs as crs_mod
from geo.atlas import _FAR_DEG as FAR_DEG
from geo.atlas import LEVELS, Atlas

OUTPUT_COLUMNS = [f"{name}_id" for name in LEVELS] + ["status", "reason"]
STATUSES = ("ok", "outside", "invalid")
OUTSIDE = "outside every community"
_FLOAT = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
_STATUS_ARRAY = pa.array(STATUSES)
_IDS: weakref.WeakKeyDictionary[Atlas, dict[str, Any]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Layout:
    """Where a table keeps its points, and how its cells are to be read and written.

    ``lon``/``lat``/``crs_col`` index columns of the input (``geometry`` a GeoParquet WKB
    column instead of lon/lat); ``crs`` is the one CRS of every row when set (else each row's
    ``crs_col``, else WGS84). ``untyped``: the cells are text from a CSV or a sheet (a cell that
    Excel would run is defused unless it is a number); else text columns are typed text.
    """

    names: tuple[str, ...]
    lon: int | None
    lat: int | None
    crs_col: int | None = None
    crs: str | None = None
    geometry: int | None = None
    untyped: bool = True

    @property
    def coordinates(self) -> str:
        """How the reasons name the coordinate columns: ``lon/lat`` (or ``geometry``)."""
        if self.geometry is not None:
            return self.names[self.geometry]
        return f"{self.names[self.lon or 0]}/{self.names[self.lat or 0]}"


class Reasons:
    """One reason per row, kept as codes into a short list of distinct messages."""

    def __init__(self, n: int) -> None:
        self.codes = np.zeros(n, dtype=np.int32)
        self.messages = [""]
        self._code: dict[str, int] = {"": 0}

    def code(self, message: str) -> int:
        """The code of ``message`` (added on first use)."""
        if message not in self._code:
            self._code[message] = len(self.messages)
            self.messages.append(message)
        return self._code[message]

    def set_where_empty(self, mask: np.ndarray, message: str) -> None:
        """``message`` for the rows of ``mask`` that have no reason yet."""
        self.codes[mask & (self.codes == 0)] = self.code(message)

    def set_rows(self, rows: np.ndarray, messages: Sequence[str | None]) -> None:
        """Each message (None: none) for the matching row index of ``rows``."""
        found = np.array(messages, dtype=object)
        for i in np.flatnonzero(found != None).tolist():  # noqa: E711 - elementwise
            self.codes[rows[i]] = self.code(found[i])

    def to_arrow(self) -> pa.DictionaryArray:
        """The reasons as an Arrow dictionary array (codes into the distinct messages)."""
        return pa.DictionaryArray.from_arrays(
            pa.array(self.codes), pa.array(self.messages, pa.string())
        )


def numbers(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Float64 values of a column (NaN where a cell is empty, null or not a number).

    Text is read as `float` reads decimal numbers, with surrounding spaces ignored.

    >>> numbers(pa.array(["120.5", " 30 ", "x", "", "1e2"])).tolist()
    [120.5, 30.0, nan, nan, 100.0]
    """
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = pc.cast(column, pa.float64())
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            values = pc.cast(column, pa.float64())
        except pa.ArrowInvalid:  # spaces around, or some cells are not numbers: NaN
            text = pc.utf8_trim_whitespace(column)
            values = pc.cast(
                pc.if_else(pc.match_substring_regex(text, _FLOAT), text, None), pa.float64()
            )
    else:
        return np.full(len(column), np.nan)
    return np.asarray(pc.fill_null(values, np.nan).to_numpy(zero_copy_only=False), np.float64)


def assign_batch(
    atlas: Atlas,
    batch: pa.RecordBatch | pa.Table,
    layout: Layout,
    ragged: Sequence[tuple[int, list[str]]] = (),
) -> tuple[pa.Table, np.ndarray]:
    """The rows of ``batch`` with `OUTPUT_COLUMNS` appended, and the count of each status.

    ``ragged`` are rows whose number of cells is not the header's, as (position in the output,
    cells): they come out at their position, cut or padded to the header, ``invalid``.
    """
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    n = table.num_rows
    reasons = Reasons(n)
    lon, lat = _coordinates(table, layout, reasons)
    x, y = _to_wgs84(atlas, table, layout, lon, lat, reasons)
    valid = reasons.codes == 0
    x[~valid] = np.nan
    y[~valid] = np.nan
    owners = atlas.locate_indices(x, y)
    status = np.where(valid, np.where(owners["community"] >= 0, 0, 1), 2).astype(np.int8)
    reasons.set_where_empty(status == 1, OUTSIDE)
    ids = _id_arrays(atlas)
    columns = [  # int32 indices made by numpy: Arrow takes them without a checked cast
        pa.DictionaryArray.from_arrays(
            pa.array(
                np.where(owners[name] >= 0, owners[name], len(ids[name]) - 1).astype(np.int32)
            ),
            ids[name],
        )
        for name in LEVELS
    ]
    columns += [
        pa.DictionaryArray.from_arrays(pa.array(status.astype(np.int32)), _STATUS_ARRAY),
        reasons.to_arrow(),
    ]
    out = _append(table, columns)
    counts = np.bincount(status, minlength=3).astype(np.int64)
    if ragged:
        out = _with_ragged(out, layout, ragged)
        counts[2] += len(ragged)
    return out, counts


def _append(table: pa.Table, columns: list[pa.Array]) -> pa.Table:
    """``table`` with the owner columns appended."""
    out = table
    for name, column in zip(OUTPUT_COLUMNS, columns, strict=True):
        out = out.append_column(pa.field(name, column.type), column)
    return out


def _coordinates(
    table: pa.Table, layout: Layout, reasons: Reasons
) -> tuple[np.ndarray, np.ndarray]:
    """Lon and lat of every row as given (NaN where missing), with the reasons of bad ones."""
    if layout.geometry is not None:
        return _points(table.column(layout.geometry), reasons, layout.coordinates)
    lon = numbers(table.column(layout.lon))
    lat = numbers(table.column(layout.lat))
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    reasons.set_where_empty(bad, f"{layout.coordinates} are not numbers")
    return lon, lat


def _points(column: pa.ChunkedArray, reasons: Reasons, name: str) -> tuple[np.ndarray, np.ndarray]:
    """X and y of a GeoParquet WKB column's points; other geometries are reasons."""
    import shapely

    geoms = shapely.from_wkb(
        np.asarray(column.to_numpy(zero_copy_only=False), dtype=object), on_invalid="ignore"
    )
    kinds = shapely.get_type_id(geoms)
    point = kinds == 0
    x = np.where(point, shapely.get_x(geoms), np.nan)
    y = np.where(point, shapely.get_y(geoms), np.nan)
    reasons.set_where_empty(kinds < 0, f"{name}: no geometry (null or unreadable WKB)")
    for kind in np.unique(kinds[(kinds > 0)]).tolist():
        label = shapely.GeometryType(kind).name.title().replace("string", "String")
        reasons.set_where_empty(kinds == kind, f"{name} is a {label}, not a point")
    reasons.set_where_empty(point & ~(np.isfinite(x) & np.isfinite(y)), f"{name}: empty point")
    return x, y


def _crs_groups(table: pa.Table, layout: Layout, n: int) -> list[tuple[str, np.ndarray]]:
    """(CRS name as written, row indices) for each distinct CRS of the batch."""
    if layout.crs is not None or layout.crs_col is None:
        return [(layout.crs or "wgs84", np.arange(n))]
    text = pc.utf8_lower(
        pc.utf8_trim_whitespace(
            pc.fill_null(pc.cast(table.column(layout.crs_col), pa.string()), "")
        )
    )
    text = pc.if_else(pc.equal(text, ""), "wgs84", text)
    encoded = pc.dictionary_encode(text).combine_chunks()
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(encoded.dictionary) + 1))
    return [
        (name, order[bounds[i] : bounds[i + 1]])
        for i, name in enumerate(encoded.dictionary.to_pylist())
    ]


def _to_wgs84(
    atlas: Atlas,
    table: pa.Table,
    layout: Layout,
    lon: np.ndarray,
    lat: np.ndarray,
    reasons: Reasons,
) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 x/y of the rows that can be located; the diagnosis of those that cannot."""
    n = len(lon)
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    for name, rows in _crs_groups(table, layout, n):
        try:
            kind = crs_mod.normalize_crs(name)
        except crs_mod.UnknownCRSError as exc:
            mask = np.zeros(n, dtype=bool)
            mask[rows] = True
            reasons.set_where_empty(mask, str(exc))
            continue
        live = rows[reasons.codes[rows] == 0]
        if len(live) == 0:
            continue
        suspect = live if kind.startswith("EPSG:") else live[_far(atlas, lon[live], lat[live])]
        reasons.set_rows(suspect, atlas.diagnose(lon[suspect], lat[suspect], kind))
        x[live], y[live] = crs_mod.to_wgs84(lon[live], lat[live], kind)
    return x, y


def _far(atlas: Atlas, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Which points `Atlas.diagnose` may find wrong: those far from the district (degrees)."""
    minx, miny, maxx, maxy = atlas.bounds
    with np.errstate(invalid="ignore"):
        return (
            (lon < minx - FAR_DEG) | (lon > maxx + FAR_DEG)
            | (lat < miny - FAR_DEG) | (lat > maxy + FAR_DEG)
        )  # fmt: skip


def _id_arrays(atlas: Atlas) -> dict[str, pa.Array]:
    """Per level, the ids of the atlas's cells followed by "" (where nothing owns a point)."""
    found = _IDS.get(atlas)
    if found is None:
        found = {
            name: pa.array([*atlas.levels[name].ids_or_none[:-1].tolist(), ""], pa.string())
            for name in LEVELS
        }
        _IDS[atlas] = found
    return found


def _with_ragged(
    out: pa.Table, layout: Layout, ragged: Sequence[tuple[int, list[str]]]
) -> pa.Table:
    """``out`` with the ragged rows put at their positions (cut or padded, ``invalid``)."""
    width = len(layout.names)
    rows = []
    for _, cells in ragged:
        reason = f"row has {len(cells)} fields, the header {width}" + (
            f"; cells beyond the header: {cells[width:]!r}" if len(cells) > width else ""
        )
        rows.append([*(cells + [""] * width)[:width], *[""] * len(LEVELS), "invalid", reason])
    extra = pa.table(
        [pa.array(list(col), pa.string()) for col in zip(*rows, strict=True)],
        schema=pa.schema(
            [*out.schema.remove_metadata()][: -len(OUTPUT_COLUMNS)]
            + [pa.field(n, pa.string()) for n in OUTPUT_COLUMNS]
        ),
    )
    out = out.cast(extra.schema)  # owner columns as plain text, like the ragged rows'
    total = out.num_rows + len(ragged)
    at = np.zeros(total, dtype=bool)
    at[[p for p, _ in ragged]] = True
    order = np.empty(total, dtype=np.int64)
    order[~at] = np.arange(out.num_rows)
    order[at] = out.num_rows + np.arange(len(ragged))
    return pa.concat_tables([out, extra]).take(pa.array(order))
