"""The GeoPackage store's users, tokens, append-only audit log and serving registry (SQL).

Plain SQLite tables next to the GeoPackage ones (GDAL/QGIS ignore them): ``geo_users``,
``geo_tokens``, ``geo_audit`` (triggers abort any UPDATE or DELETE) and ``geo_serving``
(``worker``, ``pid``, ``host``, ``version``, ``seen``). The rules (roles, token hashing, who
counts as live) are store-neutral: `geo.store.users`, `geo.store.serving`. Every function here
takes the cursor of an open transaction of `geo.store.sqlite.SQLiteStore`.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from geo.store.base import AUDIT_COLUMNS, Credential, NoSuchUser, Server, UserExists
from geo.store.users import audit_row, now

DDL = (
    "CREATE TABLE IF NOT EXISTS geo_users (name TEXT NOT NULL PRIMARY KEY, "
    "role TEXT NOT NULL, created TEXT NOT NULL, revoked TEXT)",
    "CREATE TABLE IF NOT EXISTS geo_tokens (token_id TEXT NOT NULL PRIMARY KEY, "
    "user_name TEXT NOT NULL REFERENCES geo_users(name), salt BLOB NOT NULL, "
    "hash BLOB NOT NULL, created TEXT NOT NULL, revoked TEXT)",
    "CREATE TABLE IF NOT EXISTS geo_audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "time TEXT NOT NULL, actor TEXT NOT NULL, role TEXT, method TEXT NOT NULL, "
    "path TEXT NOT NULL, target TEXT, version_before INTEGER, version_after INTEGER, "
    "request_id TEXT, detail TEXT)",
    "CREATE TRIGGER IF NOT EXISTS geo_audit_no_update BEFORE UPDATE ON geo_audit "
    "BEGIN SELECT RAISE(ABORT, 'geo_audit is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS geo_audit_no_delete BEFORE DELETE ON geo_audit "
    "BEGIN SELECT RAISE(ABORT, 'geo_audit is append-only'); END",
    "CREATE TABLE IF NOT EXISTS geo_serving (worker TEXT NOT NULL PRIMARY KEY, "
    "pid INTEGER NOT NULL, version INTEGER NOT NULL, seen REAL NOT NULL, host TEXT)",
)
HOST = socket.gethostname()


def ensure_schema(cur: sqlite3.Cursor) -> None:
    """Create the users, tokens, audit and serving tables if missing (and newer columns)."""
    for statement in DDL:
        cur.execute(statement)
    have = {r[1] for r in cur.execute("PRAGMA table_info(geo_serving)")}
    if "host" not in have:  # a file written before heartbeats
        cur.execute("ALTER TABLE geo_serving ADD COLUMN host TEXT")


def _version(cur: sqlite3.Cursor) -> int:
    return int(cur.execute("SELECT COALESCE(MAX(version), 0) FROM geo_versions").fetchone()[0])


def append_audit(cur: sqlite3.Cursor, context: Mapping[str, Any] | None, **row: Any) -> None:
    """Append one audit row (`geo.store.users.audit_row`) inside the caller's transaction."""
    cur.execute(
        f"INSERT INTO geo_audit ({', '.join(AUDIT_COLUMNS[1:])}) VALUES ({', '.join('?' * 10)})",
        audit_row(context, **row),
    )


def _issue(cur: sqlite3.Cursor, name: str, credential: Credential, created: str) -> None:
    cur.execute(
        "INSERT INTO geo_tokens (token_id, user_name, salt, hash, created) VALUES (?, ?, ?, ?, ?)",
        (credential.token_id, name, credential.salt, credential.hash, created),
    )


def _active(cur: sqlite3.Cursor, name: str) -> bool:
    row = cur.execute("SELECT revoked FROM geo_users WHERE name=?", (name,)).fetchone()
    return row is not None and row[0] is None


def add_user(
    cur: sqlite3.Cursor, name: str, role: str, credential: Credential,
    audit: Mapping[str, Any] | None,
) -> None:  # fmt: skip
    """`geo.store.base.Store.add_user` inside a write transaction."""
    created = now()
    row = cur.execute("SELECT revoked FROM geo_users WHERE name=?", (name,)).fetchone()
    if row is not None and row[0] is None:
        raise UserExists(f"user {name!r} exists; revoke it first or choose another name")
    if row is not None:  # a revoked user comes back with a new role and a new token
        cur.execute(
            "UPDATE geo_users SET role=?, created=?, revoked=NULL WHERE name=?",
            (role, created, name),
        )
    else:
        cur.execute(
            "INSERT INTO geo_users (name, role, created) VALUES (?, ?, ?)", (name, role, created)
        )
    _issue(cur, name, credential, created)
    v = _version(cur)
    append_audit(
        cur, audit, actor="cli", before=v, after=v, default_path="users add",
        target=name, detail=f"role {role}",
    )  # fmt: skip


def add_token(
    cur: sqlite3.Cursor, name: str, credential: Credential, audit: Mapping[str, Any] | None
) -> None:
    """`geo.store.base.Store.add_token` inside a write transaction."""
    if not _active(cur, name):
        raise NoSuchUser(f"no active user {name!r}")
    _issue(cur, name, credential, now())
    v = _version(cur)
    append_audit(
        cur, audit, actor="cli", before=v, after=v, default_path="users token", target=name
    )


def revoke_user(cur: sqlite3.Cursor, name: str, audit: Mapping[str, Any] | None) -> None:
    """`geo.store.base.Store.revoke_user` inside a write transaction."""
    if not _active(cur, name):
        raise NoSuchUser(f"no active user {name!r}")
    when = now()
    cur.execute("UPDATE geo_users SET revoked=? WHERE name=?", (when, name))
    cur.execute(
        "UPDATE geo_tokens SET revoked=? WHERE user_name=? AND revoked IS NULL", (when, name)
    )
    v = _version(cur)
    append_audit(
        cur, audit, actor="cli", before=v, after=v, default_path="users revoke", target=name
    )


def list_users(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    """`geo.store.base.Store.list_users` inside a read transaction."""
    rows = cur.execute(
        "SELECT u.name, u.role, u.created, u.revoked, "
        "(SELECT COUNT(*) FROM geo_tokens t WHERE t.user_name=u.name AND t.revoked IS NULL) "
        "FROM geo_users u ORDER BY u.name"
    ).fetchall()
    keys = ("name", "role", "created", "revoked", "active_tokens")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def token_record(cur: sqlite3.Cursor, token_id: str) -> tuple[str, str, bytes, bytes] | None:
    """`geo.store.base.Store.token_record` inside a read transaction."""
    return cur.execute(
        "SELECT u.name, u.role, t.salt, t.hash FROM geo_tokens t "
        "JOIN geo_users u ON u.name = t.user_name "
        "WHERE t.token_id=? AND t.revoked IS NULL AND u.revoked IS NULL",
        (token_id,),
    ).fetchone()


def audit_rows(cur: sqlite3.Cursor, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """`geo.store.base.Store.audit_rows` inside a read transaction."""
    (total,) = cur.execute("SELECT COUNT(*) FROM geo_audit").fetchone()
    rows = cur.execute(
        f"SELECT {', '.join(AUDIT_COLUMNS)} FROM geo_audit ORDER BY seq DESC LIMIT ? OFFSET ?",
        (int(limit), int(offset)),
    ).fetchall()
    return int(total), [dict(zip(AUDIT_COLUMNS, r, strict=True)) for r in rows]


# ------------------------------------------------------------------------ the serving registry


def serving_mark(cur: sqlite3.Cursor, worker: str, version: int) -> None:
    """Upsert ``worker`` (this pid and host) answering from ``version``, heartbeat now."""
    cur.execute(
        "INSERT INTO geo_serving (worker, pid, host, version, seen) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (worker) DO UPDATE SET version = excluded.version, seen = excluded.seen, "
        "host = excluded.host",
        (worker, os.getpid(), HOST, int(version), time.time()),
    )


def serving_leave(cur: sqlite3.Cursor, workers: list[str]) -> None:
    """Remove these workers from the registry."""
    cur.executemany("DELETE FROM geo_serving WHERE worker = ?", [(w,) for w in workers])


def serving_list(cur: sqlite3.Cursor) -> list[Server]:
    """Every registered server, its heartbeat's age by this host's clock."""
    rows = cur.execute("SELECT worker, pid, version, seen, host FROM geo_serving").fetchall()
    t = time.time()
    return [
        Server(w, int(p), int(v), float(s), h or HOST, max(0.0, t - float(s)))
        for w, p, v, s, h in rows
    ]


# ------------------------------------------------------------------------ copies (backups)


def dump_admin(cur: sqlite3.Cursor) -> tuple[list[tuple], list[tuple], list[dict[str, Any]]]:
    """Users, tokens and audit rows (oldest first) as `geo.store.base.StoreDump` holds them."""
    users = cur.execute("SELECT name, role, created, revoked FROM geo_users ORDER BY name")
    user_rows = [tuple(r) for r in users.fetchall()]
    tokens = cur.execute(
        "SELECT token_id, user_name, salt, hash, created, revoked FROM geo_tokens ORDER BY token_id"
    ).fetchall()
    audit = cur.execute(f"SELECT {', '.join(AUDIT_COLUMNS)} FROM geo_audit ORDER BY seq")
    audit_dicts = [dict(zip(AUDIT_COLUMNS, r, strict=True)) for r in audit.fetchall()]
    return user_rows, [tuple(t) for t in tokens], audit_dicts


def load_admin(
    cur: sqlite3.Cursor, users: list[tuple], tokens: list[tuple], audit: list[dict[str, Any]] | None
) -> None:
    """Replace users and tokens; append ``audit`` rows as they are (seq included)."""
    cur.execute("DELETE FROM geo_tokens")
    cur.execute("DELETE FROM geo_users")
    cur.executemany("INSERT INTO geo_users (name, role, created, revoked) VALUES (?,?,?,?)", users)
    cur.executemany(
        "INSERT INTO geo_tokens (token_id, user_name, salt, hash, created, revoked) "
        "VALUES (?,?,?,?,?,?)",
        [(t[0], t[1], bytes(t[2]), bytes(t[3]), t[4], t[5]) for t in tokens],
    )
    if audit:
        cur.executemany(
            f"INSERT INTO geo_audit ({', '.join(AUDIT_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(AUDIT_COLUMNS))})",
            [tuple(a[k] for k in AUDIT_COLUMNS) for a in audit],
        )
