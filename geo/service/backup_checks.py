"""What `geo restore` checks before a file may become the store, each refused in one line.

A backup is a file anyone may have edited, so it must hold exactly what geo itself writes:

* a whole-number ``schema_version`` this geo understands;
* no SQLite object the store does not create: no view, no foreign trigger (one firing on the
  next write could delete a layer), no index or table of its own; the store's own triggers and
  indexes only with the SQL the store creates them with (the write guard's ``geo_guard_*``
  triggers and ``geo_writer`` table included: a backup whose guard was weakened is refused, one
  made before the guard existed is restored and guarded). The expected objects are those a new
  store creates (`geo.store.schema.initialise` on an empty in-memory database);
* every layer table with exactly its columns (those of `geo.model.TABLES`, and ``fid``/``geom``);
* every row as a write would accept it (`geo.store.records.prepare_table`): geometries that
  decode, of the layer's kind and non-NULL, required values present, ids unique. A file that
  passes is one a server can load.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from pathlib import Path

import shapely.errors

from geo.errors import InvalidInput
from geo.model import TABLES
from geo.store.base import InvalidRecord
from geo.store.records import prepare_table
from geo.store.schema import SCHEMA_VERSION, ensure_history, initialise, quote
from geo.store.tables import read_table

# tables GDAL/QGIS may add to a GeoPackage; plain data (their triggers are still refused)
_FOREIGN_TABLES = frozenset({"gpkg_ogr_contents", "gpkg_extensions"})
# a blob that is not a geometry, text where a number belongs, a table SQLite cannot read
_UNREADABLE = (sqlite3.Error, shapely.errors.ShapelyError, ValueError, TypeError, IndexError)
_OPTIONAL = frozenset({"sqlite_sequence"})  # created by SQLite itself on first AUTOINCREMENT


class BackupError(InvalidInput):
    """A file that is not a geo GeoPackage, or a copy that failed (the message says why)."""


@functools.cache
def expected() -> tuple[dict[tuple[str, str], str | None], dict[str, frozenset[str]]]:
    """The objects a new store holds, ``(type, name)`` → SQL, and each table's columns."""
    conn = sqlite3.connect(":memory:")
    try:
        cur = conn.cursor()
        initialise(cur, Path(":memory:"))
        ensure_history(cur)
        rows = cur.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
        objects = {(t, n): _norm(s) for t, n, s in rows}
        columns = {
            n: frozenset(r[1] for r in cur.execute(f"PRAGMA table_info({quote(n)})"))
            for (t, n) in objects
            if t == "table"
        }
    finally:
        conn.close()
    return objects, columns


def _norm(sql: str | None) -> str | None:
    """SQL with whitespace folded and ``IF NOT EXISTS`` dropped (as sqlite_master keeps it)."""
    if sql is None:
        return None
    return re.sub(r"\s+", " ", re.sub(r"(?i)\bIF NOT EXISTS\b", "", sql)).strip()


def schema_version(conn: sqlite3.Connection, path: Path) -> int:
    """The file's ``schema_version``, a whole number from 1 to `SCHEMA_VERSION`."""
    row = conn.execute("SELECT value FROM geo_meta WHERE key='schema_version'").fetchone()
    raw = row[0] if row else None
    try:
        found = int(str(raw).strip()) if raw is not None else 0
    except ValueError:
        raise BackupError(
            f"{path}: geo_meta.schema_version is {str(raw)[:40]!r}, not a whole number; "
            "restore a file written by `geo backup`"
        ) from None
    if not 1 <= found <= SCHEMA_VERSION:
        raise BackupError(
            f"{path} has store schema version {found}; this geo understands 1 to {SCHEMA_VERSION}"
        )
    return found


def check_objects(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse any view, trigger, index or table the store does not create, or changed SQL."""
    objects, _ = expected()
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    for kind, name, table, sql in sorted(rows, key=lambda r: (r[0] != "trigger", r[1])):
        if kind == "table" and (name in _FOREIGN_TABLES or name in _OPTIONAL):
            continue
        if kind == "index" and (sql is None or table in _FOREIGN_TABLES):
            continue  # SQLite's own autoindexes (PRIMARY KEY, UNIQUE)
        want = objects.get((kind, name), "absent")
        if want == "absent":
            raise BackupError(
                f"{path} holds a {kind} {name!r} (on {table!r}) that geo does not create; "
                f"a backup holds only geo's own tables: drop it or restore another backup"
            )
        if kind != "table" and _norm(sql) != want:
            raise BackupError(
                f"{path}: the {kind} {name!r} is not the one geo creates (its SQL differs); "
                "restore a file written by `geo backup`"
            )


def check_columns(conn: sqlite3.Connection, path: Path) -> None:
    """Every table geo knows has exactly the columns geo creates it with."""
    _, columns = expected()
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for table in sorted(present & set(columns)):
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({quote(table)})")}
        missing, extra = sorted(columns[table] - have), sorted(have - columns[table])
        if missing or extra:
            what = "; ".join(
                part
                for part in (
                    f"missing column(s) {', '.join(missing)}" if missing else "",
                    f"unknown column(s) {', '.join(extra)}" if extra else "",
                )
                if part
            )
            raise BackupError(f"{path}: table {table!r}: {what}; restore another backup")


def check_rows(conn: sqlite3.Connection, path: Path) -> None:
    """Every layer's rows as a write would accept them (geometries decode, are non-NULL…)."""
    for name, spec in TABLES.items():
        try:
            prepare_table(name, read_table(conn, name, spec))
        except InvalidRecord as exc:
            raise BackupError(f"{path}: {exc}; restore another backup") from exc
        except _UNREADABLE as exc:
            # a blob that is not a geometry, a text where a number belongs
            raise BackupError(
                f"{path}: table {name!r} cannot be read ({type(exc).__name__}: "
                f"{str(exc)[:160]}); restore another backup"
            ) from exc
