"""Writes into GeoPackage files that are not (yet) the live store: a backup's or a restore's
copy written aside (`geo.service.backup`), and the live store's version and registry read just
before a restore replaces it. The SQL of these copies lives here, beside the store that owns
the format.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from geo.model import TABLES
from geo.store import gpkg_guard, sqlite_admin
from geo.store.schema import initialise, now
from geo.store.sqlite import BUSY_TIMEOUT_S


@contextlib.contextmanager
def editing(path: Path) -> Iterator[sqlite3.Cursor]:
    """A write transaction on the aside copy ``path`` (not live: no fsync needed until the
    copy into the store, which is itself durable)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN IMMEDIATE")
        try:
            gpkg_guard.begin(conn.cursor())  # the copy carries the live store's write guard
            yield conn.cursor()
            gpkg_guard.end(conn.cursor())
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


def _has_table(cur: sqlite3.Cursor, name: str) -> bool:
    """Whether the file has a table (or other object) of this name."""
    return cur.execute("SELECT 1 FROM sqlite_master WHERE name=?", (name,)).fetchone() is not None


def clear_serving(cur: sqlite3.Cursor) -> None:
    """Drop the serving registry a copy carries: its processes run on another store."""
    if _has_table(cur, "geo_serving"):
        cur.execute("DELETE FROM geo_serving")


def live_state(db: Path) -> tuple[int, list[tuple]]:
    """The live store's version and its serving registry (the servers that run on it)."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    try:
        version = conn.execute("SELECT COALESCE(MAX(version), 0) FROM geo_versions").fetchone()[0]
        rows = []
        if _has_table(conn.cursor(), "geo_serving"):
            rows = conn.execute(
                "SELECT worker, pid, version, seen, host FROM geo_serving"
            ).fetchall()
        return int(version), rows
    finally:
        conn.close()


def as_new_version(
    part: Path, author: str, reason: str, backup_version: int, live_version: int,
    live_servers: list[tuple],
) -> int:  # fmt: skip
    """Make the aside copy a new store version above ``live_version``: the backup's tables, new
    table stamps, the live serving registry, a version row and an audit row. Its number."""
    version = max(live_version, backup_version) + 1
    with editing(part) as cur:
        initialise(cur, part)  # what opening it as a store would add (an older file's tables)
        clear_serving(cur)
        cur.executemany(
            "INSERT INTO geo_serving (worker, pid, version, seen, host) VALUES (?, ?, ?, ?, ?)",
            live_servers,
        )
        stamps = [(name, secrets.token_hex(8)) for name in TABLES]  # every server re-reads all
        cur.executemany("INSERT OR REPLACE INTO geo_table_stamps VALUES (?, ?)", stamps)
        cur.execute(
            "INSERT INTO geo_versions (version, author, time, reason) VALUES (?, ?, ?, ?)",
            (version, author, now(), reason),
        )
        sqlite_admin.append_audit(
            cur, None, actor=author, before=live_version, after=version,
            default_path="restore", detail=reason,
        )  # fmt: skip
    return version
