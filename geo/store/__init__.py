"""The system of record: `open_store` picks the implementation from a path or URL."""

from __future__ import annotations

import os

from geo.errors import InvalidInput
from geo.store.base import (
    CommunityExists,
    CommunityVersion,
    InvalidRecord,
    Snapshot,
    StaleCommunityError,
    StaleVersionError,
    Store,
    StoreSchemaError,
    UnknownCommunity,
    VersionInfo,
)
from geo.store.sqlite import SQLiteStore

__all__ = [
    "CommunityExists",
    "CommunityVersion",
    "InvalidRecord",
    "SQLiteStore",
    "Snapshot",
    "StaleCommunityError",
    "StaleVersionError",
    "Store",
    "StoreNotAvailable",
    "StoreSchemaError",
    "UnknownCommunity",
    "UnknownStore",
    "VersionInfo",
    "open_store",
]


class UnknownStore(InvalidInput):
    """A store location that is neither a ``.gpkg`` path nor (later) a ``postgresql://`` URL."""


class StoreNotAvailable(InvalidInput, NotImplementedError):
    """A store kind this version of geo cannot open yet (PostGIS)."""


def open_store(url: str | os.PathLike[str]) -> Store:
    """Open the store at `url`: a ``.gpkg`` path (created if missing) or, later, PostGIS.

    Raises `StoreNotAvailable` (a NotImplementedError) for ``postgresql://`` URLs and
    `UnknownStore` (a ValueError) for anything else.
    """
    text = os.fspath(url)
    if not isinstance(text, str):
        raise UnknownStore(f"store location must be a path or URL string, got {url!r}")
    if text.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        raise StoreNotAvailable("PostGIS store is not available yet: use a .gpkg path")
    if text.lower().endswith(".gpkg"):
        return SQLiteStore(text)
    raise UnknownStore(
        f"unsupported store {text!r}: give a GeoPackage path ending in .gpkg "
        "(e.g. ./geo.gpkg) or a postgresql:// URL"
    )
