"""The live GeoPackage's write guard: writes that do not come through geo are refused by SQLite.

QGIS, ``ogrinfo -sql``, ``ogr2ogr -update`` or ``sqlite3`` may open the store's file and write
into it; such a write would skip validation, the version number, the community history and the
audit log, and a running server would not see it. So every table geo serves or keeps books in
carries plain-SQL triggers (``geo_guard_<table>_<insert|update|delete>``, BEFORE each write) that
``RAISE(ABORT, …)`` with a sentence saying what to do instead, unless the one-row table
``geo_writer`` says ``writing = 1``. geo sets it inside each of its own write transactions right
after ``BEGIN IMMEDIATE`` (`begin`) and sets it back to 0 just before ``COMMIT`` (`end`), so no
other connection ever sees it set (WAL readers see committed rows only; a crash rolls it back).
The triggers are plain SQL, so GDAL, QGIS and the ``sqlite3`` shell fire them.

What is guarded: the layers and ``officers`` (`geo.model.TABLES`), ``community_history``,
``geo_versions``, ``geo_table_stamps``, ``geo_users``, ``geo_tokens`` and inserts into
``geo_audit`` (its updates and deletes are refused by its append-only triggers already). Not
guarded: the ``gpkg_*`` tables (GDAL keeps its feature counts and extents there when it opens
the file for update), ``geo_meta`` (the schema version, checked on open) and the serving
registry ``geo_serving`` (runtime state, never copied into backups). Reading is untouched.

This guards against accidental writes, not against someone who means to bypass it (a file's
owner may drop triggers or set the marker). So every geo write (the heartbeat of each server
included, every few seconds) checks the guard first: triggers missing (or changed) on a store
that had the guard, or a marker left set by someone else, are repaired inside that
transaction, logged as a warning and recorded as an audit row (actor ``geo``, path ``guard
restored``). A store written before the guard existed gets it, silently, when geo opens it.
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3

from geo.model import TABLES
from geo.store import sqlite_admin

__all__ = [
    "GUARD_TABLE",
    "MESSAGE",
    "begin",
    "end",
    "expected_triggers",
    "protect",
    "protect_all",
    "trigger_sql",
]

log = logging.getLogger("geo.store")

GUARD_TABLE = "geo_writer"
MESSAGE = (
    "this GeoPackage is managed by geo and refuses writes from other programs: edit through "
    'the geo API (QGIS: an OGC API - Features layer) or the geo commands; see README "Editing '
    'in QGIS"'
)
_PREFIX = "geo_guard_"
_OPERATIONS = ("insert", "update", "delete")
# tables whose every write is guarded (community_history is created on the first edit)
_ALL = (*TABLES, "community_history", "geo_versions", "geo_table_stamps", "geo_users", "geo_tokens")
# geo_audit: its UPDATE and DELETE are refused by its append-only triggers
GUARDED: dict[str, tuple[str, ...]] = {**{t: _OPERATIONS for t in _ALL}, "geo_audit": ("insert",)}
_GUARD_DDL = (
    f"CREATE TABLE IF NOT EXISTS {GUARD_TABLE} (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "writing INTEGER NOT NULL CHECK (writing IN (0, 1)))"
)


def _quote(name: str) -> str:
    """An SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def _norm(sql: str | None) -> str:
    """SQL as sqlite_master keeps it, compared: ``IF NOT EXISTS`` dropped, whitespace folded."""
    return re.sub(r"\s+", " ", re.sub(r"(?i)\bIF NOT EXISTS\b", "", sql or "")).strip()


@functools.cache
def _stored_sql(table: str, operation: str) -> str:
    """One guard trigger's SQL as sqlite_master keeps it (without ``IF NOT EXISTS``)."""
    return trigger_sql(table, operation).replace("CREATE TRIGGER IF NOT EXISTS ", "CREATE TRIGGER ")


def trigger_name(table: str, operation: str) -> str:
    """The name of the guard trigger on ``table`` for ``operation`` (insert, update, delete)."""
    return f"{_PREFIX}{table}_{operation}"


def trigger_sql(table: str, operation: str) -> str:
    """The trigger refusing ``operation`` on ``table`` unless geo's own transaction runs."""
    message = f"geo refused this {operation.upper()} on {table}: {MESSAGE}".replace("'", "''")
    return (
        f"CREATE TRIGGER IF NOT EXISTS {_quote(trigger_name(table, operation))} "
        f"BEFORE {operation.upper()} ON {_quote(table)} "
        f"WHEN (SELECT writing FROM {GUARD_TABLE} WHERE id = 1) IS NOT 1 "
        f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
    )


def expected_triggers(tables: set[str] | frozenset[str]) -> dict[str, tuple[str, str]]:
    """Every guard trigger the present ``tables`` must carry: name → (table, operation)."""
    return {trigger_name(t, op): (t, op) for t, ops in GUARDED.items() if t in tables for op in ops}


def _ensure_marker(cur: sqlite3.Cursor) -> None:
    """The marker table and its row, created set (only ever inside geo's write transaction)."""
    cur.execute(_GUARD_DDL)
    cur.execute(f"INSERT OR IGNORE INTO {GUARD_TABLE} (id, writing) VALUES (1, 1)")


def protect(cur: sqlite3.Cursor, table: str) -> None:
    """Create the guard triggers of one (new or rebuilt) table, if it is a guarded one."""
    _ensure_marker(cur)
    for op in GUARDED.get(table, ()):
        cur.execute(trigger_sql(table, op))


def protect_all(cur: sqlite3.Cursor) -> None:
    """Create the guard triggers of every guarded table the file has (and the marker table)."""
    tables = {r[0] for r in cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    _ensure_marker(cur)
    for table in sorted(tables & set(GUARDED)):
        protect(cur, table)


def begin(cur: sqlite3.Cursor) -> None:
    """Open geo's write in the transaction just begun on ``cur``: set the marker, and check
    (and repair, saying so) the guard. A file without any guard is left as it is here:
    `geo.store.schema.initialise` adds it (every store opens with it)."""
    rows = cur.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'trigger')"
    ).fetchall()
    tables = {n for t, n, _ in rows if t == "table"}
    triggers = {n: sql for t, n, sql in rows if t == "trigger"}
    problems = []
    if GUARD_TABLE in tables:
        row = cur.execute(f"SELECT writing FROM {GUARD_TABLE} WHERE id = 1").fetchone()
        if row is None or row[0] != 0:
            problems.append(
                f"{GUARD_TABLE}.writing was {'missing' if row is None else row[0]!r}, not 0 "
                "(another program switched the guard off)"
            )
        cur.execute(f"INSERT OR REPLACE INTO {GUARD_TABLE} (id, writing) VALUES (1, 1)")
    elif any(t.startswith(_PREFIX) for t in triggers):
        problems.append(f"the table {GUARD_TABLE} was missing")
        _ensure_marker(cur)
    else:
        return  # a file written before the guard, or a new one
    expected = expected_triggers(tables)
    missing = sorted(set(expected) - set(triggers))
    changed = sorted(
        n for n in set(expected) & set(triggers)
        if triggers[n] != _stored_sql(*expected[n])
        and _norm(triggers[n]) != _norm(_stored_sql(*expected[n]))
    )  # fmt: skip
    for name in changed:
        cur.execute(f"DROP TRIGGER {_quote(name)}")
    for name in missing + changed:
        cur.execute(trigger_sql(*expected[name]))
    if missing:
        problems.append(f"{len(missing)} guard trigger(s) were missing: {', '.join(missing)}")
    if changed:
        problems.append(f"{len(changed)} guard trigger(s) were changed: {', '.join(changed)}")
    if problems:
        _say_restored(cur, tables, "; ".join(problems))


def end(cur: sqlite3.Cursor) -> None:
    """Close geo's write just before ``COMMIT``: the marker is 0 again in what others see."""
    found = cur.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (GUARD_TABLE,)
    ).fetchone()
    if found:
        cur.execute(f"UPDATE {GUARD_TABLE} SET writing = 0 WHERE id = 1")


def _say_restored(cur: sqlite3.Cursor, tables: set[str], problem: str) -> None:
    """Log the repaired guard and record it in the audit log (when the file has one)."""
    detail = (
        f"{problem}; restored. Writes made meanwhile by other programs are in no version, "
        "history or audit row: compare with a backup (geo backup) if in doubt"
    )
    log.warning("the GeoPackage's write guard was tampered with: %s", detail)
    if "geo_audit" not in tables:
        return
    version = 0
    if "geo_versions" in tables:
        version = int(
            cur.execute("SELECT COALESCE(MAX(version), 0) FROM geo_versions").fetchone()[0]
        )
    sqlite_admin.append_audit(
        cur, None, actor="geo", before=version, after=version, default_path="guard restored",
        detail=detail,
    )  # fmt: skip
