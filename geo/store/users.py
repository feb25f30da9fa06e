"""Users, their bearer tokens and the append-only audit log, in the store's SQLite file.

Tables (plain SQLite tables next to the GeoPackage ones; GDAL/QGIS ignore them):

* ``geo_users``: ``name`` (primary key), ``role`` (officer | planner | admin), ``created``,
  ``revoked`` (time, or NULL while active).
* ``geo_tokens``: ``token_id`` (a random, non-secret lookup key), ``user_name``, ``salt``,
  ``hash`` = PBKDF2-HMAC-SHA256(secret, salt), ``created``, ``revoked``. The secret itself is
  never stored: it is printed once when the token is issued.
* ``geo_audit``: one row per write (``time``, ``actor``, ``role``, ``method``, ``path``,
  ``target``, ``version_before``, ``version_after``, ``request_id``, ``detail``). Triggers make
  it append-only: any UPDATE or DELETE aborts. Store writes (`SQLiteStore.replace_all`,
  `SQLiteStore.edit_community`) and user changes append their row inside their own transaction,
  so a write and its audit row commit (or roll back) together.

A token reads ``<token_id>.<secret>``: the id finds one row (no scan), the secret is checked
with `hmac.compare_digest` against the salted hash.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from geo.errors import InvalidInput

ROLES = ("anonymous", "officer", "planner", "admin")  # in increasing order of trust
USER_ROLES = ROLES[1:]
PBKDF2_ITERATIONS = 100_000

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
)


@dataclass(frozen=True)
class User:
    """An authenticated user and their role."""

    name: str
    role: str


class UserError(InvalidInput):
    """A user change that cannot be made (an unknown role, a name too long)."""


class UserExists(UserError):
    """A new user whose name is taken (409)."""

    status = 409


class NoSuchUser(UserError):
    """A token or revocation for a name that is not an active user (404)."""

    status = 404


def ensure_schema(cur: sqlite3.Cursor) -> None:
    """Create the users, tokens and audit tables if missing."""
    for statement in DDL:
        cur.execute(statement)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def hash_secret(secret: str, salt: bytes) -> bytes:
    """PBKDF2-SHA256 of a token's secret."""
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, PBKDF2_ITERATIONS)


def split_token(token: str) -> tuple[str, str] | None:
    """``(token_id, secret)`` of a well-formed token, else None."""
    token_id, sep, secret = token.strip().partition(".")
    if not sep or not token_id or not secret or len(token) > 200:
        return None
    return token_id, secret


def _version(cur: sqlite3.Cursor) -> int:
    return int(cur.execute("SELECT COALESCE(MAX(version), 0) FROM geo_versions").fetchone()[0])


def append_audit(
    cur: sqlite3.Cursor,
    context: Mapping[str, Any] | None,
    *,
    actor: str,
    before: int | None,
    after: int | None,
    default_path: str,
    target: str | None = None,
    detail: str | None = None,
) -> None:
    """Append one audit row inside the caller's transaction.

    ``context`` comes from the API (`geo.api.audit.context`: method, path, target, request id,
    role); without it (the CLI, scripts) the row says ``method`` "cli" and ``default_path``.
    """
    ctx = dict(context or {})
    cur.execute(
        "INSERT INTO geo_audit (time, actor, role, method, path, target, version_before, "
        "version_after, request_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            _now(),
            str(ctx.get("actor") or actor),
            ctx.get("role"),
            str(ctx.get("method") or "cli"),
            str(ctx.get("path") or default_path),
            ctx.get("target") or target,
            before,
            after,
            ctx.get("request_id"),
            detail,
        ),
    )


def _issue(cur: sqlite3.Cursor, name: str, now: str) -> str:
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    cur.execute(
        "INSERT INTO geo_tokens (token_id, user_name, salt, hash, created) VALUES (?, ?, ?, ?, ?)",
        (token_id, name, salt, hash_secret(secret, salt), now),
    )
    return f"{token_id}.{secret}"


def add_user(store, name: str, role: str, *, audit: Mapping[str, Any] | None = None) -> str:
    """Create an active user with one token; return the token (shown once, stored hashed)."""
    name = name.strip()
    if role not in USER_ROLES:
        raise UserError(f"unknown role {role!r}: use one of {', '.join(USER_ROLES)}")
    if not name or len(name) > 100:
        raise UserError("a user name is 1 to 100 characters")
    now = _now()
    with store._write() as cur:
        row = cur.execute("SELECT revoked FROM geo_users WHERE name=?", (name,)).fetchone()
        if row is not None and row[0] is None:
            raise UserExists(f"user {name!r} exists; revoke it first or choose another name")
        if row is not None:  # a revoked user comes back with a new role and a new token
            cur.execute(
                "UPDATE geo_users SET role=?, created=?, revoked=NULL WHERE name=?",
                (role, now, name),
            )
        else:
            cur.execute(
                "INSERT INTO geo_users (name, role, created) VALUES (?, ?, ?)", (name, role, now)
            )
        token = _issue(cur, name, now)
        v = _version(cur)
        append_audit(
            cur, audit, actor="cli", before=v, after=v, default_path="users add",
            target=name, detail=f"role {role}",
        )  # fmt: skip
    return token


def issue_token(store, name: str, *, audit: Mapping[str, Any] | None = None) -> str:
    """Another token for an active user (e.g. a second device); return it."""
    with store._write() as cur:
        row = cur.execute("SELECT revoked FROM geo_users WHERE name=?", (name,)).fetchone()
        if row is None or row[0] is not None:
            raise NoSuchUser(f"no active user {name!r}")
        token = _issue(cur, name, _now())
        v = _version(cur)
        append_audit(
            cur, audit, actor="cli", before=v, after=v, default_path="users token", target=name
        )
    return token


def revoke_user(store, name: str, *, audit: Mapping[str, Any] | None = None) -> None:
    """Revoke a user and every token of theirs (the rows stay, for the audit trail)."""
    now = _now()
    with store._write() as cur:
        row = cur.execute("SELECT revoked FROM geo_users WHERE name=?", (name,)).fetchone()
        if row is None or row[0] is not None:
            raise NoSuchUser(f"no active user {name!r}")
        cur.execute("UPDATE geo_users SET revoked=? WHERE name=?", (now, name))
        cur.execute(
            "UPDATE geo_tokens SET revoked=? WHERE user_name=? AND revoked IS NULL", (now, name)
        )
        v = _version(cur)
        append_audit(
            cur, audit, actor="cli", before=v, after=v, default_path="users revoke", target=name
        )


def list_users(store) -> list[dict[str, Any]]:
    """Every user with role, creation, revocation and count of active tokens, by name."""
    with store._read() as cur:
        rows = cur.execute(
            "SELECT u.name, u.role, u.created, u.revoked, "
            "(SELECT COUNT(*) FROM geo_tokens t WHERE t.user_name=u.name AND t.revoked IS NULL) "
            "FROM geo_users u ORDER BY u.name"
        ).fetchall()
    keys = ("name", "role", "created", "revoked", "active_tokens")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def token_record(store, token_id: str) -> tuple[str, str, bytes, bytes] | None:
    """``(user name, role, salt, hash)`` of an active token of an active user, else None."""
    with store._read() as cur:
        return cur.execute(
            "SELECT u.name, u.role, t.salt, t.hash FROM geo_tokens t "
            "JOIN geo_users u ON u.name = t.user_name "
            "WHERE t.token_id=? AND t.revoked IS NULL AND u.revoked IS NULL",
            (token_id,),
        ).fetchone()


def audit_rows(store, limit: int = 100, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """``(total, rows)``: audit rows, newest first."""
    keys = (
        "seq", "time", "actor", "role", "method", "path", "target", "version_before",
        "version_after", "request_id", "detail",
    )  # fmt: skip
    with store._read() as cur:
        (total,) = cur.execute("SELECT COUNT(*) FROM geo_audit").fetchone()
        rows = cur.execute(
            f"SELECT {', '.join(keys)} FROM geo_audit ORDER BY seq DESC LIMIT ? OFFSET ?",
            (int(limit), int(offset)),
        ).fetchall()
    return int(total), [dict(zip(keys, r, strict=True)) for r in rows]
