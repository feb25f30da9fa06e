"""Load a folder of layers into a store: every table replaced in one transaction, one version.

`load_directory` reads and validates every layer file of the folder (`geo.io.read_directory`),
refuses to write anything under ``strict`` when a row was rejected (`LoadRefused`), checks that
each community's four-to text still builds its polygon (warnings, not errors), replaces the
store's contents and hands the new version to the caller's ``publish``. `load_into` is the same
for scripts and tests that want only the new version.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from geo import io as geo_io
from geo.errors import InvalidInput
from geo.model import TABLES
from geo.store.base import Store

if TYPE_CHECKING:
    from geo.boundaries.edit import Rebuild

#: After the write: wait until the servers answer from the new version of this store; the
#: warnings to report (servers still behind).
Publish = Callable[[Store, int], list[str]]


class LoadRefused(InvalidInput):
    """``strict`` and some rows were rejected: nothing was loaded. ``read`` is what was read."""

    def __init__(self, read: geo_io.LoadResult) -> None:
        super().__init__(f"{len(read.rejected)} rows rejected; nothing was loaded (--strict)")
        self.read = read


@dataclass(frozen=True)
class LoadResult:
    """What a load wrote: the new version, rows per table, and what the read found."""

    version: int
    counts: dict[str, int]  # rows stored per table, in `geo.model.TABLES` order
    rejected: list[geo_io.Issue] = field(default_factory=list)
    warnings: list[geo_io.Issue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was detected, per file
    four_to: list[Rebuild] = field(default_factory=list)  # four-to texts that do not rebuild
    publish_warnings: list[str] = field(default_factory=list)  # servers still behind


def check_four_to(tables: Mapping[str, pd.DataFrame]) -> list[Rebuild]:
    """The communities whose four-to text does not build (IoU ≥ 0.99) their digitised polygon."""
    from geo.boundaries.edit import rebuild_check

    return [
        r
        for r in rebuild_check(tables["communities"], tables["roads"], tables["areas"])
        if not r.ok
    ]


def load_directory(
    store_or_db: Store | str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    strict: bool = False,
    author: str = "geo load",
    crs: str | None = None,
    fields: Mapping[str, str] | None = None,
    publish: Publish | None = None,
) -> LoadResult:
    """Validate every file in ``data`` and replace the store's contents in one transaction.

    ``store_or_db`` is a store, or the path of one (opened only once the folder has been read,
    so a folder that cannot be read creates no store). Raises `geo.io.InputError` when a file
    cannot be read and `LoadRefused` under ``strict`` when a row was rejected.
    """
    read = geo_io.read_directory(data, crs=crs, fields=fields)
    if read.rejected and strict:
        raise LoadRefused(read)
    four_to = check_four_to(read.tables)
    reason = f"load {os.fspath(data)}"
    if isinstance(store_or_db, str | os.PathLike):
        from geo.store import open_store

        store = open_store(store_or_db)
        try:
            version, published = _replace(store, read.tables, author, reason, publish)
        finally:
            store.close()
    else:
        version, published = _replace(store_or_db, read.tables, author, reason, publish)
    counts = {name: len(read.tables[name]) for name in TABLES}
    return LoadResult(version, counts, read.rejected, read.warnings, read.notes, four_to, published)


def load_into(db: str | os.PathLike[str], data: str | os.PathLike[str]) -> int:
    """Load the folder ``data`` into the store at ``db`` (`load_directory`); the new version."""
    return load_directory(db, data).version


def _replace(
    store: Store,
    tables: Mapping[str, pd.DataFrame],
    author: str,
    reason: str,
    publish: Publish | None,
) -> tuple[int, list[str]]:
    """Write ``tables`` as the store's new version, then publish it; the version and warnings."""
    version = store.replace_all(tables, author=author, reason=reason, record_history=True)
    return version, publish(store, version) if publish else []
