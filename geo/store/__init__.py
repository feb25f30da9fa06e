"""The system of record: `open_store` picks the implementation from a path or URL."""

from __future__ import annotations

import os

from geo.store.base import CommunityVersion, Snapshot, Store, VersionInfo
from geo.store.sqlite import (
    SQLiteStore,
    StaleCommunityError,
    StaleVersionError,
    StoreSchemaError,
)

__all__ = [
    "CommunityVersion",
    "SQLiteStore",
    "Snapshot",
    "StaleCommunityError",
    "StaleVersionError",
    "Store",
    "StoreSchemaError",
    "VersionInfo",
    "open_store",
]


def open_store(url: str | os.PathLike[str]) -> Store:
    """Open the store at `url`: a ``.gpkg`` path (created if missing) or, later, PostGIS.

    Raises NotImplementedError for ``postgresql://`` URLs (not available yet) and ValueError for
    anything else.
    """
    text = os.fspath(url)
    if not isinstance(text, str):
        raise ValueError(f"store location must be a path or URL string, got {url!r}")
    if text.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        raise NotImplementedError("PostGIS store is not available yet: use a .gpkg path")
    if text.lower().endswith(".gpkg"):
        return SQLiteStore(text)
    raise ValueError(
        f"unsupported store {text!r}: give a GeoPackage path ending in .gpkg "
        "(e.g. ./geo.gpkg) or a postgresql:// URL"
    )
