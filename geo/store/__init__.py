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
    "describe",
    "is_database_url",
    "open_store",
    "store_exists",
]


_URL_PREFIXES = ("postgresql://", "postgres://")


class UnknownStore(InvalidInput):
    """A store location that is neither a ``.gpkg`` path nor a ``postgresql://`` URL."""


class StoreNotAvailable(InvalidInput, NotImplementedError):
    """A store kind this installation cannot open (psycopg missing)."""


def is_database_url(url: object) -> bool:
    """Whether ``url`` names a database store (``postgresql://…``) rather than a file."""
    return isinstance(url, str) and url.startswith(_URL_PREFIXES)


def describe(url: str | os.PathLike[str]) -> str:
    """A store location fit for messages and logs: a database URL without its password."""
    text = os.fspath(url)
    if not is_database_url(text):
        return text
    from geo.store.postgis import redacted

    return f"postgresql://{redacted(text)}"


def store_exists(url: str | os.PathLike[str]) -> bool:
    """Whether there is a store at ``url`` to open: the file exists, or (a database) it holds
    at least one committed version."""
    text = os.fspath(url)
    if not is_database_url(text):
        return os.path.exists(text)
    store = open_store(text)
    try:
        return store.version() > 0
    finally:
        store.close()


def open_store(url: str | os.PathLike[str]) -> Store:
    """Open the store at `url`: a ``.gpkg`` path (created if missing) or a PostGIS database
    (``postgresql://user:password@host:5432/db``; its tables created if missing).

    Raises `UnknownStore` (a ValueError) for anything else.
    """
    text = os.fspath(url)
    if not isinstance(text, str):
        raise UnknownStore(f"store location must be a path or URL string, got {url!r}")
    if text.startswith("postgresql+psycopg://"):
        text = "postgresql://" + text.removeprefix("postgresql+psycopg://")
    if is_database_url(text):
        try:
            from geo.store.postgis import PostGISStore
        except ImportError as exc:  # pragma: no cover - psycopg is a dependency
            raise StoreNotAvailable(f"the PostGIS store needs psycopg: {exc}") from None
        return PostGISStore(text)
    if text.lower().endswith(".gpkg"):
        return SQLiteStore(text)
    raise UnknownStore(
        f"unsupported store {text!r}: give a GeoPackage path ending in .gpkg "
        "(e.g. ./geo.gpkg) or a postgresql:// URL"
    )
