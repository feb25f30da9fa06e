"""The PostGIS store: `geo.store.base.Store` on a PostgreSQL database with PostGIS (psycopg 3).

``open_store("postgresql://user:pass@host:5432/db")`` returns a `PostGISStore`. The schema is
`geo.store.postgis_schema`; frames are checked by `geo.store.records` (as for the GeoPackage
store); geometries travel as WKB (EPSG:4326): hex EWKB through ``COPY`` for bulk writes,
``ST_GeomFromWKB`` for single rows, ``ST_AsBinary`` when read.

Transactions and concurrency
----------------------------
* Every write runs in one transaction that first takes ``pg_advisory_xact_lock`` on a fixed key:
  writes from any number of replicas (and CLI runs) on any hosts serialize, each sees the
  version the previous one committed, and a crash mid-write leaves the previous version. Tables
  are emptied with ``DELETE`` (MVCC-safe; ``TRUNCATE`` is not), so readers never block.
* Reads of several tables (`snapshot`, `export`) run in one ``REPEATABLE READ READ ONLY``
  transaction: one committed version.
* Every write sends ``NOTIFY geo_version, '<version>'`` inside its transaction (delivered at
  commit); `wait_for_change` LISTENs on a connection of its own, with polling as fallback.
* A small pool of connections (``pool_size``, 8 by default) shared by the threads of a process:
  N replicas hold at most N × (8 + 1 listener) connections however many request threads they
  run; a broken connection is dropped and a new one opened.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Collection, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
import shapely
from psycopg import conninfo

from geo.errors import Unavailable
from geo.model import COMMUNITIES, TABLES, LayerSpec
from geo.store import postgis_admin as admin
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
    UnknownCommunity,
    VersionInfo,
    read_tables,
)
from geo.store.postgis_schema import (
    CHANNEL,
    GUARD_COUNT,
    GUARD_SETTING,
    GUARDED,
    WRITE_LOCK_KEY,
    guard,
    initialise,
)
from geo.store.schema import HISTORY_COLUMNS, HISTORY_TABLE, now, quote
from geo.store.table_writes import TableWritesMixin

if TYPE_CHECKING:  # (pandas, geopandas and the record checks are imported on first use: a
    # command that maps a ready atlas reads no table, see `geo.ready`)
    import pandas as pd

    from geo.store.records import PreparedTable

__all__ = ["FALLBACK_POLL_S", "PostGISStore"]

FALLBACK_POLL_S = 0.5  # LISTEN/NOTIFY wakes a watcher at once; this is the poll beside it
_HISTORY_COLS = [n for n, _ in HISTORY_COLUMNS]


def redacted(url: str) -> str:
    """``host:port/dbname`` of a connection URL (never its password), for messages."""
    try:
        info = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparsable PostgreSQL URL>"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


class PostGISStore(AccountsMixin, TableWritesMixin):
    """`geo.store.base.Store` on a PostgreSQL/PostGIS database (schema created if missing)."""

    _admin = admin  # users, tokens, audit: geo.store.accounts

    same_host = False  # replicas on any hosts: liveness by heartbeat only

    def __init__(self, url: str, *, connect_timeout: float = 10.0, pool_size: int = 8) -> None:
        self.url = url
        self.where = redacted(url)
        self.connect_timeout = connect_timeout
        self._idle: list[psycopg.Connection] = []
        self._slots = threading.BoundedSemaphore(pool_size)
        self._conn_lock = threading.Lock()
        self._listen_lock = threading.Lock()
        self._listener: psycopg.Connection | None = None
        self._closed = False
        self._initialised = False  # until then initialise() creates the guard
        try:
            with self._write() as cur:
                initialise(cur)
            self._initialised = True
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"PostGISStore({self.where!r})"

    def __enter__(self) -> PostGISStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connections and transactions

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(
                self.url, autocommit=True, connect_timeout=max(1, int(self.connect_timeout))
            )
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise Unavailable(f"cannot reach the PostGIS store at {self.where}: {reason}") from None

    @contextlib.contextmanager
    def _checkout(self) -> Iterator[psycopg.Connection]:
        """A connection of the pool for one transaction or statement (waits for a free one)."""
        if self._closed:
            raise RuntimeError(f"store {self.where} is closed")
        if not self._slots.acquire(timeout=max(self.connect_timeout, 30.0)):
            raise Unavailable(f"every connection to the PostGIS store at {self.where} is busy")
        try:
            with self._conn_lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None or conn.closed or conn.broken:
                conn = self._connect()
            try:
                yield conn
            finally:
                self._give_back(conn)
        finally:
            self._slots.release()

    def _give_back(self, conn: psycopg.Connection) -> None:
        """Return a connection to the pool (closed instead when broken or the store is)."""
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with self._conn_lock:
            if idle and not conn.closed and not conn.broken and not self._closed:
                self._idle.append(conn)
                return
        with contextlib.suppress(Exception):
            conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[psycopg.Cursor]:
        """A write transaction holding the store's write lock (all replicas serialize)."""
        with self._checkout() as conn, conn.transaction(), conn.cursor() as cur:
            row = cur.execute(  # the lock, the write guard's pass and its check (postgis_schema)
                f"SELECT pg_advisory_xact_lock(%s), set_config(%s, 'on', true), ({GUARD_COUNT})",
                (WRITE_LOCK_KEY, GUARD_SETTING),
            ).fetchone()
            if row is not None and row[2] < len(GUARDED) and self._initialised:
                guard(cur)  # someone dropped a guard trigger: restored, and said so
            yield cur

    @contextlib.contextmanager
    def _read(self) -> Iterator[psycopg.Cursor]:
        """A read-only transaction on one committed version."""
        with self._checkout() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield cur

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        self._closed = True
        with self._conn_lock:
            conns, self._idle = self._idle, []
            listener, self._listener = self._listener, None
        for conn in [*conns, *([listener] if listener is not None else [])]:
            with contextlib.suppress(Exception):
                conn.close()

    # -- versions

    def version(self) -> int:
        """The latest committed version (0 for a new store)."""
        with self._checkout() as conn:
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM geo_versions").fetchone()
        return int(row[0]) if row else 0

    def history(self, limit: int = 100) -> list[VersionInfo]:
        """The last ``limit`` versions, newest first."""
        with self._checkout() as conn:
            rows = conn.execute(
                "SELECT version, author, time, reason FROM geo_versions "
                "ORDER BY version DESC LIMIT %s",
                (int(limit),),
            ).fetchall()
        return [VersionInfo(int(v), a, t, r) for v, a, t, r in rows]

    # -- tables

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
        stamp = now()
        with self._write() as cur:
            current = _store_version(cur)
            if expected_version is not None and expected_version != current:
                raise StaleVersionError(expected_version, current)
            for name, data in prepared.items():
                _replace_table(cur, name, TABLES[name], data)
            version = current + 1
            _append_version(cur, version, str(author), stamp, str(reason))
            if record_history and "communities" in prepared and len(prepared["communities"]):
                _record_loaded(cur, prepared["communities"], version, str(author), stamp, reason)
            admin.append_audit(
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
        with self._read() as cur:
            version, stamps = _stamps(cur)
            tables = read_tables(stamps, reuse, partial(_read_table, cur), only)
        return Snapshot(version, tables, stamps)

    def stamps(self) -> tuple[int, dict[str, str]]:
        """The latest version and every table's stamp (one read, no table read)."""
        with self._read() as cur:
            return _stamps(cur)

    # -- community history and edits

    def community_version(self, community_id: str) -> int:
        """The community's latest history version (0 when it has none)."""
        with self._read() as cur:
            return _community_version(cur, community_id)

    def community_history(self, community_id: str) -> list[CommunityVersion]:
        """Every version of a community, newest first."""
        with self._read() as cur:
            return _history_rows(cur, "WHERE community_id = %s ORDER BY version DESC", community_id)

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
        """Write one community's boundary as a new version, atomically (If-Match semantics of
        `geo.store.base.Store.edit_community`)."""
        stamp = now()
        with self._write() as cur:
            current = _community_version(cur, community_id)
            if expected_version is not None and int(expected_version) != current:
                raise StaleCommunityError(community_id, int(expected_version), current)
            old = _community_row(cur, community_id, create=create)
            store_current = _store_version(cur)
            new_store_version = store_current + 1
            history: list[tuple] = []
            if old is not None and current == 0:
                history.append(_baseline(old, community_id, new_store_version, stamp))
                current = 1
            record = dict.fromkeys(COMMUNITIES.field_names)
            if old is not None:
                record.update({k: v for k, v in old.items() if k != "geometry"})
            record.update(fields or {})
            record["id"] = community_id
            row = _checked_community(record, geometry)
            cur.execute("DELETE FROM communities WHERE id = %s", (community_id,))
            _copy_rows(cur, "communities", COMMUNITIES, row)
            _new_stamp(cur, "communities")
            _append_version(cur, new_store_version, str(author), stamp, f"{community_id}: {reason}")
            version = current + 1
            rec = dict(zip(COMMUNITIES.field_names, row.records[0], strict=True))
            history.append(
                (shapely.to_wkb(geometry), community_id, version, new_store_version, str(author),
                 stamp, str(reason), action, rec.get("four_to"), rec.get("name"))
            )  # fmt: skip
            _insert_history(cur, history)
            admin.append_audit(
                cur, audit, actor=str(author), before=store_current, after=new_store_version,
                default_path=f"{action} community", target=community_id, detail=str(reason),
            )  # fmt: skip
        return version, new_store_version

    # -- the serving registry (heartbeats by the database's clock) and notifications

    def serving_mark(self, worker: str, version: int) -> None:
        """Upsert this replica's registry row, heartbeat now (no write lock: never waits for a
        long write)."""
        with self._checkout() as conn:
            admin.serving_mark(conn, worker, version)

    def serving_leave(self, workers: list[str]) -> None:
        """Remove registry rows."""
        if workers:
            with self._checkout() as conn:
                conn.execute("DELETE FROM geo_serving WHERE worker = ANY(%s)", (workers,))

    def serving_list(self) -> list[Server]:
        """Every registry row, with its heartbeat's age by the database's clock."""
        with self._checkout() as conn:
            return admin.serving_list(conn)

    def wait_for_change(self, timeout: float) -> None:
        """Block until a write commits (``NOTIFY geo_version``) or at most
        ``max(timeout, FALLBACK_POLL_S)`` seconds, whichever comes first."""
        with self._listen_lock:
            try:
                listener = self._listener
                if listener is None or listener.closed or listener.broken:
                    listener = self._listener = self._connect()
                    listener.execute(f"LISTEN {CHANNEL}")
                for _ in listener.notifies(timeout=max(timeout, FALLBACK_POLL_S), stop_after=1):
                    break
            except (psycopg.Error, Unavailable):
                if self._closed:
                    return
                self._listener = None
                raise

    # -- copies between store implementations

    def export(self) -> StoreDump:
        """Everything but the serving registry, in one read transaction."""
        with self._read() as cur:
            version = _store_version(cur)
            tables = {name: _read_table(cur, name, spec) for name, spec in TABLES.items()}
            versions = [
                VersionInfo(int(v), a, t, r)
                for v, a, t, r in cur.execute(
                    "SELECT version, author, time, reason FROM geo_versions ORDER BY version"
                ).fetchall()
            ]
            history = _history_rows(cur, 'ORDER BY community_id COLLATE "C", version')
            users, tokens, audit = admin.dump_admin(cur)
        return StoreDump(Snapshot(version, tables), versions, history, users, tokens, audit)

    def import_dump(self, dump: StoreDump, *, copy: bool, author: str, reason: str) -> int:
        """Write ``dump`` in one transaction (see `geo.store.base.Store.import_dump`)."""
        from geo.store.records import prepare_table

        prepared = {name: prepare_table(name, dump.snapshot.tables.get(name)) for name in TABLES}
        stamp = now()
        with self._write() as cur:
            current = _store_version(cur)
            if copy and current:
                raise InvalidRecord("a copy goes into an empty store; this one has versions")
            for name, data in prepared.items():
                _replace_table(cur, name, TABLES[name], data)
            cur.execute(f"DELETE FROM {HISTORY_TABLE}")
            _insert_history(cur, [_history_tuple(h) for h in dump.community_history])
            admin.load_admin(cur, dump.users, dump.tokens, dump.audit if copy else None)
            if copy:
                cur.executemany(
                    "INSERT INTO geo_versions (version, author, time, reason) "
                    "VALUES (%s, %s, %s, %s)",
                    [(v.version, v.author, v.time, v.reason) for v in dump.versions],
                )
                _notify(cur, dump.snapshot.version)
                return dump.snapshot.version
            version = max(current, dump.snapshot.version) + 1
            _append_version(cur, version, str(author), stamp, str(reason))
            admin.append_audit(
                cur, None, actor=str(author), before=current, after=version,
                default_path="restore", detail=str(reason),
            )  # fmt: skip
        return version


# ----------------------------------------------------------------------------- SQL helpers


def _store_version(cur: psycopg.Cursor) -> int:
    row = cur.execute("SELECT COALESCE(MAX(version), 0) FROM geo_versions").fetchone()
    return int(row[0]) if row else 0


def _notify(cur: psycopg.Cursor, version: int) -> None:
    """Tell every listening replica (at commit) that ``version`` exists."""
    cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(version)))


def _append_version(
    cur: psycopg.Cursor, version: int, author: str, stamp: str, reason: str
) -> None:
    """Record a new store version and announce it (NOTIFY, delivered at commit)."""
    cur.execute(
        "INSERT INTO geo_versions (version, author, time, reason) VALUES (%s, %s, %s, %s)",
        (version, author, stamp, reason),
    )
    _notify(cur, version)


def _new_stamp(cur: psycopg.Cursor, name: str) -> None:
    cur.execute(
        "INSERT INTO geo_table_stamps (table_name, stamp) VALUES (%s, %s) "
        "ON CONFLICT (table_name) DO UPDATE SET stamp = excluded.stamp",
        (name, secrets.token_hex(8)),
    )


def _copy_rows(cur: psycopg.Cursor, name: str, spec: LayerSpec, data: PreparedTable) -> None:
    """Append prepared rows with COPY (geometries as hex EWKB, SRID 4326)."""
    cols = (["geom"] if spec.geometry else []) + list(spec.field_names)
    sql = f"COPY {quote(name)} ({', '.join(quote(c) for c in cols)}) FROM STDIN"
    with cur.copy(sql) as copy:
        if data.geoms is None:
            for rec in data.records:
                copy.write_row(rec)
            return
        wkb = shapely.to_wkb(
            shapely.set_srid(data.geoms, SRS_ID), hex=True, include_srid=True, output_dimension=2
        )
        for g, rec in zip(wkb.tolist(), data.records, strict=True):
            copy.write_row((g, *rec))


def _replace_table(cur: psycopg.Cursor, name: str, spec: LayerSpec, data: PreparedTable) -> None:
    """Replace every row of one table (DELETE: readers of older versions keep theirs)."""
    cur.execute(f"DELETE FROM {quote(name)}")
    _copy_rows(cur, name, spec, data)
    _new_stamp(cur, name)


def _checked_community(record: dict[str, Any], geometry: Any) -> PreparedTable:
    """One community's row, checked as every write is (`geo.store.records.prepare_table`)."""
    import geopandas as gpd

    from geo.store.records import prepare_table

    return prepare_table("communities", gpd.GeoDataFrame([record], geometry=[geometry], crs=SRS_ID))


def _read_table(cur: psycopg.Cursor, name: str, spec: LayerSpec) -> pd.DataFrame:
    """One table as the model's frame (`geo.store.tables` dtypes), sorted by id."""
    import geopandas as gpd
    import pandas as pd

    from geo.store.records import typed_column

    cols = [quote(c) for c in spec.field_names] + (["ST_AsBinary(geom)"] if spec.geometry else [])
    rows = cur.execute(
        f'SELECT {", ".join(cols)} FROM {quote(name)} ORDER BY id COLLATE "C"'
    ).fetchall()
    names = list(spec.field_names) + (["geometry"] if spec.geometry else [])
    df = pd.DataFrame.from_records(rows, columns=names)
    for f in spec.fields:
        df[f.name] = typed_column(f, df[f.name])
    if not spec.geometry:
        return df
    wkb = np.array([bytes(b) for b in df.pop("geometry")], dtype=object)
    geoms = shapely.from_wkb(wkb) if len(wkb) else np.empty(0, dtype=object)
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs=SRS_ID), crs=SRS_ID)


def _community_version(cur: psycopg.Cursor, community_id: str) -> int:
    row = cur.execute(
        f"SELECT COALESCE(MAX(version), 0) FROM {HISTORY_TABLE} WHERE community_id = %s",
        (community_id,),
    ).fetchone()
    return int(row[0]) if row else 0


def _community_row(cur: psycopg.Cursor, community_id: str, *, create: bool) -> dict | None:
    """The community's current row (fields and ``geometry``), None when creating it."""
    cols = [quote(c) for c in COMMUNITIES.field_names]
    row = cur.execute(
        f"SELECT {', '.join(cols)}, ST_AsBinary(geom) FROM communities WHERE id = %s",
        (community_id,),
    ).fetchone()
    if create and row is not None:
        raise CommunityExists(f"community {community_id} exists already; choose another id")
    if not create and row is None:
        raise UnknownCommunity(f"no community {community_id!r}")
    if row is None:
        return None
    out = dict(zip(COMMUNITIES.field_names, row[:-1], strict=True))
    out["geometry"] = shapely.from_wkb(bytes(row[-1]))
    return out


def _baseline(old: dict, community_id: str, store_version: int, stamp: str) -> tuple:
    """The history row of a community's boundary before its first recorded edit."""
    return (
        shapely.to_wkb(old["geometry"]), community_id, 1, store_version, "geo", stamp,
        "the boundary before its first recorded edit", "baseline", old.get("four_to"),
        old.get("name"),
    )  # fmt: skip


def _insert_history(cur: psycopg.Cursor, rows: list[tuple]) -> None:
    """Append history rows: WKB first, then `HISTORY_COLUMNS` in order."""
    if not rows:
        return
    cols = ", ".join(quote(c) for c in _HISTORY_COLS)
    marks = ", ".join(["%s"] * len(_HISTORY_COLS))
    cur.executemany(
        f"INSERT INTO {HISTORY_TABLE} (geom, {cols}) "
        f"VALUES (ST_GeomFromWKB(%s, {SRS_ID}), {marks})",
        rows,
    )


def _record_loaded(
    cur: psycopg.Cursor, communities: PreparedTable, version: int, author: str, stamp: str,
    reason: str,
) -> None:  # fmt: skip
    """Append a "load" history version for every community just written."""
    latest: dict[str, int] = dict(
        cur.execute(
            f"SELECT community_id, MAX(version) FROM {HISTORY_TABLE} GROUP BY community_id"
        ).fetchall()
    )
    names = COMMUNITIES.field_names
    assert communities.geoms is not None
    wkb = shapely.to_wkb(communities.geoms, output_dimension=2).tolist()
    rows = []
    for g, rec in zip(wkb, communities.records, strict=True):
        r = dict(zip(names, rec, strict=True))
        cid = r["id"]
        rows.append(
            (g, cid, latest.get(cid, 0) + 1, version, author, stamp, str(reason), "load",
             r["four_to"], r["name"])
        )  # fmt: skip
    _insert_history(cur, rows)


def _history_rows(cur: psycopg.Cursor, where: str, *args: Any) -> list[CommunityVersion]:
    """History rows (``where`` picks and orders them) as `CommunityVersion` values."""
    cols = ", ".join(quote(c) for c in _HISTORY_COLS)
    rows = cur.execute(
        f"SELECT ST_AsBinary(geom), {cols} FROM {HISTORY_TABLE} {where}", args
    ).fetchall()
    return [
        CommunityVersion(
            geometry=shapely.from_wkb(bytes(r[0])), **dict(zip(_HISTORY_COLS, r[1:], strict=True))
        )
        for r in rows
    ]


def _history_tuple(h: CommunityVersion) -> tuple:
    return (
        shapely.to_wkb(h.geometry), h.community_id, h.version, h.store_version, h.author,
        h.time, h.reason, h.action, h.four_to, h.name,
    )  # fmt: skip


if TYPE_CHECKING:  # mypy checks that PostGISStore has every method of the Store protocol

    def _implements_store(store: PostGISStore) -> Store:
        """Compile-time only: a PostGISStore is a `Store`."""
        return store


def _stamps(cur: psycopg.Cursor) -> tuple[int, dict[str, str]]:
    """The store's version and every table's stamp, in the transaction of ``cur``."""
    return _store_version(cur), dict(
        cur.execute("SELECT table_name, stamp FROM geo_table_stamps").fetchall()
    )
