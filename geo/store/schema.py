"""The GeoPackage file's tables: creating and checking the schema, the community history table.

The file is a real GeoPackage that QGIS and GDAL open: the standard ``gpkg_*`` tables, one
feature table per layer of `geo.model.LAYERS` (``fid`` primary key, ``geom`` GeoPackage geometry
blob, one column per model field, a UNIQUE index on ``id``) and an ``attributes`` table for
officers. Our own bookkeeping lives in ``geo_meta`` (``schema_version``), ``geo_versions`` (the
history), ``geo_table_stamps`` (a random stamp per table write) and ``community_history`` (one
row per version of a community, created on the first recorded version). The write guard
(`geo.store.gpkg_guard`: the ``geo_writer`` marker and ``geo_guard_*`` triggers) is created with
the tables it guards, so a file written before it gets it on its first open.

Every function here takes the cursor of an open transaction (see `geo.store.sqlite`).
"""

from __future__ import annotations

import secrets
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from geo.model import TABLES, LayerSpec
from geo.store import gpkg_guard, sqlite_admin
from geo.store.base import SRS_ID, StoreSchemaError

SCHEMA_VERSION = 2  # 2: the write guard (geo.store.gpkg_guard), which geo 1 would trip on
GPKG_APPLICATION_ID = 0x47504B47  # 'GPKG'
GPKG_USER_VERSION = 10300  # GeoPackage 1.3.0
_OLD_GPKG_IDS = (0x47503130, 0x47503131)  # 'GP10', 'GP11' (GeoPackage 1.0 / 1.1)
GEOM_COLUMN = "geom"

_SQL_TYPES = {"str": "TEXT", "int": "INTEGER", "float": "REAL", "bool": "BOOLEAN"}
# the declared geometry type of an empty new table, per LayerSpec.geometry kind
_DEFAULT_TYPE = {"point": "POINT", "line": "LINESTRING", "polygon": "POLYGON"}

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
HISTORY_COLUMNS = (
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


def quote(name: str) -> str:
    """Quote an SQL identifier (layer fields include words such as ``class`` and ``type``)."""
    return '"' + name.replace('"', '""') + '"'


def now() -> str:
    """ISO 8601 UTC with milliseconds, the format of gpkg_contents.last_change."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def initialise(cur: sqlite3.Cursor, path: Path) -> bool:
    """Create or check the schema of the file at ``path``; True when its header was (re)written.

    Raises `StoreSchemaError` for an SQLite file that is not a GeoPackage, or one written by a
    newer geo.
    """
    existing = {r[0] for r in cur.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    app_id = _check_file(cur, path, existing)
    header_written = _write_header(cur, app_id)
    for statement in _GPKG_DDL.split(";"):
        if statement.strip():
            cur.execute(statement)
    cur.executemany(
        "INSERT OR IGNORE INTO gpkg_spatial_ref_sys (srs_name, srs_id, organization, "
        "organization_coordsys_id, definition, description) VALUES (?, ?, ?, ?, ?, ?)",
        _SRS_ROWS,
    )
    cur.execute(  # an older file is upgraded (what it lacks is added below)
        "INSERT INTO geo_meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) "
        "DO UPDATE SET value = excluded.value WHERE CAST(value AS INTEGER) < ?",
        (str(SCHEMA_VERSION), SCHEMA_VERSION),
    )
    sqlite_admin.ensure_schema(cur)  # users, tokens, the audit log, the serving registry
    cur.execute(  # a new random stamp per table write: snapshots re-read changed tables
        "CREATE TABLE IF NOT EXISTS geo_table_stamps "
        "(table_name TEXT NOT NULL PRIMARY KEY, stamp TEXT NOT NULL)"
    )
    cur.executemany(  # tables of a file written before stamps existed
        "INSERT OR IGNORE INTO geo_table_stamps (table_name, stamp) VALUES (?, ?)",
        [(name, secrets.token_hex(8)) for name in TABLES],
    )
    _ensure_layers(cur, existing)
    gpkg_guard.protect_all(cur)  # writes from other programs are refused (gpkg_guard)
    return header_written


def _check_file(cur: sqlite3.Cursor, path: Path, existing: set[str]) -> int:
    """The file's application id, after checking it is a GeoPackage this geo understands."""
    app_id = int(cur.execute("PRAGMA application_id").fetchone()[0])
    is_gpkg = app_id in (GPKG_APPLICATION_ID, *_OLD_GPKG_IDS) or (
        app_id == 0 and "gpkg_contents" in existing
    )
    if existing and not is_gpkg:
        raise StoreSchemaError(
            f"{path} is an SQLite file but not a GeoPackage "
            f"(application_id {app_id:#x}); give a new or GeoPackage path"
        )
    if "geo_meta" in existing:
        row = cur.execute("SELECT value FROM geo_meta WHERE key='schema_version'").fetchone()
        found = int(row[0]) if row else SCHEMA_VERSION
        if found > SCHEMA_VERSION:
            raise StoreSchemaError(
                f"{path} has store schema version {found}, newer than the "
                f"{SCHEMA_VERSION} this geo understands: upgrade geo to open it"
            )
    return app_id


def _write_header(cur: sqlite3.Cursor, app_id: int) -> bool:
    """Set the GeoPackage application id and user version; True when either changed."""
    header_written = False
    if app_id != GPKG_APPLICATION_ID:
        cur.execute(f"PRAGMA application_id = {GPKG_APPLICATION_ID}")
        header_written = True
    if cur.execute("PRAGMA user_version").fetchone()[0] < GPKG_USER_VERSION:
        cur.execute(f"PRAGMA user_version = {GPKG_USER_VERSION}")
        header_written = True
    return header_written


def _ensure_layers(cur: sqlite3.Cursor, existing: set[str]) -> None:
    """Create every table of `geo.model.TABLES` (or add the fields it lacks), registered."""
    stamp = now()
    for name, spec in TABLES.items():
        if name in existing:
            _add_missing_columns(cur, name, spec)
        else:
            geometry_type = _DEFAULT_TYPE[spec.geometry] if spec.geometry else None
            _create_table(cur, name, spec, geometry_type)
        cur.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
            "description, last_change, srs_id) VALUES (?, ?, ?, '', ?, ?)",
            (
                name,
                "features" if spec.geometry else "attributes",
                name,
                stamp,
                SRS_ID if spec.geometry else None,
            ),
        )
        if spec.geometry:
            cur.execute(
                "INSERT OR IGNORE INTO gpkg_geometry_columns (table_name, column_name, "
                "geometry_type_name, srs_id, z, m) VALUES (?, ?, ?, ?, 0, 0)",
                (name, GEOM_COLUMN, _DEFAULT_TYPE[spec.geometry], SRS_ID),
            )


def _create_table(
    cur: sqlite3.Cursor, name: str, spec: LayerSpec, geometry_type: str | None
) -> None:
    """Create one table of the model (``fid``, ``geom`` when ``geometry_type``, its fields)."""
    cols = ["fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL"]
    if geometry_type:
        cols.append(f"{GEOM_COLUMN} {geometry_type}")
    cols += [f"{quote(f.name)} {_SQL_TYPES[f.type]}" for f in spec.fields]
    cur.execute(f"CREATE TABLE {quote(name)} ({', '.join(cols)})")
    cur.execute(f"CREATE UNIQUE INDEX {quote(name + '_id_unique')} ON {quote(name)} (id)")
    gpkg_guard.protect(cur, name)


def _add_missing_columns(cur: sqlite3.Cursor, name: str, spec: LayerSpec) -> None:
    """A field added to the model after the file was created becomes a new NULL column."""
    have = {r[1] for r in cur.execute(f"PRAGMA table_info({quote(name)})")}
    for f in spec.fields:
        if f.name not in have:
            cur.execute(
                f"ALTER TABLE {quote(name)} ADD COLUMN {quote(f.name)} {_SQL_TYPES[f.type]}"
            )
    if spec.geometry and GEOM_COLUMN not in have:
        raise StoreSchemaError(f"table {name!r} in the store has no {GEOM_COLUMN!r} column")


def rebuild_table(cur: sqlite3.Cursor, name: str, spec: LayerSpec, geometry_type: str) -> None:
    """Recreate an (emptied) feature table whose declared geometry type must change."""
    rtree = f"rtree_{name}_{GEOM_COLUMN}"
    cur.execute(f"DROP TABLE IF EXISTS {quote(rtree)}")
    if cur.execute("SELECT 1 FROM sqlite_master WHERE name='gpkg_extensions'").fetchone():
        cur.execute(
            "DELETE FROM gpkg_extensions WHERE table_name=? AND extension_name='gpkg_rtree_index'",
            (name,),
        )
    cur.execute(f"DROP TABLE {quote(name)}")
    _create_table(cur, name, spec, geometry_type)
    cur.execute(
        "UPDATE gpkg_geometry_columns SET geometry_type_name=? WHERE table_name=?",
        (geometry_type, name),
    )


def store_version(cur: sqlite3.Cursor) -> int:
    """The latest committed store version (0 for a new store)."""
    (version,) = cur.execute("SELECT COALESCE(MAX(version), 0) FROM geo_versions").fetchone()
    return int(version)


# --------------------------------------------------------------------------- community history


def has_history(cur: sqlite3.Cursor) -> bool:
    """Whether the community history table exists yet."""
    found = cur.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (HISTORY_TABLE,)
    ).fetchone()
    return found is not None


def ensure_history(cur: sqlite3.Cursor) -> None:
    """Create the history feature table (registered in gpkg_contents) if missing."""
    if has_history(cur):
        return
    cols = ", ".join(f"{quote(n)} {t}" for n, t in HISTORY_COLUMNS)
    cur.execute(
        f"CREATE TABLE {HISTORY_TABLE} (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "
        f"{GEOM_COLUMN} GEOMETRY, {cols})"
    )
    cur.execute(
        f"CREATE UNIQUE INDEX {HISTORY_TABLE}_version_unique "
        f"ON {HISTORY_TABLE} (community_id, version)"
    )
    gpkg_guard.protect(cur, HISTORY_TABLE)
    cur.execute(
        "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
        "description, last_change, srs_id) VALUES (?, 'features', ?, ?, ?, ?)",
        (HISTORY_TABLE, HISTORY_TABLE, "versions of community boundaries", now(), SRS_ID),
    )
    cur.execute(
        "INSERT OR IGNORE INTO gpkg_geometry_columns (table_name, column_name, "
        "geometry_type_name, srs_id, z, m) VALUES (?, ?, 'GEOMETRY', ?, 0, 0)",
        (HISTORY_TABLE, GEOM_COLUMN, SRS_ID),
    )


def insert_history(cur: sqlite3.Cursor, rows: list[tuple]) -> None:
    """Append history rows: the geometry blob, then `HISTORY_COLUMNS` in order."""
    cols = [GEOM_COLUMN] + [n for n, _ in HISTORY_COLUMNS]
    cur.executemany(
        f"INSERT INTO {HISTORY_TABLE} ({', '.join(quote(c) for c in cols)}) "
        f"VALUES ({', '.join('?' * len(cols))})",
        rows,
    )


def community_version(cur: sqlite3.Cursor, community_id: str) -> int:
    """The community's latest history version (0 when it has none)."""
    if not has_history(cur):
        return 0
    (v,) = cur.execute(
        f"SELECT COALESCE(MAX(version), 0) FROM {HISTORY_TABLE} WHERE community_id=?",
        (community_id,),
    ).fetchone()
    return int(v)
