"""Validation of input frames against `geo.model`, the same for every store implementation.

`prepare_table` checks one frame against its `geo.model.LayerSpec` (required columns and values,
types, choices, unique ids, geometry kinds) and turns it into rows of plain Python values sorted
by id, with the shapely geometries beside them; each store encodes the geometries its own way
(GeoPackage blobs, WKB for PostGIS). `typed_column` gives a column read back from any store the
dtype of its field type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.model import TABLES, Field
from geo.store.base import SRS_ID, InvalidRecord

# shapely type id -> OGC geometry type name
TYPE_NAMES = {
    0: "POINT",
    1: "LINESTRING",
    3: "POLYGON",
    4: "MULTIPOINT",
    5: "MULTILINESTRING",
    6: "MULTIPOLYGON",
}

# allowed shapely type ids per LayerSpec.geometry kind
_ALLOWED = {"point": (0,), "line": (1, 5), "polygon": (3, 6)}


class PreparedTable:
    """One table's checked rows (the spec's field values in order, sorted by id) and, for a
    layer, their shapely geometries (EPSG:4326) in the same order."""

    def __init__(self, records: list[tuple], geoms: np.ndarray | None, type_ids: set[int]) -> None:
        self.records = records
        self.geoms = geoms
        self.type_ids = type_ids
        self._bounds: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.records)

    @property
    def bounds(self) -> np.ndarray | None:
        """(n, 4) [minx, miny, maxx, maxy] of the geometries (NaN for empty ones)."""
        if self.geoms is None:
            return None
        if self._bounds is None:
            self._bounds = shapely.bounds(self.geoms) if len(self.geoms) else np.empty((0, 4))
        return self._bounds

    def extent(self) -> tuple[float | None, float | None, float | None, float | None]:
        """[minx, miny, maxx, maxy] of the rows' geometries, all None when there are none."""
        b = self.bounds
        if b is None or len(b) == 0 or np.isnan(b[:, 0]).all():
            return (None, None, None, None)
        return (
            float(np.nanmin(b[:, 0])),
            float(np.nanmin(b[:, 1])),
            float(np.nanmax(b[:, 2])),
            float(np.nanmax(b[:, 3])),
        )

    def geometry_type_name(self) -> str | None:
        """The single type name of the data, ``GEOMETRY`` if mixed, None if no rows."""
        if not self.type_ids:
            return None
        if len(self.type_ids) == 1:
            return TYPE_NAMES[next(iter(self.type_ids))]
        return "GEOMETRY"


def _ids_at(ids: pd.Series, mask: np.ndarray, limit: int = 5) -> str:
    """The first ids where ``mask`` holds, for an error message."""
    sel = ids[mask]
    shown = ", ".join(repr(v) for v in sel.head(limit).tolist())
    more = f" and {len(sel) - limit} more" if len(sel) > limit else ""
    return f"{shown}{more}"


def _none_where(mask: np.ndarray, values: np.ndarray) -> list:
    """``values`` as Python objects (a copy), None where ``mask`` holds."""
    out = values.astype(object)
    out[mask] = None
    return out.tolist()


def _text_values(where: str, field: Field, s: pd.Series, missing: np.ndarray) -> list:
    """A text column: strings (whole numbers become text), None for missing, within choices."""
    values = s.astype(object).to_numpy()
    kind = pd.api.types.infer_dtype(values[~missing], skipna=True)
    if kind not in ("string", "empty"):
        bad = [
            v
            for v in values[~missing]
            if not isinstance(v, str | int | np.integer) or isinstance(v, bool | np.bool_)
        ]
        if bad:
            raise InvalidRecord(
                f"{where}: expected text, got {type(bad[0]).__name__} value {bad[0]!r}"
            )
        values = np.array([v if isinstance(v, str) else str(v) for v in values], dtype=object)
    if field.choices is not None:
        bad_choice = ~missing & ~np.isin(values.astype(str), np.array(field.choices))
        if bad_choice.any():
            got = sorted(set(values[bad_choice].tolist()))[:5]
            raise InvalidRecord(
                f"{where}: values {got} are not among the allowed {list(field.choices)}"
            )
    return _none_where(missing, values)


def _int_values(where: str, field: Field, s: pd.Series, missing: np.ndarray) -> list:
    """A whole-number column: Python ints, None for missing."""
    try:
        arr = pd.array(s.to_numpy(dtype=object, na_value=None), dtype="Int64")
    except (TypeError, ValueError) as e:
        raise InvalidRecord(f"{where}: expected whole numbers ({e})") from None
    nums = arr.to_numpy(dtype="int64", na_value=0)
    return _none_where(missing, nums)


def _float_values(where: str, field: Field, s: pd.Series, missing: np.ndarray) -> list:
    """A number column: Python floats, None for missing (NaN)."""
    try:
        nums = pd.to_numeric(s, errors="raise").to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError) as e:
        raise InvalidRecord(f"{where}: expected numbers ({e})") from None
    return _none_where(np.isnan(nums), nums)


def _bool_values(where: str, field: Field, s: pd.Series, missing: np.ndarray) -> list:
    """A true/false column: 0 or 1, None for missing."""
    values = s.to_numpy(dtype=object, na_value=None)
    present = values[~missing]
    ok = np.array(
        [isinstance(v, bool | np.bool_ | int | np.integer) and v in (0, 1) for v in present],
        dtype=bool,
    )
    if not ok.all():
        raise InvalidRecord(f"{where}: expected true/false, got {present[~ok][0]!r}")
    return [None if m else int(bool(v)) for v, m in zip(values, missing, strict=True)]


_ColumnReader = Callable[[str, Field, pd.Series, np.ndarray], list]
_VALUES_BY_TYPE: dict[str, _ColumnReader] = {
    "str": _text_values,
    "int": _int_values,
    "float": _float_values,
    "bool": _bool_values,
}


def _column_values(name: str, field: Field, s: pd.Series, ids: pd.Series) -> list:
    """One column as a list of Python values (None for missing) for sqlite3."""
    where = f"table {name!r}, column {field.name!r}"
    missing = s.isna().to_numpy()
    if field.required and missing.any():
        raise InvalidRecord(
            f"{where}: required value missing in rows with id {_ids_at(ids, missing)}"
        )
    values_of = _VALUES_BY_TYPE.get(field.type)
    if values_of is None:  # pragma: no cover
        raise InvalidRecord(f"{where}: unknown field type {field.type!r}")
    return values_of(where, field, s, missing)


def _geometry_values(name: str, frame: pd.DataFrame, ids: pd.Series) -> np.ndarray:
    """The frame's geometries in EPSG:4326 (4490 and CRS84 taken as is), each a shapely one."""
    geo = None
    if isinstance(frame, gpd.GeoDataFrame):
        try:
            geo = frame.geometry
        except AttributeError:  # a GeoDataFrame without an active geometry column
            geo = None
    if geo is None and "geometry" in frame.columns:
        geo = frame["geometry"]
    if geo is None:
        raise InvalidRecord(f"table {name!r}: no geometry column (expected 'geometry')")
    crs = getattr(geo, "crs", None)
    if crs is not None and crs.to_epsg() not in (4326, 4490) and not crs.equals("OGC:CRS84"):
        geo = geo.to_crs(SRS_ID)
    values = np.asarray(geo.to_numpy(), dtype=object)
    is_geom = shapely.is_geometry(values)
    if not is_geom.all():
        none = pd.isna(values)
        bad = ~is_geom & ~none
        if bad.any():
            first = values[bad][0]
            raise InvalidRecord(
                f"table {name!r}: geometry values must be shapely geometries; got "
                f"{type(first).__name__} {first!r:.60} in rows with id {_ids_at(ids, bad)}"
            )
        raise InvalidRecord(
            f"table {name!r}: rows with id {_ids_at(ids, none)} have no geometry; "
            "every feature needs one"
        )
    return values


def prepare_tables(tables: Mapping[str, pd.DataFrame], every: bool) -> dict[str, PreparedTable]:
    """`prepare_table` for each of ``tables``, in the store's order: of every table when
    ``every`` (one absent from ``tables`` is empty), else of those named only. An unknown
    name raises `InvalidRecord`."""
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise InvalidRecord(f"unknown tables {unknown}; the store holds {list(TABLES)}")
    return {n: prepare_table(n, tables.get(n)) for n in TABLES if every or n in tables}


def prepare_table(name: str, frame: pd.DataFrame | None) -> PreparedTable:
    """Validate one input frame against its spec and turn it into rows (geom first).

    Missing required columns, missing required values, bad types, values outside `choices`,
    duplicate or empty ids and wrong geometry kinds raise `InvalidRecord` (a ValueError) naming
    the table.
    Columns not in the spec are dropped.
    """
    spec = TABLES[name]
    if frame is None:
        return PreparedTable([], np.empty(0, dtype=object) if spec.geometry else None, set())
    if not isinstance(frame, pd.DataFrame):
        raise InvalidRecord(f"table {name!r}: expected a DataFrame, got {type(frame).__name__}")
    absent = [f for f in spec.required if f not in frame.columns]
    if absent:
        raise InvalidRecord(f"table {name!r}: missing required columns {absent}")
    frame = frame.reset_index(drop=True)
    ids = frame["id"]
    columns = []
    for field in spec.fields:
        if field.name in frame.columns:
            columns.append(_column_values(name, field, frame[field.name], ids))
        else:
            columns.append([None] * len(frame))
    id_values = pd.Series(columns[0], dtype=object)
    empty_id = (id_values == "").to_numpy()
    if empty_id.any():
        raise InvalidRecord(f"table {name!r}: empty id in {int(empty_id.sum())} rows")
    dup = id_values.duplicated(keep=False).to_numpy()
    if dup.any():
        raise InvalidRecord(f"table {name!r}: duplicate ids {_ids_at(ids, dup)}")
    # rows go in sorted by id, so that fid order is id order: snapshots then read the table
    # sequentially instead of through the id index, and QGIS lists features by id
    order = np.argsort(np.asarray(columns[0], dtype=object), kind="stable")
    columns = [[col[i] for i in order] for col in columns]
    frame = frame.take(order).reset_index(drop=True)
    ids = frame["id"]
    if spec.geometry is None:
        return PreparedTable(list(zip(*columns, strict=True)), None, set())
    geoms = _geometry_values(name, frame, ids)
    type_ids = shapely.get_type_id(geoms)
    allowed = _ALLOWED[spec.geometry]
    wrong = ~np.isin(type_ids, allowed)
    if wrong.any():
        got = sorted({shapely.get_type_id(g) for g in geoms[wrong]})
        raise InvalidRecord(
            f"table {name!r} holds {spec.geometry} features; rows with id "
            f"{_ids_at(ids, wrong)} have {[TYPE_NAMES.get(t, str(t)) for t in got]}"
        )
    records = list(zip(*columns, strict=True))
    return PreparedTable(records, geoms, {int(t) for t in np.unique(type_ids)})


def typed_column(field: Field, s: pd.Series) -> pd.Series:
    """One column as a store read it, in the dtype of its field type (see `geo.store.tables`)."""
    if field.type == "str":
        return s.astype(object).where(s.notna(), None)
    nullable = not field.required or bool(s.isna().any())
    if field.type == "int":
        return s.astype("Int64") if nullable else s.astype("int64")
    if field.type == "float":
        return s.astype("float64")
    if field.type == "bool":
        return s.astype("boolean") if nullable else s.astype(bool)
    return s
