"""The `Store` protocol: the system of record, with history, and the errors of every store.

A store holds every table of `geo.model.TABLES` at a committed *version*. Writers replace
contents in one transaction and get a new version; readers take a `Snapshot`, a consistent
read of all tables at one version (the atlas is built from it). Users, tokens, the append-only
audit log and the registry of serving processes live in the store too, behind methods of the
protocol: nothing outside a store implementation writes SQL. Two implementations:
`geo.store.sqlite.SQLiteStore` (a GeoPackage file) and `geo.store.postgis.PostGISStore`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from geo.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unavailable,
)
from geo.model import TABLES, LayerSpec

if TYPE_CHECKING:  # the frames' type only: opening a store imports no pandas (geo.ready)
    import pandas as pd

SRS_ID = 4326  # every geometry a store holds is WGS84 longitude/latitude (EPSG:4326)

# ------------------------------------------------------------------ errors of every store


class StoreSchemaError(Unavailable):
    """The file is not a store this version of geo can open (newer schema, not a GeoPackage)."""


class StaleVersionError(PreconditionFailed):
    """`replace_all(expected_version=...)` found another version committed in between."""

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(
            f"the store is at version {current}, not {expected}: reload and apply the change again"
        )
        self.expected = expected
        self.current = current


class StaleCommunityError(StaleVersionError):
    """`edit_community(expected_version=...)`: the community has another version by now."""

    def __init__(self, community_id: str, expected: int, current: int) -> None:
        PreconditionFailed.__init__(
            self,
            f"community {community_id} is at version {current}, not {expected}: someone else "
            "changed it; GET it again, check the change and resend with If-Match: "
            f"{current}",
        )
        self.community_id = community_id
        self.expected = expected
        self.current = current


class InvalidRecord(InvalidInput):
    """A row the store's schema refuses: a missing required value, a wrong type, a duplicate id."""


class UnknownCommunity(NotFound, KeyError):
    """`edit_community` of an id the store does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class CommunityExists(Conflict):
    """`edit_community(create=True)` of an id the store holds already."""


class UserError(InvalidInput):
    """A user change that cannot be made (an unknown role, a name too long)."""


class UserExists(UserError):
    """A new user whose name is taken (409)."""

    status = 409


class NoSuchUser(UserError):
    """A token or revocation for a name that is not an active user (404)."""

    status = 404


@dataclass(frozen=True)
class Credential:
    """A new bearer token as stored: its lookup id, salt and PBKDF2 hash (never the secret)."""

    token_id: str
    salt: bytes
    hash: bytes


@dataclass(frozen=True)
class Server:
    """A serving process as registered: its id, host, pid, the version it answers from, its
    last heartbeat (Unix time) and that heartbeat's age in seconds by the store's clock."""

    worker: str
    pid: int
    version: int
    seen: float
    host: str = ""
    age: float = 0.0


@dataclass
class StoreDump:
    """Everything a store holds except its serving registry, read at one version: what a
    backup copies from one store implementation into another.

    ``versions``: `VersionInfo` rows, oldest first; ``community_history``: `CommunityVersion`
    rows; ``users``: (name, role, created, revoked); ``tokens``: (token_id, user_name, salt,
    hash, created, revoked); ``audit``: dicts of the audit columns (`AUDIT_COLUMNS`), oldest
    first.
    """

    snapshot: Snapshot
    versions: list[VersionInfo]
    community_history: list[CommunityVersion]
    users: list[tuple]
    tokens: list[tuple]
    audit: list[dict[str, Any]]


AUDIT_COLUMNS = (
    "seq", "time", "actor", "role", "method", "path", "target", "version_before",
    "version_after", "request_id", "detail",
)  # fmt: skip


@dataclass(frozen=True)
class VersionInfo:
    """One committed version: who wrote it, when (ISO 8601, UTC) and why."""

    version: int
    author: str
    time: str
    reason: str


@dataclass(frozen=True)
class CommunityVersion:
    """One version of a community's boundary (``version`` counts 1, 2, … per community)."""

    community_id: str
    version: int
    store_version: int  # the store version that committed it
    author: str
    time: str
    reason: str
    action: str  # load | baseline | create | edit | revert
    four_to: str | None
    name: str | None
    geometry: Any  # WGS84 shapely polygon


@dataclass(frozen=True)
class Snapshot:
    """All tables at one committed version.

    ``tables`` maps each name of `geo.model.TABLES` to a frame with the spec's columns in order,
    sorted by ``id``: a GeoDataFrame (geometry column ``geometry``, EPSG:4326) for layers, a plain
    DataFrame for attribute tables (officers).
    """

    version: int
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    # per table, a token that changes whenever the table is written (shared frames are equal)
    stamps: dict[str, str] = field(default_factory=dict)


def read_tables(
    stamps: Mapping[str, str],
    reuse: Snapshot | None,
    read: Callable[[str, LayerSpec], pd.DataFrame],
    only: Collection[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every table of `geo.model.TABLES` (or those named in ``only``): shared with ``reuse``
    where its stamp is unchanged, else ``read(name, spec)`` (a store's reader, inside its read
    transaction)."""
    old = reuse.stamps if reuse is not None else {}
    return {
        name: reuse.tables[name]
        if reuse is not None
        and name in stamps
        and old.get(name) == stamps[name]
        and name in reuse.tables
        else read(name, spec)
        for name, spec in TABLES.items()
        if only is None or name in only
    }


class Store(Protocol):
    """What every store implementation (embedded SQLite/GeoPackage, later PostGIS) provides."""

    def version(self) -> int:
        """The latest committed version (0 for an empty store)."""
        ...

    def snapshot(
        self, reuse: Snapshot | None = None, only: Collection[str] | None = None
    ) -> Snapshot:
        """A consistent read of every table (or those named in ``only``) at the latest
        committed version; tables unchanged since ``reuse`` (same stamp) are shared with it
        rather than read again. The frames of a snapshot must not be modified."""
        ...

    def stamps(self) -> tuple[int, dict[str, str]]:
        """The latest committed version and every table's stamp, read at once, without reading
        any table (`geo.ready` keys its files by them): cheap."""
        ...

    def replace_all(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        author: str,
        reason: str,
        expected_version: int | None = None,
        record_history: bool = False,
        audit: Mapping[str, Any] | None = None,
    ) -> int:
        """Replace the contents of every table atomically; return the new version.

        The community history survives; ``record_history`` appends a version per community.
        ``audit`` (who/what/request id) goes into the append-only audit log in the same
        transaction.
        """
        ...

    def replace_tables(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        author: str,
        reason: str,
        expected_version: int | None = None,
        audit: Mapping[str, Any] | None = None,
    ) -> int:
        """Replace the tables named in ``tables`` atomically, as `replace_all` does; the
        others stay as they are, their stamps too (so snapshots, ready atlases and tiles keep
        what they made of them); return the new version."""
        ...

    def community_version(self, community_id: str) -> int:
        """A community's latest history version (0 without history)."""
        ...

    def community_history(self, community_id: str) -> list[CommunityVersion]:
        """A community's versions, newest first."""
        ...

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
        """Check the community's version and write its new boundary, history row and a new
        store version in one transaction; return (community version, store version)."""
        ...

    def history(self, limit: int = 100) -> list[VersionInfo]:
        """Committed versions, newest first."""
        ...

    def close(self) -> None:
        """Release the store's connections; it cannot be used afterwards."""
        ...

    # -- users, tokens and the append-only audit log (`geo.store.users` checks and hashes)

    def add_user(
        self, name: str, role: str, credential: Credential, *, audit: Mapping[str, Any] | None
    ) -> None:
        """Create an active user (or bring back a revoked one) with one token, and an audit
        row, in one transaction; `UserExists` if an active user has the name."""
        ...

    def add_token(
        self, name: str, credential: Credential, *, audit: Mapping[str, Any] | None
    ) -> None:
        """Another token for an active user (`NoSuchUser` otherwise), with an audit row."""
        ...

    def revoke_user(self, name: str, *, audit: Mapping[str, Any] | None) -> None:
        """Revoke an active user and every token of theirs (`NoSuchUser` otherwise)."""
        ...

    def list_users(self) -> list[dict[str, Any]]:
        """Every user (name, role, created, revoked, active_tokens), by name."""
        ...

    def token_record(self, token_id: str) -> tuple[str, str, bytes, bytes] | None:
        """``(user name, role, salt, hash)`` of an active token of an active user, else None."""
        ...

    def audit_rows(self, limit: int = 100, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
        """``(total, rows)``: audit rows (dicts of `AUDIT_COLUMNS`), newest first."""
        ...

    # -- the registry of serving processes (`geo.store.serving` decides who is live)

    #: whether every process using the store runs on this host (a file store): then a
    #: registered pid that no longer exists is a dead server at once
    same_host: bool

    def serving_mark(self, worker: str, version: int) -> None:
        """Upsert ``worker`` (this host and pid) answering from ``version``, heartbeat now."""
        ...

    def serving_leave(self, workers: list[str]) -> None:
        """Remove these workers from the registry (shut down, or found dead)."""
        ...

    def serving_list(self) -> list[Server]:
        """Every registered server."""
        ...

    def wait_for_change(self, timeout: float) -> None:
        """Block until another version may have been committed: a notification from the
        database, or ``timeout`` seconds (polling) for a store without notifications."""
        ...

    # -- copies between implementations (`geo.service.backup`)

    def export(self) -> StoreDump:
        """Everything the store holds (but the serving registry), read at one version."""
        ...

    def import_dump(self, dump: StoreDump, *, copy: bool, author: str, reason: str) -> int:
        """Write ``dump`` in one transaction; the store version it is now at.

        ``copy`` (a backup into an empty store): everything as is, versions and audit log
        included, at the dump's version. Otherwise (a restore into a live store): tables,
        community history, users and tokens replaced; the store's own versions and audit log
        kept, one new version above both the live one and the dump's appended (``author``,
        ``reason``) with its audit row.
        """
        ...
