"""The `Store` protocol: the system of record, with history.

A store holds every table of `geo.model.TABLES` at a committed *version*. Writers replace
contents in one transaction and get a new version; readers take a `Snapshot`, a consistent
read of all tables at one version (the atlas is built from it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from geo.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unavailable,
)

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


class Store(Protocol):
    """What every store implementation (embedded SQLite/GeoPackage, later PostGIS) provides."""

    def version(self) -> int:
        """The latest committed version (0 for an empty store)."""
        ...

    def snapshot(self, reuse: Snapshot | None = None) -> Snapshot:
        """A consistent read of every table at the latest committed version; tables unchanged
        since ``reuse`` (same stamp) are shared with it rather than read again. The frames
        of a snapshot must not be modified."""
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
