"""The embedded store: an OGC GeoPackage 1.3 file written with plain ``sqlite3``.

The file is a real GeoPackage that QGIS and GDAL open (read-only or for viewing) while the
service runs: the standard ``gpkg_*`` tables, one feature table per layer of
`geo.model.LAYERS` (``fid`` primary key, ``geom`` GeoPackage geometry blob, one column per model
field, a UNIQUE index on ``id``) and an ``attributes`` table for officers. Our own bookkeeping
lives in ``geo_meta`` (``schema_version``) and ``geo_versions`` (the history).

Community boundary history
--------------------------
``community_history`` is a GeoPackage feature table (geometry type ``GEOMETRY``) created on the
first recorded version: one row per version of a community (``community_id``, ``version`` 1, 2,
… per community, ``store_version``, ``author``, ``time``, ``reason``, ``action``, ``four_to``,
``name`` and the boundary). `replace_all` never empties it; with ``record_history=True`` (what
`geo load` does) it appends a "load" version per community. `edit_community` checks the
community's version and writes the new boundary, its history row and a new store version in one
transaction.

Durability and concurrency
--------------------------
* ``journal_mode=WAL``: readers (the API threads, QGIS) never block the writer and always see
  the last committed version; a writer never blocks readers.
* ``synchronous=FULL``: a commit fsyncs the WAL, so a version number handed to a client survives
  a power loss, not only a process crash (``NORMAL`` is crash-safe too but may lose the last
  commits on power loss). Commits are rare and bulk, so one fsync per commit costs nothing.
* Every write runs in one ``BEGIN IMMEDIATE`` … ``COMMIT`` transaction (rolled back on any
  error): a crash or ``kill -9`` mid-write leaves the previous version intact.
* One connection per thread (``threading.local``); writers in this process are serialised by a
  lock, writers in other processes by SQLite's lock and a busy timeout.
* GDAL/QGIS may read (or even edit) the file from *other processes* at any time. Do not open it
  with pyogrio/GDAL *inside a process that holds an open SQLiteStore*: GDAL links its own copy
  of SQLite, and two SQLite copies in one process defeat each other's POSIX locks (GDAL closing
  its handle deletes the WAL under our connections: "disk I/O error"). Read through
  `snapshot()` instead, or close the store first.

What `snapshot` returns (dtypes)
--------------------------------
Columns are the spec's field names in order, then ``geometry`` for layers; rows sorted by ``id``
with a fresh ``RangeIndex``.

* ``str``  → ``object``; a missing value is ``None`` (never ``""`` or NaN).
* ``int``  → ``int64`` when the field is required, pandas nullable ``Int64`` when optional.
* ``float`` → ``float64`` with NaN for missing.
* ``bool`` → ``bool`` when required, nullable ``boolean`` when optional.
* layers are GeoDataFrames in EPSG:4326; officers is a plain DataFrame.

Geometry blobs
--------------
``b"GP"``, version 0, flags (bit 0 little-endian, bits 1-3 envelope indicator: 1 =
[minx, maxx, miny, maxy], bit 4 empty geometry), int32 srs_id 4326, the envelope, then 2D ISO
WKB. Encoding and decoding are vectorised with shapely; only the byte concatenation/slicing is per
geometry.

Geometry type names in ``gpkg_geometry_columns`` follow the data: ``POINT`` for enterprises;
lines and polygons get the single type the layer holds (``LINESTRING``, ``MULTIPOLYGON``, …) or
``GEOMETRY`` when it mixes simple and multi parts, so GDAL/QGIS report the true type. The column's
declared type must equal that name (GDAL warns otherwise), so a change of type rebuilds the (about
to be emptied anyway) table inside the write transaction.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import struct
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.model import COMMUNITIES, TABLES, Field, LayerSpec
from geo.store import serving, users
from geo.store.base import (
    CommunityExists,
    CommunityVersion,
    InvalidRecord,
    Snapshot,
    StaleCommunityError,
    StaleVersionError,
    StoreSchemaError,
    UnknownCommunity,
    VersionInfo,
)

SCHEMA_VERSION = 1
SRS_ID = 4326
GPKG_APPLICATION_ID = 0x47504B47  # 'GPKG'
GPKG_USER_VERSION = 10300  # GeoPackage 1.3.0
_OLD_GPKG_IDS = (0x47503130, 0x47503131)  # 'GP10', 'GP11' (GeoPackage 1.0 / 1.1)
GEOM_COLUMN = "geom"
BUSY_TIMEOUT_S = 30.0

_SQL_TYPES = {"str": "TEXT", "int": "INTEGER", "float": "REAL", "bool": "BOOLEAN"}
# shapely type id -> GeoPackage geometry type name
_TYPE_NAMES = {
    0: "POINT",
    1: "LINESTRING",
    3: "POLYGON",
    4: "MULTIPOINT",
    5: "MULTILINESTRING",
    6: "MULTIPOLYGON",
}
# allowed shapely type ids per LayerSpec.geometry kind, and the type of an empty new table
_ALLOWED = {"point": (0,), "line": (1, 5), "polygon": (3, 6)}
_DEFAULT_TYPE = {"point": "POINT", "line": "LINESTRING", "polygon": "POLYGON"}
# header length by envelope indicator (flags bits 1-3)
_HEADER_LEN = (8, 40, 56, 56, 72, 8, 8, 8)
_HEADER_DTYPE = np.dtype(
    [("magic", "S2"), ("version", "u1"), ("flags", "u1"), ("srs_id", "<i4"), ("env", "<f8", (4,))]
)
_FLAGS_ENVELOPE = 0b0000_0011  # little-endian, envelope [minx, maxx, miny, maxy]
_FLAGS_EMPTY = 0b0001_0001  # little-endian, no envelope, empty geometry

_WGS84_WKT = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,'
    'AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,'
    'AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],'
    'AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]'
)

_GPKG_DDL = """
CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (
  srs_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL PRIMARY KEY,
  organization TEXT NOT NULL,
  organization_coordsys_id INTEGER NOT NULL,
  definition TEXT NOT NULL,
  description TEXT
);
CREATE TABLE IF NOT EXISTS gpkg_contents (
  table_name TEXT NOT NULL PRIMARY KEY,
  data_type TEXT NOT NULL,
  identifier TEXT UNIQUE,
  description TEXT DEFAULT '',
  last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE,
  srs_id INTEGER,
  CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id)
);
CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (
  table_name TEXT NOT NULL,
  column_name TEXT NOT NULL,
  geometry_type_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL,
  z TINYINT NOT NULL,
  m TINYINT NOT NULL,
  CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
  CONSTRAINT uk_gc_table_name UNIQUE (table_name),
  CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id)
);
CREATE TABLE IF NOT EXISTS geo_meta (key TEXT NOT NULL PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS geo_versions (
  version INTEGER PRIMARY KEY,
  author TEXT NOT NULL,
  time TEXT NOT NULL,
  reason TEXT NOT NULL
);
"""

_SRS_ROWS = (
    (
        "Undefined Cartesian SRS",
        -1,
        "NONE",
        -1,
        "undefined",
        "undefined Cartesian coordinate reference system",
    ),
    (
        "Undefined geographic SRS",
        0,
        "NONE",
        0,
        "undefined",
        "undefined geographic coordinate reference system",
    ),
    (
        "WGS 84 geodetic",
        SRS_ID,
        "EPSG",
        4326,
        _WGS84_WKT,
        "longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid",
    ),
)


HISTORY_TABLE = "community_history"
_HISTORY_COLUMNS = (
    ("community_id", "TEXT NOT NULL"),
    ("version", "INTEGER NOT NULL"),
    ("store_version", "INTEGER NOT NULL"),
    ("author", "TEXT NOT NULL"),
    ("time", "TEXT NOT NULL"),
    ("reason", "TEXT NOT NULL"),
    ("action", "TEXT NOT NULL"),
    ("four_to", "TEXT"),
    ("name", "TEXT"),
)


def _q(name: str) -> str:
    """Quote an SQL identifier (layer fields include words such as ``class`` and ``type``)."""
    return '"' + name.replace('"', '""') + '"'


def _now() -> str:
    """ISO 8601 UTC with milliseconds, the format of gpkg_contents.last_change."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --------------------------------------------------------------------------- geometry blobs


def encode_geometries(geoms: np.ndarray) -> tuple[list[bytes], np.ndarray]:
    """GeoPackage blobs of non-null shapely geometries, and their (n, 4) bounds.

    Bounds are shapely's [minx, miny, maxx, maxy], NaN for empty geometries.
    """
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    if n == 0:
        return [], np.empty((0, 4))
    wkb = shapely.to_wkb(geoms, byte_order=1, output_dimension=2)
    bounds = shapely.bounds(geoms)
    empty = shapely.is_empty(geoms)
    header = np.zeros(n, dtype=_HEADER_DTYPE)
    header["magic"] = b"GP"
    header["flags"] = np.where(empty, _FLAGS_EMPTY, _FLAGS_ENVELOPE)
    header["srs_id"] = SRS_ID
    header["env"] = bounds[:, [0, 2, 1, 3]]
    buf = header.tobytes()
    size = _HEADER_DTYPE.itemsize
    starts = range(0, n * size, size)
    hlen = np.where(empty, 8, size).tolist()
    blobs = [buf[s : s + h] + w for s, h, w in zip(starts, hlen, wkb.tolist(), strict=True)]
    return blobs, bounds


def decode_geometries(blobs: Any) -> np.ndarray:
    """Shapely geometries (None for NULL) from GeoPackage geometry blobs."""
    hl = _HEADER_LEN
    wkb = [None if b is None else b[hl[(b[3] >> 1) & 7] :] for b in blobs]
    return shapely.from_wkb(np.array(wkb, dtype=object))


def _blob_envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """[minx, maxx, miny, maxy] of one blob (for SQL functions used by foreign triggers)."""
    if blob is None or len(blob) < 8 or blob[3] & 0x10:
        return None
    flags = blob[3]
    indicator = (flags >> 1) & 7
    if indicator:
        return struct.unpack("<4d" if flags & 1 else ">4d", blob[8:40])
    g = shapely.from_wkb(blob[_HEADER_LEN[indicator] :])
    if g is None or g.is_empty:
        return None
    minx, miny, maxx, maxy = g.bounds
    return (minx, maxx, miny, maxy)


def _register_functions(conn: sqlite3.Connection) -> None:
    """The GeoPackage SQL functions used by GDAL's R-tree index triggers.

    We do not create a spatial index, but if QGIS/GDAL adds one to a layer its triggers call
    these; without them our writes would fail with "no such function: ST_IsEmpty".
    """

    def is_empty(blob: bytes | None) -> int | None:
        return None if blob is None else int(bool(blob[3] & 0x10))

    def coord(i: int):
        def f(blob: bytes | None) -> float | None:
            env = _blob_envelope(blob)
            return None if env is None else env[i]

        return f

    conn.create_function("ST_IsEmpty", 1, is_empty, deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(name, 1, coord(i), deterministic=True)


# --------------------------------------------------------------------------- validation


class _Prepared:
    """One table's rows ready for executemany, with geometry facts."""

    def __init__(self, rows: list[tuple], bounds: np.ndarray | None, type_ids: set[int]) -> None:
        self.rows = rows
        self.bounds = bounds
        self.type_ids = type_ids

    def extent(self) -> tuple[float | None, float | None, float | None, float | None]:
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
            return _TYPE_NAMES[next(iter(self.type_ids))]
        return "GEOMETRY"


def _ids_at(ids: pd.Series, mask: np.ndarray, limit: int = 5) -> str:
    sel = ids[mask]
    shown = ", ".join(repr(v) for v in sel.head(limit).tolist())
    more = f" and {len(sel) - limit} more" if len(sel) > limit else ""
    return f"{shown}{more}"


def _column_values(name: str, field: Field, s: pd.Series, ids: pd.Series) -> list:
    """One column as a list of Python values (None for missing) for sqlite3."""
    where = f"table {name!r}, column {field.name!r}"
    missing = s.isna().to_numpy()
    if field.required and missing.any():
        raise InvalidRecord(
            f"{where}: required value missing in rows with id {_ids_at(ids, missing)}"
        )
    if field.type == "str":
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
        out = np.where(missing, None, values)
        if field.choices is not None:
            bad_choice = ~missing & ~np.isin(values.astype(str), np.array(field.choices))
            if bad_choice.any():
                got = sorted(set(values[bad_choice].tolist()))[:5]
                raise InvalidRecord(
                    f"{where}: values {got} are not among the allowed {list(field.choices)}"
                )
        return out.tolist()
    if field.type == "int":
        try:
            arr = pd.array(s.to_numpy(dtype=object, na_value=None), dtype="Int64")
        except (TypeError, ValueError) as e:
            raise InvalidRecord(f"{where}: expected whole numbers ({e})") from None
        nums = arr.to_numpy(dtype="int64", na_value=0)
        return np.where(missing, None, nums.astype(object)).tolist()
    if field.type == "float":
        try:
            nums = pd.to_numeric(s, errors="raise").to_numpy(dtype="float64", na_value=np.nan)
        except (TypeError, ValueError) as e:
            raise InvalidRecord(f"{where}: expected numbers ({e})") from None
        return np.where(np.isnan(nums), None, nums.astype(object)).tolist()
    if field.type == "bool":
        values = s.to_numpy(dtype=object, na_value=None)
        present = values[~missing]
        ok = np.array(
            [isinstance(v, bool | np.bool_ | int | np.integer) and v in (0, 1) for v in present],
            dtype=bool,
        )
        if not ok.all():
            raise InvalidRecord(f"{where}: expected true/false, got {present[~ok][0]!r}")
        return [None if m else int(bool(v)) for v, m in zip(values, missing, strict=True)]
    raise InvalidRecord(f"{where}: unknown field type {field.type!r}")  # pragma: no cover


def _geometry_values(name: str, frame: pd.DataFrame, ids: pd.Series) -> np.ndarray:
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


def prepare_table(name: str, frame: pd.DataFrame | None) -> _Prepared:
    """Validate one input frame against its spec and turn it into rows (geom first).

    Missing required columns, missing required values, bad types, values outside `choices`,
    duplicate or empty ids and wrong geometry kinds raise `InvalidRecord` (a ValueError) naming
    the table.
    Columns not in the spec are dropped.
    """
    spec = TABLES[name]
    if frame is None:
        return _Prepared([], np.empty((0, 4)) if spec.geometry else None, set())
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
        return _Prepared(list(zip(*columns, strict=True)), None, set())
    geoms = _geometry_values(name, frame, ids)
    type_ids = shapely.get_type_id(geoms)
    allowed = _ALLOWED[spec.geometry]
    wrong = ~np.isin(type_ids, allowed)
    if wrong.any():
        got = sorted({shapely.get_type_id(g) for g in geoms[wrong]})
        raise InvalidRecord(
            f"table {name!r} holds {spec.geometry} features; rows with id "
            f"{_ids_at(ids, wrong)} have {[_TYPE_NAMES.get(t, str(t)) for t in got]}"
        )
    blobs, bounds = encode_geometries(geoms)
    rows = list(zip(blobs, *columns, strict=True))
    return _Prepared(rows, bounds, {int(t) for t in np.unique(type_ids)})


# --------------------------------------------------------------------------- the store


class SQLiteStore:
    """`geo.store.base.Store` on a GeoPackage file (created if missing)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = BUSY_TIMEOUT_S):
        self.path = Path(os.fspath(path))
        if not self.path.parent.is_dir():
            raise FileNotFoundError(
                f"cannot create store {self.path}: directory {self.path.parent} does not exist"
            )
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._conn_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        try:
            if self._initialise():
                # The GeoPackage header (application_id, user_version) lives in page 1: copy it
                # from the WAL into the main file now, as GDAL sniffs those bytes before it opens
                # SQLite. PASSIVE never waits for readers.
                self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)")
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connections

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError(f"store {self.path} is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # only so that close() may close it from any thread
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            except sqlite3.DatabaseError as e:
                conn.close()
                raise StoreSchemaError(f"{self.path} is not a GeoPackage/SQLite file: {e}") from e
            _register_functions(conn)
            self._local.conn = conn
            with self._conn_lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        self._closed = True
        with self._conn_lock:
            conns, self._connections = self._connections, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def _write(self):
        return _Transaction(self._conn(), immediate=True, lock=self._write_lock)

    def _read(self):
        return _Transaction(self._conn(), immediate=False, lock=None)

    # -- schema

    def _initialise(self) -> bool:
        """Create or check the schema; True when the file header was (re)written."""
        header_written = False
        with self._write() as cur:
            app_id = cur.execute("PRAGMA application_id").fetchone()[0]
            existing = {
                r[0] for r in cur.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            is_gpkg = app_id in (GPKG_APPLICATION_ID, *_OLD_GPKG_IDS) or (
                app_id == 0 and "gpkg_contents" in existing
            )
            if existing and not is_gpkg:
                raise StoreSchemaError(
                    f"{self.path} is an SQLite file but not a GeoPackage "
                    f"(application_id {app_id:#x}); give a new or GeoPackage path"
                )
            if "geo_meta" in existing:
                row = cur.execute(
                    "SELECT value FROM geo_meta WHERE key='schema_version'"
                ).fetchone()
                found = int(row[0]) if row else SCHEMA_VERSION
                if found > SCHEMA_VERSION:
                    raise StoreSchemaError(
                        f"{self.path} has store schema version {found}, newer than the "
                        f"{SCHEMA_VERSION} this geo understands: upgrade geo to open it"
                    )
            if app_id != GPKG_APPLICATION_ID:
                cur.execute(f"PRAGMA application_id = {GPKG_APPLICATION_ID}")
                header_written = True
            if cur.execute("PRAGMA user_version").fetchone()[0] < GPKG_USER_VERSION:
                cur.execute(f"PRAGMA user_version = {GPKG_USER_VERSION}")
                header_written = True
            for statement in _GPKG_DDL.split(";"):
                if statement.strip():
                    cur.execute(statement)
            cur.executemany(
                "INSERT OR IGNORE INTO gpkg_spatial_ref_sys (srs_name, srs_id, organization, "
                "organization_coordsys_id, definition, description) VALUES (?, ?, ?, ?, ?, ?)",
                _SRS_ROWS,
            )
            cur.execute(
                "INSERT OR IGNORE INTO geo_meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            users.ensure_schema(cur)  # users, tokens and the append-only audit log
            serving.ensure_schema(cur)  # which server answers from which version
            cur.execute(  # a new random stamp per table write: snapshots re-read changed tables
                "CREATE TABLE IF NOT EXISTS geo_table_stamps "
                "(table_name TEXT NOT NULL PRIMARY KEY, stamp TEXT NOT NULL)"
            )
            cur.executemany(  # tables of a file written before stamps existed
                "INSERT OR IGNORE INTO geo_table_stamps (table_name, stamp) VALUES (?, ?)",
                [(name, secrets.token_hex(8)) for name in TABLES],
            )
            now = _now()
            for name, spec in TABLES.items():
                if name in existing:
                    self._add_missing_columns(cur, name, spec)
                else:
                    geometry_type = _DEFAULT_TYPE[spec.geometry] if spec.geometry else None
                    self._create_table(cur, name, spec, geometry_type)
                cur.execute(
                    "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
                    "description, last_change, srs_id) VALUES (?, ?, ?, '', ?, ?)",
                    (
                        name,
                        "features" if spec.geometry else "attributes",
                        name,
                        now,
                        SRS_ID if spec.geometry else None,
                    ),
                )
                if spec.geometry:
                    cur.execute(
                        "INSERT OR IGNORE INTO gpkg_geometry_columns (table_name, column_name, "
                        "geometry_type_name, srs_id, z, m) VALUES (?, ?, ?, ?, 0, 0)",
                        (name, GEOM_COLUMN, _DEFAULT_TYPE[spec.geometry], SRS_ID),
                    )
        return header_written

    @staticmethod
    def _create_table(
        cur: sqlite3.Cursor, name: str, spec: LayerSpec, geometry_type: str | None
    ) -> None:
        cols = ["fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL"]
        if geometry_type:
            cols.append(f"{GEOM_COLUMN} {geometry_type}")
        cols += [f"{_q(f.name)} {_SQL_TYPES[f.type]}" for f in spec.fields]
        cur.execute(f"CREATE TABLE {_q(name)} ({', '.join(cols)})")
        cur.execute(f"CREATE UNIQUE INDEX {_q(name + '_id_unique')} ON {_q(name)} (id)")

    @staticmethod
    def _add_missing_columns(cur: sqlite3.Cursor, name: str, spec: LayerSpec) -> None:
        """A field added to the model after the file was created becomes a new NULL column."""
        have = {r[1] for r in cur.execute(f"PRAGMA table_info({_q(name)})")}
        for f in spec.fields:
            if f.name not in have:
                cur.execute(f"ALTER TABLE {_q(name)} ADD COLUMN {_q(f.name)} {_SQL_TYPES[f.type]}")
        if spec.geometry and GEOM_COLUMN not in have:
            raise StoreSchemaError(f"table {name!r} in the store has no {GEOM_COLUMN!r} column")

    @classmethod
    def _rebuild_table(
        cls, cur: sqlite3.Cursor, name: str, spec: LayerSpec, geometry_type: str
    ) -> None:
        """Recreate an (emptied) feature table whose declared geometry type must change."""
        rtree = f"rtree_{name}_{GEOM_COLUMN}"
        cur.execute(f"DROP TABLE IF EXISTS {_q(rtree)}")
        if cur.execute("SELECT 1 FROM sqlite_master WHERE name='gpkg_extensions'").fetchone():
            cur.execute(
                "DELETE FROM gpkg_extensions WHERE table_name=? AND extension_name="
                "'gpkg_rtree_index'",
                (name,),
            )
        cur.execute(f"DROP TABLE {_q(name)}")
        cls._create_table(cur, name, spec, geometry_type)
        cur.execute(
            "UPDATE gpkg_geometry_columns SET geometry_type_name=? WHERE table_name=?",
            (geometry_type, name),
        )

    # -- the Store protocol

    def version(self) -> int:
        row = self._conn().execute("SELECT COALESCE(MAX(version), 0) FROM geo_versions").fetchone()
        return int(row[0])

    def history(self, limit: int = 100) -> list[VersionInfo]:
        rows = self._conn().execute(
            "SELECT version, author, time, reason FROM geo_versions ORDER BY version DESC LIMIT ?",
            (int(limit),),
        )
        return [VersionInfo(int(v), a, t, r) for v, a, t, r in rows]

    def replace_all(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        author: str,
        reason: str,
        expected_version: int | None = None,
        record_history: bool = False,
        audit: Mapping[str, Any] | None = None,
    ) -> int:
        """Replace every table in one transaction; tables absent from `tables` are emptied.

        Raises `InvalidRecord` (nothing written) when a frame does not fit its spec, and
        `StaleVersionError` when `expected_version` is given and another version was committed.
        The community history is kept; ``record_history`` appends a "load" version (this
        author and reason) for every community written. An audit row (``audit``: the API's
        request context, see `geo.store.users.append_audit`) is appended in the same transaction.
        """
        unknown = sorted(set(tables) - set(TABLES))
        if unknown:
            raise InvalidRecord(f"unknown tables {unknown}; the store holds {list(TABLES)}")
        prepared = {name: prepare_table(name, tables.get(name)) for name in TABLES}
        now = _now()
        with self._write() as cur:
            current = int(
                cur.execute("SELECT COALESCE(MAX(version), 0) FROM geo_versions").fetchone()[0]
            )
            if expected_version is not None and expected_version != current:
                raise StaleVersionError(expected_version, current)
            ogr_counts = (
                cur.execute("SELECT 1 FROM sqlite_master WHERE name='gpkg_ogr_contents'").fetchone()
                is not None
            )
            for name, spec in TABLES.items():
                self._replace_table(cur, name, spec, prepared[name], now)
                if ogr_counts:
                    cur.execute(
                        "UPDATE gpkg_ogr_contents SET feature_count=? "
                        "WHERE lower(table_name)=lower(?)",
                        (len(prepared[name].rows), name),
                    )
            version = current + 1
            cur.execute(
                "INSERT INTO geo_versions (version, author, time, reason) VALUES (?, ?, ?, ?)",
                (version, str(author), now, str(reason)),
            )
            if record_history and prepared["communities"].rows:
                self._ensure_history(cur)
                latest = dict(
                    cur.execute(
                        f"SELECT community_id, MAX(version) FROM {HISTORY_TABLE} "
                        "GROUP BY community_id"
                    )
                )
                names = COMMUNITIES.field_names
                rows = []
                for row in prepared["communities"].rows:
                    rec = dict(zip(names, row[1:], strict=True))
                    cid = rec["id"]
                    rows.append(
                        (row[0], cid, latest.get(cid, 0) + 1, version, str(author), now,
                         str(reason), "load", rec["four_to"], rec["name"])
                    )  # fmt: skip
                self._insert_history(cur, rows)
            users.append_audit(
                cur, audit, actor=str(author), before=current, after=version,
                default_path="replace_all", detail=str(reason),
            )  # fmt: skip
        return version

    # -- community history and edits

    @staticmethod
    def _has_history(cur: sqlite3.Cursor) -> bool:
        found = cur.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (HISTORY_TABLE,)
        ).fetchone()
        return found is not None

    def _ensure_history(self, cur: sqlite3.Cursor) -> None:
        """Create the history feature table (registered in gpkg_contents) if missing."""
        if self._has_history(cur):
            return
        cols = ", ".join(f"{_q(n)} {t}" for n, t in _HISTORY_COLUMNS)
        cur.execute(
            f"CREATE TABLE {HISTORY_TABLE} (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "
            f"{GEOM_COLUMN} GEOMETRY, {cols})"
        )
        cur.execute(
            f"CREATE UNIQUE INDEX {HISTORY_TABLE}_version_unique "
            f"ON {HISTORY_TABLE} (community_id, version)"
        )
        cur.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
            "description, last_change, srs_id) VALUES (?, 'features', ?, ?, ?, ?)",
            (HISTORY_TABLE, HISTORY_TABLE, "versions of community boundaries", _now(), SRS_ID),
        )
        cur.execute(
            "INSERT OR IGNORE INTO gpkg_geometry_columns (table_name, column_name, "
            "geometry_type_name, srs_id, z, m) VALUES (?, ?, 'GEOMETRY', ?, 0, 0)",
            (HISTORY_TABLE, GEOM_COLUMN, SRS_ID),
        )

    @staticmethod
    def _insert_history(cur: sqlite3.Cursor, rows: list[tuple]) -> None:
        cols = [GEOM_COLUMN] + [n for n, _ in _HISTORY_COLUMNS]
        cur.executemany(
            f"INSERT INTO {HISTORY_TABLE} ({', '.join(_q(c) for c in cols)}) "
            f"VALUES ({', '.join('?' * len(cols))})",
            rows,
        )

    def _community_version(self, cur: sqlite3.Cursor, community_id: str) -> int:
        if not self._has_history(cur):
            return 0
        (v,) = cur.execute(
            f"SELECT COALESCE(MAX(version), 0) FROM {HISTORY_TABLE} WHERE community_id=?",
            (community_id,),
        ).fetchone()
        return int(v)

    def community_version(self, community_id: str) -> int:
        """The community's latest history version (0 when it has none)."""
        with self._read() as cur:
            return self._community_version(cur, community_id)

    def community_history(self, community_id: str) -> list[CommunityVersion]:
        """Every version of a community, newest first (empty when it has none)."""
        with self._read() as cur:
            if not self._has_history(cur):
                return []
            cols = [n for n, _ in _HISTORY_COLUMNS]
            rows = cur.execute(
                f"SELECT {GEOM_COLUMN}, {', '.join(_q(c) for c in cols)} FROM {HISTORY_TABLE} "
                "WHERE community_id=? ORDER BY version DESC",
                (community_id,),
            ).fetchall()
        geoms = decode_geometries([r[0] for r in rows]) if rows else []
        return [
            CommunityVersion(geometry=g, **dict(zip(cols, r[1:], strict=True)))
            for g, r in zip(geoms, rows, strict=True)
        ]

    def edit_community(
        self,
        community_id: str,
        geometry: Any,
        *,
        author: str,
        reason: str,
        expected_version: int | None,
        fields: Mapping[str, Any] | None = None,
        action: str = "edit",
        create: bool = False,
        audit: Mapping[str, Any] | None = None,
    ) -> tuple[int, int]:
        """Write one community's boundary (and ``fields``) as a new version, atomically.

        In one transaction: the community's current version must equal ``expected_version``
        (else `StaleCommunityError`; None skips the check), the communities table is rewritten
        with the new row, a history row and a new store version are appended. ``create`` adds a
        new community (`CommunityExists` if the id exists); otherwise `UnknownCommunity` if it
        does not. A
        community without history first gets its current row recorded as a "baseline" version.
        Returns ``(community version, store version)``.
        """
        now = _now()
        with self._write() as cur:
            current = self._community_version(cur, community_id)
            if expected_version is not None and int(expected_version) != current:
                raise StaleCommunityError(community_id, int(expected_version), current)
            table = self._read_table(cur.connection, "communities", COMMUNITIES)
            hit = np.flatnonzero(table["id"].to_numpy() == community_id)
            if create and len(hit):
                raise CommunityExists(f"community {community_id} exists already; choose another id")
            if not create and not len(hit):
                raise UnknownCommunity(f"no community {community_id!r}")
            (store_current,) = cur.execute(
                "SELECT COALESCE(MAX(version), 0) FROM geo_versions"
            ).fetchone()
            store_version = int(store_current) + 1
            self._ensure_history(cur)
            history: list[tuple] = []
            if len(hit) and current == 0:
                old = table.iloc[int(hit[0])]
                (blob,), _ = encode_geometries(np.array([old.geometry], dtype=object))
                history.append(
                    (blob, community_id, 1, store_version, "geo", now,
                     "the boundary before its first recorded edit", "baseline",
                     old["four_to"], old["name"])
                )  # fmt: skip
                current = 1
            record = {} if create else table.iloc[int(hit[0])].drop("geometry").to_dict()
            record.update(fields or {})
            record["id"] = community_id
            row = gpd.GeoDataFrame([record], geometry=[geometry], crs=SRS_ID)
            rest = table.drop(index=hit) if len(hit) else table
            frame = pd.concat([rest, row], ignore_index=True)
            prepared = prepare_table("communities", frame)
            self._replace_table(cur, "communities", COMMUNITIES, prepared, now)
            if cur.execute("SELECT 1 FROM sqlite_master WHERE name='gpkg_ogr_contents'").fetchone():
                cur.execute(
                    "UPDATE gpkg_ogr_contents SET feature_count=? "
                    "WHERE lower(table_name)='communities'",
                    (len(prepared.rows),),
                )
            cur.execute(
                "INSERT INTO geo_versions (version, author, time, reason) VALUES (?, ?, ?, ?)",
                (store_version, str(author), now, f"{community_id}: {reason}"),
            )
            (blob,), _ = encode_geometries(np.array([geometry], dtype=object))
            version = current + 1
            history.append(
                (blob, community_id, version, store_version, str(author), now, str(reason),
                 action, record.get("four_to"), record.get("name"))
            )  # fmt: skip
            self._insert_history(cur, history)
            cur.execute(
                "UPDATE gpkg_contents SET last_change=? WHERE table_name=?", (now, HISTORY_TABLE)
            )
            users.append_audit(
                cur, audit, actor=str(author), before=int(store_current), after=store_version,
                default_path=f"{action} community", target=community_id, detail=str(reason),
            )  # fmt: skip
        return version, store_version

    def _replace_table(
        self, cur: sqlite3.Cursor, name: str, spec: LayerSpec, data: _Prepared, now: str
    ) -> None:
        rebuilt = False
        if spec.geometry:
            new_type = data.geometry_type_name()
            (old_type,) = cur.execute(
                "SELECT geometry_type_name FROM gpkg_geometry_columns WHERE table_name=?",
                (name,),
            ).fetchone()
            if new_type is not None and new_type != old_type:
                self._rebuild_table(cur, name, spec, new_type)
                rebuilt = True
        if not rebuilt:
            cur.execute(f"DELETE FROM {_q(name)}")
        self._insert_rows(cur, name, spec, data.rows)
        if spec.geometry:
            cur.execute(
                "UPDATE gpkg_contents SET last_change=?, min_x=?, min_y=?, max_x=?, max_y=? "
                "WHERE table_name=?",
                (now, *data.extent(), name),
            )
        else:
            cur.execute("UPDATE gpkg_contents SET last_change=? WHERE table_name=?", (now, name))
        cur.execute(
            "INSERT INTO geo_table_stamps (table_name, stamp) VALUES (?, ?) "
            "ON CONFLICT (table_name) DO UPDATE SET stamp = excluded.stamp",
            (name, secrets.token_hex(8)),
        )

    @staticmethod
    def _insert_rows(cur: sqlite3.Cursor, name: str, spec: LayerSpec, rows: list[tuple]) -> None:
        cols = ([GEOM_COLUMN] if spec.geometry else []) + list(spec.field_names)
        sql = (
            f"INSERT INTO {_q(name)} ({', '.join(_q(c) for c in cols)}) "
            f"VALUES ({', '.join('?' * len(cols))})"
        )
        cur.executemany(sql, rows)

    def snapshot(self, reuse: Snapshot | None = None) -> Snapshot:
        """All tables at the latest version; tables whose stamp equals their stamp in ``reuse``
        (not written since) are taken from it instead of read again."""
        with self._read() as cur:
            conn = cur.connection
            (version,) = cur.execute(
                "SELECT COALESCE(MAX(version), 0) FROM geo_versions"
            ).fetchone()
            stamps = dict(cur.execute("SELECT table_name, stamp FROM geo_table_stamps"))
            old = reuse.stamps if reuse is not None else {}
            tables = {
                name: reuse.tables[name]
                if reuse is not None and name in stamps and old.get(name) == stamps[name]
                else self._read_table(conn, name, spec)
                for name, spec in TABLES.items()
            }
        return Snapshot(int(version), tables, stamps)

    @staticmethod
    def _read_table(conn: sqlite3.Connection, name: str, spec: LayerSpec) -> pd.DataFrame:
        cols = list(spec.field_names) + ([GEOM_COLUMN] if spec.geometry else [])
        # fid order is id order for everything we write; a table edited by others is sorted here
        sql = f"SELECT {', '.join(_q(c) for c in cols)} FROM {_q(name)} ORDER BY fid"
        df = pd.read_sql_query(sql, conn)
        if not df["id"].is_monotonic_increasing:
            df = df.sort_values("id", ignore_index=True, na_position="last")
        for f in spec.fields:
            s = df[f.name]
            if f.type == "str":
                df[f.name] = s.astype(object).where(s.notna(), None)
            elif f.type == "int":
                nullable = not f.required or s.isna().any()
                df[f.name] = s.astype("Int64") if nullable else s.astype("int64")
            elif f.type == "float":
                df[f.name] = s.astype("float64")
            elif f.type == "bool":
                nullable = not f.required or s.isna().any()
                df[f.name] = s.astype("boolean") if nullable else s.astype(bool)
        if not spec.geometry:
            return df
        geoms = decode_geometries(df.pop(GEOM_COLUMN).to_numpy())
        return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs=SRS_ID), crs=SRS_ID)


class _Transaction:
    """``with`` block around BEGIN [IMMEDIATE] … COMMIT, rolled back on any exception."""

    def __init__(
        self, conn: sqlite3.Connection, *, immediate: bool, lock: threading.Lock | None
    ) -> None:
        self.conn = conn
        self.immediate = immediate
        self.lock = lock

    def __enter__(self) -> sqlite3.Cursor:
        if self.lock is not None:
            self.lock.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE" if self.immediate else "BEGIN")
        except BaseException:
            if self.lock is not None:
                self.lock.release()
            raise
        return self.conn.cursor()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                try:
                    self.conn.execute("COMMIT")
                except BaseException:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise
            elif self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        finally:
            if self.lock is not None:
                self.lock.release()
