"""The embedded store: an OGC GeoPackage 1.3 file written with plain ``sqlite3``.

The file's layout is `geo.store.schema`; input frames are checked by `geo.store.records`,
geometries encoded by `geo.store.gpkg_blobs`, tables written and read by `geo.store.tables`.

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
* GDAL/QGIS may read the file from *other processes* at any time; their writes are refused
  by the file itself (`geo.store.gpkg_guard`: triggers that let only geo's own write
  transactions through, set up by `_Transaction`). Do not open it
  with pyogrio/GDAL *inside a process that holds an open SQLiteStore*: GDAL links its own copy
  of SQLite, and two SQLite copies in one process defeat each other's POSIX locks (GDAL closing
  its handle deletes the WAL under our connections: "disk I/O error"). Read through
  `snapshot()` instead, or close the store first.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geo.model import COMMUNITIES, TABLES
from geo.store import gpkg_guard, sqlite_admin
from geo.store.accounts import AccountsMixin
from geo.store.base import (
    SRS_ID,
    CommunityExists,
    CommunityVersion,
    InvalidRecord,
    Server,
    Snapshot,
    StaleCommunityError,
    StaleVersionError,
    Store,
    StoreDump,
    StoreSchemaError,
    UnknownCommunity,
    VersionInfo,
    read_tables,
)
from geo.store.gpkg_blobs import decode_geometries, encode_geometries, register_functions
from geo.store.schema import (
    HISTORY_COLUMNS,
    HISTORY_TABLE,
    community_version,
    ensure_history,
    has_history,
    initialise,
    insert_history,
    now,
    quote,
    store_version,
)
from geo.store.table_writes import TableWritesMixin

if TYPE_CHECKING:  # geopandas is imported where tables are read or written (geo.store.tables):
    import pandas as pd  # `stamps` (geo.ready) needs neither

    from geo.store.records import PreparedTable

# geo.backup checks a file's header and schema, and geo.cli.data catches the stale version,
# through this module
__all__ = ["BUSY_TIMEOUT_S", "SQLiteStore"]

BUSY_TIMEOUT_S = 30.0


class SQLiteStore(AccountsMixin, TableWritesMixin):
    """`geo.store.base.Store` on a GeoPackage file (created if missing)."""

    _admin = sqlite_admin  # users, tokens, audit: geo.store.accounts

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
            with self._write() as cur:
                header_written = initialise(cur, self.path)
            if header_written:
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
        """This thread's connection (opened in WAL mode on first use)."""
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
            register_functions(conn)
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

    def _write(self) -> _Transaction:
        """A write transaction (BEGIN IMMEDIATE, serialised in this process)."""
        return _Transaction(self._conn(), immediate=True, lock=self._write_lock)

    def _read(self) -> _Transaction:
        """A read transaction: one consistent version."""
        return _Transaction(self._conn(), immediate=False, lock=None)

    # -- the Store protocol

    def version(self) -> int:
        """The latest committed version (0 for a new store)."""
        row = self._conn().execute("SELECT COALESCE(MAX(version), 0) FROM geo_versions").fetchone()
        return int(row[0])

    def history(self, limit: int = 100) -> list[VersionInfo]:
        """The last ``limit`` versions, newest first."""
        rows = self._conn().execute(
            "SELECT version, author, time, reason FROM geo_versions ORDER BY version DESC LIMIT ?",
            (int(limit),),
        )
        return [VersionInfo(int(v), a, t, r) for v, a, t, r in rows]

    def _replace(
        self,
        prepared: Mapping[str, PreparedTable],
        *,
        author: str,
        reason: str,
        expected_version: int | None,
        audit: Mapping[str, Any] | None,
        path: str,
        record_history: bool = False,
    ) -> int:
        """Write the ``prepared`` tables as one new version (`replace_all`, `replace_tables`)."""
        from geo.store.tables import has_feature_counts, replace_table

        stamp = now()
        with self._write() as cur:
            current = store_version(cur)
            if expected_version is not None and expected_version != current:
                raise StaleVersionError(expected_version, current)
            ogr_counts = has_feature_counts(cur)
            for name, data in prepared.items():
                replace_table(cur, name, TABLES[name], data, stamp)
                if ogr_counts:
                    _set_feature_count(cur, name, len(data))
            version = current + 1
            _append_version(cur, version, str(author), stamp, str(reason))
            if record_history and "communities" in prepared and len(prepared["communities"]):
                _record_loaded_communities(
                    cur, prepared["communities"], version, str(author), stamp, str(reason)
                )
            sqlite_admin.append_audit(
                cur, audit, actor=str(author), before=current, after=version,
                default_path=path, detail=str(reason),
            )  # fmt: skip
        return version

    def snapshot(
        self, reuse: Snapshot | None = None, only: Collection[str] | None = None
    ) -> Snapshot:
        """All tables (or those named in ``only``) at the latest version; tables whose stamp
        equals their stamp in ``reuse`` (not written since) are taken from it instead of read
        again."""
        from geo.store.tables import read_table

        with self._read() as cur:
            version, stamps = _stamps(cur)
            tables = read_tables(stamps, reuse, partial(read_table, cur.connection), only)
        return Snapshot(version, tables, stamps)

    def stamps(self) -> tuple[int, dict[str, str]]:
        """The latest version and every table's stamp (one read, no table read)."""
        with self._read() as cur:
            return _stamps(cur)

    # -- community history and edits

    def community_version(self, community_id: str) -> int:
        """The community's latest history version (0 when it has none)."""
        with self._read() as cur:
            return community_version(cur, community_id)

    def community_history(self, community_id: str) -> list[CommunityVersion]:
        """Every version of a community, newest first (empty when it has none)."""
        with self._read() as cur:
            if not has_history(cur):
                return []
            cols = [n for n, _ in HISTORY_COLUMNS]
            rows = cur.execute(
                f"SELECT geom, {', '.join(quote(c) for c in cols)} FROM {HISTORY_TABLE} "
                "WHERE community_id=? ORDER BY version DESC",
                (community_id,),
            ).fetchall()
        geoms: list[Any] = list(decode_geometries([r[0] for r in rows])) if rows else []
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
        from geo.store.tables import read_table

        stamp = now()
        with self._write() as cur:
            current = community_version(cur, community_id)
            if expected_version is not None and int(expected_version) != current:
                raise StaleCommunityError(community_id, int(expected_version), current)
            table = read_table(cur.connection, "communities", COMMUNITIES)
            hit = _rows_of(table, community_id, create=create)
            store_current = store_version(cur)
            new_store_version = store_current + 1
            ensure_history(cur)
            history: list[tuple] = []
            if len(hit) and current == 0:
                old = table.iloc[int(hit[0])]
                history.append(_baseline_row(old, community_id, new_store_version, stamp))
                current = 1
            record = {} if create else table.iloc[int(hit[0])].drop("geometry").to_dict()
            record.update(fields or {})
            record["id"] = community_id
            _write_communities(cur, table, hit, record, geometry, stamp)
            _append_version(cur, new_store_version, str(author), stamp, f"{community_id}: {reason}")
            version = current + 1
            history.append(
                (_blob(geometry), community_id, version, new_store_version, str(author), stamp,
                 str(reason), action, record.get("four_to"), record.get("name"))
            )  # fmt: skip
            insert_history(cur, history)
            cur.execute(
                "UPDATE gpkg_contents SET last_change=? WHERE table_name=?", (stamp, HISTORY_TABLE)
            )
            sqlite_admin.append_audit(
                cur, audit, actor=str(author), before=store_current, after=new_store_version,
                default_path=f"{action} community", target=community_id, detail=str(reason),
            )  # fmt: skip
        return version, new_store_version

    # -- the serving registry: every process of a file store runs on this host

    same_host = True

    def serving_mark(self, worker: str, version: int) -> None:
        """Upsert this process's registry row (heartbeat now)."""
        with self._write() as cur:
            sqlite_admin.serving_mark(cur, worker, version)

    def serving_leave(self, workers: list[str]) -> None:
        """Remove registry rows."""
        if workers:
            with self._write() as cur:
                sqlite_admin.serving_leave(cur, workers)

    def serving_list(self) -> list[Server]:
        """Every registry row."""
        with self._read() as cur:
            return sqlite_admin.serving_list(cur)

    def wait_for_change(self, timeout: float) -> None:
        """A file store sends no notifications: wait ``timeout`` seconds (the poll)."""
        time.sleep(max(0.0, timeout))

    # -- copies between store implementations

    def export(self) -> StoreDump:
        """Everything but the serving registry, in one read transaction."""
        from geo.store.tables import read_table

        with self._read() as cur:
            conn = cur.connection
            version = store_version(cur)
            tables = {name: read_table(conn, name, spec) for name, spec in TABLES.items()}
            versions = [
                VersionInfo(int(v), a, t, r)
                for v, a, t, r in cur.execute(
                    "SELECT version, author, time, reason FROM geo_versions ORDER BY version"
                ).fetchall()
            ]
            history = _all_history(cur)
            users_, tokens, audit = sqlite_admin.dump_admin(cur)
        return StoreDump(Snapshot(version, tables), versions, history, users_, tokens, audit)

    def import_dump(self, dump: StoreDump, *, copy: bool, author: str, reason: str) -> int:
        """Write ``dump`` in one transaction (see `geo.store.base.Store.import_dump`)."""
        from geo.store.records import prepare_table
        from geo.store.tables import has_feature_counts, replace_table

        prepared = {name: prepare_table(name, dump.snapshot.tables.get(name)) for name in TABLES}
        stamp = now()
        with self._write() as cur:
            current = store_version(cur)
            if copy and current:
                raise InvalidRecord("a copy goes into an empty store; this one has versions")
            ogr_counts = has_feature_counts(cur)
            for name, data in prepared.items():
                replace_table(cur, name, TABLES[name], data, stamp)
                if ogr_counts:
                    _set_feature_count(cur, name, len(data))
            ensure_history(cur)
            cur.execute(f"DELETE FROM {HISTORY_TABLE}")
            insert_history(cur, [_history_row(h) for h in dump.community_history])
            sqlite_admin.load_admin(cur, dump.users, dump.tokens, dump.audit if copy else None)
            if copy:
                cur.executemany(
                    "INSERT INTO geo_versions (version, author, time, reason) VALUES (?,?,?,?)",
                    [(v.version, v.author, v.time, v.reason) for v in dump.versions],
                )
                return dump.snapshot.version
            version = max(current, dump.snapshot.version) + 1
            _append_version(cur, version, str(author), stamp, str(reason))
            sqlite_admin.append_audit(
                cur, None, actor=str(author), before=current, after=version,
                default_path="restore", detail=str(reason),
            )  # fmt: skip
        return version


def _all_history(cur: sqlite3.Cursor) -> list[CommunityVersion]:
    """Every community history row, by community and version."""
    if not has_history(cur):
        return []
    cols = [n for n, _ in HISTORY_COLUMNS]
    rows = cur.execute(
        f"SELECT geom, {', '.join(quote(c) for c in cols)} FROM {HISTORY_TABLE} "
        "ORDER BY community_id, version"
    ).fetchall()
    geoms: list[Any] = list(decode_geometries([r[0] for r in rows])) if rows else []
    return [
        CommunityVersion(geometry=g, **dict(zip(cols, r[1:], strict=True)))
        for g, r in zip(geoms, rows, strict=True)
    ]


def _history_row(h: CommunityVersion) -> tuple:
    """A `CommunityVersion` as a history table row (geometry blob first)."""
    return (
        _blob(h.geometry), h.community_id, h.version, h.store_version, h.author, h.time,
        h.reason, h.action, h.four_to, h.name,
    )  # fmt: skip


def _blob(geometry: Any) -> bytes:
    """The GeoPackage blob of one geometry."""
    (blob,), _ = encode_geometries(np.array([geometry], dtype=object))
    return blob


def _append_version(
    cur: sqlite3.Cursor, version: int, author: str, stamp: str, reason: str
) -> None:
    """Record a new store version."""
    cur.execute(
        "INSERT INTO geo_versions (version, author, time, reason) VALUES (?, ?, ?, ?)",
        (version, author, stamp, reason),
    )


def _set_feature_count(cur: sqlite3.Cursor, name: str, count: int) -> None:
    """Keep GDAL's feature count of a table right."""
    cur.execute(
        "UPDATE gpkg_ogr_contents SET feature_count=? WHERE lower(table_name)=lower(?)",
        (count, name),
    )


def _record_loaded_communities(
    cur: sqlite3.Cursor, communities: PreparedTable, version: int, author: str, stamp: str,
    reason: str,
) -> None:  # fmt: skip
    """Append a "load" history version for every community just written."""
    from geo.store.tables import gpkg_rows

    ensure_history(cur)
    latest = dict(
        cur.execute(f"SELECT community_id, MAX(version) FROM {HISTORY_TABLE} GROUP BY community_id")
    )
    names = COMMUNITIES.field_names
    rows = []
    for row in gpkg_rows(communities):
        rec = dict(zip(names, row[1:], strict=True))
        cid = rec["id"]
        rows.append(
            (row[0], cid, latest.get(cid, 0) + 1, version, author, stamp, reason, "load",
             rec["four_to"], rec["name"])
        )  # fmt: skip
    insert_history(cur, rows)


def _rows_of(table: pd.DataFrame, community_id: str, *, create: bool) -> np.ndarray:
    """The row of ``community_id`` in the communities table (none when creating it)."""
    hit = np.flatnonzero(table["id"].to_numpy() == community_id)
    if create and len(hit):
        raise CommunityExists(f"community {community_id} exists already; choose another id")
    if not create and not len(hit):
        raise UnknownCommunity(f"no community {community_id!r}")
    return hit


def _baseline_row(old: pd.Series, community_id: str, store_version: int, stamp: str) -> tuple:
    """The history row of a community's boundary before its first recorded edit."""
    return (
        _blob(old.geometry), community_id, 1, store_version, "geo", stamp,
        "the boundary before its first recorded edit", "baseline", old["four_to"], old["name"],
    )  # fmt: skip


def _write_communities(
    cur: sqlite3.Cursor, table: pd.DataFrame, hit: np.ndarray, record: dict[str, Any],
    geometry: Any, stamp: str,
) -> None:  # fmt: skip
    """Rewrite the communities table with ``record`` (and ``geometry``) in place of ``hit``."""
    import geopandas as gpd
    import pandas as pd

    from geo.store.records import prepare_table
    from geo.store.tables import has_feature_counts, replace_table

    row = gpd.GeoDataFrame([record], geometry=[geometry], crs=SRS_ID)
    rest = table.drop(index=hit) if len(hit) else table
    prepared = prepare_table("communities", pd.concat([rest, row], ignore_index=True))
    replace_table(cur, "communities", COMMUNITIES, prepared, stamp)
    if has_feature_counts(cur):
        _set_feature_count(cur, "communities", len(prepared))


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
            if self.immediate:
                try:
                    gpkg_guard.begin(self.conn.cursor())  # other programs' writes are refused
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
        except BaseException:
            if self.lock is not None:
                self.lock.release()
            raise
        return self.conn.cursor()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                try:
                    if self.immediate:
                        gpkg_guard.end(self.conn.cursor())
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


if TYPE_CHECKING:  # mypy checks that SQLiteStore has every method of the Store protocol

    def _implements_store(store: SQLiteStore) -> Store:
        """Compile-time only: an SQLiteStore is a `Store` (a signature that differs fails)."""
        return store


def _stamps(cur: sqlite3.Cursor) -> tuple[int, dict[str, str]]:
    """The store's version and every table's stamp, in the transaction of ``cur``."""
    return store_version(cur), dict(cur.execute("SELECT table_name, stamp FROM geo_table_stamps"))
