"""The PostGIS store's users, tokens, append-only audit log and serving registry (SQL).

The rules (roles, token hashing, who counts as live) are store-neutral: `geo.store.users`,
`geo.store.serving`. Functions taking a cursor run inside a transaction of
`geo.store.postgis.PostGISStore`; the registry functions take a connection in autocommit mode
(a heartbeat never waits for the write lock).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

import psycopg

from geo.store.base import AUDIT_COLUMNS, Credential, NoSuchUser, Server, UserExists
from geo.store.users import audit_row, now

HOST = socket.gethostname()
_AUDIT_INSERT = (
    f"INSERT INTO geo_audit ({', '.join(AUDIT_COLUMNS[1:])}) "
    f"VALUES ({', '.join(['%s'] * (len(AUDIT_COLUMNS) - 1))})"
)


def append_audit(cur: psycopg.Cursor, context: Mapping[str, Any] | None, **row: Any) -> None:
    """Append one audit row (`geo.store.users.audit_row`) inside the caller's transaction."""
    cur.execute(_AUDIT_INSERT, audit_row(context, **row))


def _version(cur: psycopg.Cursor) -> int:
    row = cur.execute("SELECT COALESCE(MAX(version), 0) FROM geo_versions").fetchone()
    return int(row[0]) if row else 0


def _issue(cur: psycopg.Cursor, name: str, credential: Credential, created: str) -> None:
    cur.execute(
        "INSERT INTO geo_tokens (token_id, user_name, salt, hash, created) "
        "VALUES (%s, %s, %s, %s, %s)",
        (credential.token_id, name, credential.salt, credential.hash, created),
    )


def _active(cur: psycopg.Cursor, name: str) -> bool:
    row = cur.execute("SELECT revoked FROM geo_users WHERE name = %s", (name,)).fetchone()
    return row is not None and row[0] is None


def add_user(
    cur: psycopg.Cursor, name: str, role: str, credential: Credential,
    audit: Mapping[str, Any] | None,
) -> None:  # fmt: skip
    """`geo.store.base.Store.add_user` inside a write transaction."""
    created = now()
    row = cur.execute("SELECT revoked FROM geo_users WHERE name = %s", (name,)).fetchone()
    if row is not None and row[0] is None:
        raise UserExists(f"user {name!r} exists; revoke it first or choose another name")
    cur.execute(
        "INSERT INTO geo_users (name, role, created) VALUES (%s, %s, %s) ON CONFLICT (name) "
        "DO UPDATE SET role = excluded.role, created = excluded.created, revoked = NULL",
        (name, role, created),
    )
    _issue(cur, name, credential, created)
    v = _version(cur)
    append_audit(
        cur, audit, actor="cli", before=v, after=v, default_path="users add",
        target=name, detail=f"role {role}",
    )  # fmt: skip


def add_token(
    cur: psycopg.Cursor, name: str, credential: Credential, audit: Mapping[str, Any] | None
) -> None:
    """`geo.store.base.Store.add_token` inside a write transaction."""
    if not _active(cur, name):
        raise NoSuchUser(f"no active user {name!r}")
    _issue(cur, name, credential, now())
    v = _version(cur)
    append_audit(
        cur, audit, actor="cli", before=v, after=v, default_path="users token", target=name
    )


def revoke_user(cur: psycopg.Cursor, name: str, audit: Mapping[str, Any] | None) -> None:
    """`geo.store.base.Store.revoke_user` inside a write transaction."""
    if not _active(cur, name):
        raise NoSuchUser(f"no active user {name!r}")
    when = now()
    cur.execute("UPDATE geo_users SET revoked = %s WHERE name = %s", (when, name))
    cur.execute(
        "UPDATE geo_tokens SET revoked = %s WHERE user_name = %s AND revoked IS NULL",
        (when, name),
    )
    v = _version(cur)
    append_audit(
        cur, audit, actor="cli", before=v, after=v, default_path="users revoke", target=name
    )


def list_users(cur: psycopg.Cursor) -> list[dict[str, Any]]:
    """`geo.store.base.Store.list_users` inside a read transaction."""
    rows = cur.execute(
        "SELECT u.name, u.role, u.created, u.revoked, "
        "(SELECT COUNT(*) FROM geo_tokens t WHERE t.user_name = u.name AND t.revoked IS NULL) "
        'FROM geo_users u ORDER BY u.name COLLATE "C"'
    ).fetchall()
    keys = ("name", "role", "created", "revoked", "active_tokens")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def token_record(cur: psycopg.Cursor, token_id: str) -> tuple[str, str, bytes, bytes] | None:
    """`geo.store.base.Store.token_record` inside a read transaction."""
    row = cur.execute(
        "SELECT u.name, u.role, t.salt, t.hash FROM geo_tokens t "
        "JOIN geo_users u ON u.name = t.user_name "
        "WHERE t.token_id = %s AND t.revoked IS NULL AND u.revoked IS NULL",
        (token_id,),
    ).fetchone()
    return None if row is None else (row[0], row[1], bytes(row[2]), bytes(row[3]))


def audit_rows(cur: psycopg.Cursor, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """`geo.store.base.Store.audit_rows` inside a read transaction."""
    total = cur.execute("SELECT COUNT(*) FROM geo_audit").fetchone()
    rows = cur.execute(
        f"SELECT {', '.join(AUDIT_COLUMNS)} FROM geo_audit ORDER BY seq DESC LIMIT %s OFFSET %s",
        (int(limit), int(offset)),
    ).fetchall()
    return int(total[0]) if total else 0, [dict(zip(AUDIT_COLUMNS, r, strict=True)) for r in rows]


# ------------------------------------------------------------------------ the serving registry


def serving_mark(conn: psycopg.Connection, worker: str, version: int) -> None:
    """Upsert ``worker`` (this host and pid) answering from ``version``, heartbeat now()."""
    conn.execute(
        "INSERT INTO geo_serving (worker, host, pid, version, seen) "
        "VALUES (%s, %s, %s, %s, clock_timestamp()) ON CONFLICT (worker) DO UPDATE SET "
        "version = excluded.version, seen = excluded.seen, host = excluded.host",
        (worker, HOST, os.getpid(), int(version)),
    )


def serving_list(conn: psycopg.Connection) -> list[Server]:
    """Every registered server; ages by the database's clock (hosts' clocks may differ)."""
    rows = conn.execute(
        "SELECT worker, pid, version, extract(epoch FROM seen), host, "
        "extract(epoch FROM clock_timestamp() - seen) FROM geo_serving"
    ).fetchall()
    return [Server(w, int(p), int(v), float(s), h, max(0.0, float(a))) for w, p, v, s, h, a in rows]


# ------------------------------------------------------------------------ copies (backups)


def dump_admin(cur: psycopg.Cursor) -> tuple[list[tuple], list[tuple], list[dict[str, Any]]]:
    """Users, tokens and audit rows (oldest first) as `geo.store.base.StoreDump` holds them."""
    users = cur.execute(
        'SELECT name, role, created, revoked FROM geo_users ORDER BY name COLLATE "C"'
    ).fetchall()
    tokens = cur.execute(
        "SELECT token_id, user_name, salt, hash, created, revoked FROM geo_tokens "
        'ORDER BY token_id COLLATE "C"'
    ).fetchall()
    audit = cur.execute(f"SELECT {', '.join(AUDIT_COLUMNS)} FROM geo_audit ORDER BY seq")
    audit_dicts = [dict(zip(AUDIT_COLUMNS, r, strict=True)) for r in audit.fetchall()]
    token_rows = [(t[0], t[1], bytes(t[2]), bytes(t[3]), t[4], t[5]) for t in tokens]
    return [tuple(u) for u in users], token_rows, audit_dicts


def load_admin(
    cur: psycopg.Cursor, users: list[tuple], tokens: list[tuple], audit: list[dict[str, Any]] | None
) -> None:
    """Replace users and tokens; append ``audit`` rows as they are (seq included)."""
    cur.execute("DELETE FROM geo_tokens")
    cur.execute("DELETE FROM geo_users")
    cur.executemany(
        "INSERT INTO geo_users (name, role, created, revoked) VALUES (%s, %s, %s, %s)", users
    )
    cur.executemany(
        "INSERT INTO geo_tokens (token_id, user_name, salt, hash, created, revoked) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        [(t[0], t[1], bytes(t[2]), bytes(t[3]), t[4], t[5]) for t in tokens],
    )
    if audit:
        cur.executemany(
            f"INSERT INTO geo_audit ({', '.join(AUDIT_COLUMNS)}) "
            f"VALUES ({', '.join(['%s'] * len(AUDIT_COLUMNS))})",
            [tuple(a[k] for k in AUDIT_COLUMNS) for a in audit],
        )
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('geo_audit', 'seq'), "
            "(SELECT MAX(seq) FROM geo_audit))"
        )
