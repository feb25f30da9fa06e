"""Users, tokens and the audit log as `Store` methods, shared by every store implementation.

Each store keeps the SQL in a module of functions over one of its cursors (``sqlite_admin``,
``postgis_admin``: the same names and arguments); `AccountsMixin` runs each in the store's
write or read transaction, so the two stores do not repeat the delegation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from geo.store.base import Credential


class AccountsMixin:
    """The users/tokens/audit methods of the `Store` protocol, over ``_admin`` (a module)."""

    _admin: ModuleType

    def _write(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def add_user(
        self, name: str, role: str, credential: Credential, *, audit: Mapping[str, Any] | None
    ) -> None:
        """Create (or bring back) a user with one token, and its audit row."""
        with self._write() as cur:
            self._admin.add_user(cur, name, role, credential, audit)

    def add_token(
        self, name: str, credential: Credential, *, audit: Mapping[str, Any] | None
    ) -> None:
        """Another token for an active user, and its audit row."""
        with self._write() as cur:
            self._admin.add_token(cur, name, credential, audit)

    def revoke_user(self, name: str, *, audit: Mapping[str, Any] | None) -> None:
        """Revoke an active user and their tokens, and its audit row."""
        with self._write() as cur:
            self._admin.revoke_user(cur, name, audit)

    def list_users(self) -> list[dict[str, Any]]:
        """Every user, by name."""
        with self._read() as cur:
            return self._admin.list_users(cur)

    def token_record(self, token_id: str) -> tuple[str, str, bytes, bytes] | None:
        """An active token's user, role, salt and hash."""
        with self._read() as cur:
            return self._admin.token_record(cur, token_id)

    def audit_rows(self, limit: int = 100, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
        """A page of the audit log, newest first."""
        with self._read() as cur:
            return self._admin.audit_rows(cur, limit, offset)
