"""Users, their bearer tokens and the append-only audit log: the rules, for every store.

Each store keeps (in its own tables, see `geo.store.sqlite_admin` and `geo.store.postgis`):

* users: ``name`` (primary key), ``role`` (officer | planner | admin), ``created``,
  ``revoked`` (time, or NULL while active).
* tokens: ``token_id`` (a random, non-secret lookup key), ``user_name``, ``salt``,
  ``hash`` = PBKDF2-HMAC-SHA256(secret, salt), ``created``, ``revoked``. The secret itself is
  never stored: it is printed once when the token is issued.
* the audit log: one row per write (``time``, ``actor``, ``role``, ``method``, ``path``,
  ``target``, ``version_before``, ``version_after``, ``request_id``, ``detail``). The database
  makes it append-only (triggers that abort any UPDATE or DELETE). Store writes and user changes
  append their row inside their own transaction, so a write and its audit row commit (or roll
  back) together.

A token reads ``<token_id>.<secret>``: the id finds one row (no scan), the secret is checked
with `hmac.compare_digest` against the salted hash. This module checks names and roles, makes
and hashes tokens, and calls the store's protocol methods (`geo.store.base.Store`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from geo.store.base import AUDIT_COLUMNS, Credential, NoSuchUser, Store, UserError, UserExists

__all__ = [
    "AUDIT_COLUMNS",
    "PBKDF2_ITERATIONS",
    "ROLES",
    "USER_ROLES",
    "NoSuchUser",
    "User",
    "UserError",
    "UserExists",
    "add_user",
    "audit_row",
    "audit_rows",
    "hash_secret",
    "issue_token",
    "list_users",
    "revoke_user",
    "split_token",
    "token_record",
]

ROLES = ("anonymous", "officer", "planner", "admin")  # in increasing order of trust
USER_ROLES = ROLES[1:]
PBKDF2_ITERATIONS = 100_000


@dataclass(frozen=True)
class User:
    """An authenticated user and their role."""

    name: str
    role: str


def now() -> str:
    """ISO 8601 UTC with milliseconds (the time columns of users, tokens and the audit log)."""
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


def _new_token() -> tuple[str, Credential]:
    """A new token (shown once) and what the store keeps of it."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    return f"{token_id}.{secret}", Credential(token_id, salt, hash_secret(secret, salt))


def audit_row(
    context: Mapping[str, Any] | None,
    *,
    actor: str,
    before: int | None,
    after: int | None,
    default_path: str,
    target: str | None = None,
    detail: str | None = None,
) -> tuple:
    """The values of one audit row (`AUDIT_COLUMNS` without ``seq``), for a store to append
    inside its write transaction.

    ``context`` comes from the API (`geo.api.audit.context`: method, path, target, request id,
    role); without it (the CLI, scripts) the row says ``method`` "cli" and ``default_path``.
    """
    ctx = dict(context or {})
    return (
        now(),
        str(ctx.get("actor") or actor),
        ctx.get("role"),
        str(ctx.get("method") or "cli"),
        str(ctx.get("path") or default_path),
        ctx.get("target") or target,
        before,
        after,
        ctx.get("request_id"),
        detail,
    )


def add_user(store: Store, name: str, role: str, *, audit: Mapping[str, Any] | None = None) -> str:
    """Create an active user with one token; return the token (shown once, stored hashed)."""
    name = name.strip()
    if role not in USER_ROLES:
        raise UserError(f"unknown role {role!r}: use one of {', '.join(USER_ROLES)}")
    if not name or len(name) > 100:
        raise UserError("a user name is 1 to 100 characters")
    token, credential = _new_token()
    store.add_user(name, role, credential, audit=audit)
    return token


def issue_token(store: Store, name: str, *, audit: Mapping[str, Any] | None = None) -> str:
    """Another token for an active user (e.g. a second device); return it."""
    token, credential = _new_token()
    store.add_token(name, credential, audit=audit)
    return token


def revoke_user(store: Store, name: str, *, audit: Mapping[str, Any] | None = None) -> None:
    """Revoke a user and every token of theirs (the rows stay, for the audit trail)."""
    store.revoke_user(name, audit=audit)


def list_users(store: Store) -> list[dict[str, Any]]:
    """Every user with role, creation, revocation and count of active tokens, by name."""
    return store.list_users()


def token_record(store: Store, token_id: str) -> tuple[str, str, bytes, bytes] | None:
    """``(user name, role, salt, hash)`` of an active token of an active user, else None."""
    return store.token_record(token_id)


def audit_rows(store: Store, limit: int = 100, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """``(total, rows)``: audit rows, newest first."""
    return store.audit_rows(limit, offset)
