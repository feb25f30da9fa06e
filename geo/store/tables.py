"""Writing and reading the model's tables of the GeoPackage file, inside a transaction.

Geometry type names in ``gpkg_geometry_columns`` follow the data: ``POINT`` for enterprises;
lines and polygons get the single type the layer holds (``LINESTRING``, ``MULTIPOLYGON``, …) or
``GEOMETRY`` when it mixes simple and multi parts, so GDAL/QGIS report the true type. The column's
declared type must equal that name (GDAL warns otherwise), so a change of type rebuilds the (about
to be emptied anyway) table inside the write transaction.

What `read_table` returns (dtypes)
----------------------------------
Columns are the spec's field names in order, then ``geometry`` for layers; rows sorted by ``id``
with a fresh ``RangeIndex``.

* ``str``  → ``object``; a missing value is ``None`` (never ``""`` or NaN).
* ``int``  → ``int64`` when the field is required, pandas nullable ``Int64`` when optional.
* ``float`` → ``float64`` with NaN for missing.
* ``bool`` → ``bool`` when required, nullable ``boolean`` when optional.
* layers are GeoDataFrames in EPSG:4326; officers is a plain DataFrame.
"""

from __future__ import annotations

import secrets
import sqlite3

import geopandas as gpd
import pandas as pd

from geo.model import LayerSpec
from geo.store.base import SRS_ID
from geo.store.gpkg_blobs import decode_geometries, encode_geometries
from geo.store.records import PreparedTable, typed_column
from geo.store.schema import GEOM_COLUMN, quote, rebuild_table


def replace_table(
    cur: sqlite3.Cursor, name: str, spec: LayerSpec, data: PreparedTable, now: str
) -> None:
    """Replace every row of one table with ``data``; stamp it and its extent as changed ``now``."""
    rebuilt = False
    if spec.geometry:
        new_type = data.geometry_type_name()
        (old_type,) = cur.execute(
            "SELECT geometry_type_name FROM gpkg_geometry_columns WHERE table_name=?",
            (name,),
        ).fetchone()
        if new_type is not None and new_type != old_type:
            rebuild_table(cur, name, spec, new_type)
            rebuilt = True
    if not rebuilt:
        cur.execute(f"DELETE FROM {quote(name)}")
    _insert_rows(cur, name, spec, gpkg_rows(data))
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


def gpkg_rows(data: PreparedTable) -> list[tuple]:
    """The rows of a prepared table for the GeoPackage: the geometry blob first for a layer."""
    if data.geoms is None:
        return data.records
    blobs, _ = encode_geometries(data.geoms)
    return [(b, *r) for b, r in zip(blobs, data.records, strict=True)]


def _insert_rows(cur: sqlite3.Cursor, name: str, spec: LayerSpec, rows: list[tuple]) -> None:
    """Insert prepared rows (geometry blob first for a layer)."""
    cols = ([GEOM_COLUMN] if spec.geometry else []) + list(spec.field_names)
    sql = (
        f"INSERT INTO {quote(name)} ({', '.join(quote(c) for c in cols)}) "
        f"VALUES ({', '.join('?' * len(cols))})"
    )
    cur.executemany(sql, rows)


def has_feature_counts(cur: sqlite3.Cursor) -> bool:
    """Whether GDAL added its ``gpkg_ogr_contents`` feature counts, to be kept right."""
    found = cur.execute("SELECT 1 FROM sqlite_master WHERE name='gpkg_ogr_contents'").fetchone()
    return found is not None


def read_table(conn: sqlite3.Connection, name: str, spec: LayerSpec) -> pd.DataFrame:
    """One table as the model's frame (see the module's dtypes), sorted by id."""
    cols = list(spec.field_names) + ([GEOM_COLUMN] if spec.geometry else [])
    # fid order is id order for everything we write; a table edited by others is sorted here
    sql = f"SELECT {', '.join(quote(c) for c in cols)} FROM {quote(name)} ORDER BY fid"
    df = pd.read_sql_query(sql, conn)
    if not df["id"].is_monotonic_increasing:
        df = df.sort_values("id", ignore_index=True, na_position="last")
    for f in spec.fields:
        df[f.name] = typed_column(f, df[f.name])
    if not spec.geometry:
        return df
    geoms = decode_geometries(df.pop(GEOM_COLUMN).to_numpy())
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs=SRS_ID), crs=SRS_ID)
