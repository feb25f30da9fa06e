"""Import one layer (or an OpenStreetMap extract's layers) from any source into the store.

`import_layer` reads the source (`geo.io.load_layer_source`: any format, columns found,
every row validated), replaces the layer or adds to it (upsert by id), checks the references
between layers and writes every table in one transaction, as one new store version. Rows of
the imported layer whose parent is missing are rejected with the reason; rows of *other* layers
that would lose their parent stop the import (`ImportRefused`), nothing written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from geo.io import (
    InputError,
    Issue,
    SourceLoad,
    dangling_references,
    load_layer_frame,
    load_layer_source,
)
from geo.model import TABLES
from geo.store.base import Store

Mode = Literal["replace", "add"]
MODES = ("replace", "add")
_SHOWN = 5

#: After the write: wait until the servers answer from the new version; the warnings to report.
Publish = Callable[[int], list[str]]


class ImportRefused(InputError):
    """The import would leave rows of other layers without their parent: nothing was written."""


@dataclass(frozen=True)
class LayerChange:
    """What an import did to one layer: rows now stored, and ids added, rewritten, removed."""

    layer: str
    rows: int
    added: int
    updated: int
    removed: int


@dataclass(frozen=True)
class ImportResult:
    """The outcome: the store version written (None: nothing written, ``strict`` with rejected
    rows), per-layer changes, the rows rejected, the warnings, the detection notes and what
    ``publish`` reported (servers still behind)."""

    version: int | None
    mode: Mode
    changes: list[LayerChange]
    rejected: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    publish_warnings: list[str] = field(default_factory=list)


def import_layer(
    store: Store,
    layer: str,
    source: str | os.PathLike[str],
    *,
    source_layer: str | None = None,
    crs: str | None = None,
    fields: Mapping[str, str] | None = None,
    mode: Mode = "replace",
    strict: bool = False,
    author: str = "geo import",
    publish: Publish | None = None,
) -> ImportResult:
    """Replace (or, ``mode="add"``, upsert by id) ``layer`` of ``store`` with ``source``.

    ``layer`` is a table of `geo.model.TABLES`, or ``osm``: an OpenStreetMap extract's layers
    (`geo.osm.read_osm`). Raises `InputError` (or its `geo.sources.SourceError`) when the
    source cannot be read, `ImportRefused` when other layers would lose their parents, and the
    store's `StaleVersionError` when another writer committed meanwhile. After a write,
    ``publish(version)`` (when given) hands the new version to the servers.
    """
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if layer == "osm":
        loads = _read_osm(source)
    elif layer in TABLES:
        loads = {
            layer: load_layer_source(
                source, layer, source_layer=source_layer, crs=crs, fields=fields
            )
        }
    else:
        raise InputError(f"unknown layer {layer!r}; use one of {', '.join(TABLES)} or osm")
    snapshot = store.snapshot()
    tables = dict(snapshot.tables)
    for name, load in loads.items():
        tables[name] = _merge(tables[name], load.frame, mode)
    rejected = [issue for load in loads.values() for issue in load.rejected]
    try:
        rejected += _drop_orphans(tables, loads)
    except ImportRefused as exc:
        if layer != "osm":
            raise
        raise ImportRefused(
            f"{exc}; an OpenStreetMap extract starts a district afresh: import it into a new "
            "store (--db NEW.gpkg), then build the communities there"
        ) from exc
    changes = [
        _change(name, snapshot.tables[name], loads[name].frame, tables[name]) for name in loads
    ]
    warnings = [issue for load in loads.values() for issue in load.warnings]
    notes = [note for load in loads.values() for note in load.notes]
    if strict and rejected:
        return ImportResult(None, mode, changes, rejected, warnings, notes)
    version = store.replace_all(
        tables,
        author=author,
        reason=f"import {', '.join(loads)} from {os.fspath(source)} ({mode})",
        expected_version=snapshot.version,
        record_history="communities" in loads,
    )
    published = publish(version) if publish else []
    return ImportResult(version, mode, changes, rejected, warnings, notes, published)


def _read_osm(path: str | os.PathLike[str]) -> dict[str, SourceLoad]:
    """The layers `geo.osm.read_osm` finds in an extract, each validated as a source."""
    from geo.osm import read_osm  # geo/osm.py: the OpenStreetMap import

    return {
        name: load_layer_frame(frame, name, name=f"{os.fspath(path)}:{name}")
        for name, frame in read_osm(path).items()
    }


def _merge(current: pd.DataFrame, new: pd.DataFrame, mode: Mode) -> pd.DataFrame:
    """The layer after the import: ``new`` alone, or ``current`` with ``new``'s ids replaced."""
    if mode == "replace":
        return new
    kept = current[~current["id"].isin(set(new["id"]))]
    merged = pd.concat([kept, new], ignore_index=True) if len(kept) else new
    return merged.sort_values("id", kind="stable").reset_index(drop=True)


def _change(
    name: str, before: pd.DataFrame, imported: pd.DataFrame, after: pd.DataFrame
) -> LayerChange:
    """Rows stored, ids new to the layer, ids written again, ids gone."""
    old, new, now = set(before["id"]), set(imported["id"]), set(after["id"])
    return LayerChange(name, len(after), len(new - old), len(new & old), len(old - now))


def _drop_orphans(tables: dict[str, pd.DataFrame], loads: Mapping[str, SourceLoad]) -> list[Issue]:
    """Reject imported rows whose parent is missing (until none is left); refuse the import when
    rows of other layers would be left without a parent."""
    rejected: list[Issue] = []
    while True:
        dangling = dangling_references(tables)
        others = [d for d in dangling if d[0] not in loads]
        if others:
            raise ImportRefused(_refusal(others))
        if not dangling:
            return rejected
        for table in {d[0] for d in dangling}:
            bad = {d[1] for d in dangling if d[0] == table}
            rows = loads[table].rows
            for table_, fid, key, ref in (d for d in dangling if d[0] == table):
                rejected.append(
                    Issue(
                        table_,
                        rows.get(fid, 0),
                        fid,
                        f"{key} {ref!r} refers to no row of the store; import that first "
                        "or fix the id",
                    )
                )
            frame = tables[table]
            tables[table] = frame[~frame["id"].isin(bad)].reset_index(drop=True)


def _refusal(others: list[tuple[str, str, str, str]]) -> str:
    """Why an import was refused: which rows of other layers would lose their parent."""
    shown = "; ".join(f"{t} {fid}: {key} {ref!r}" for t, fid, key, ref in others[:_SHOWN])
    more = f" and {len(others) - _SHOWN} more" if len(others) > _SHOWN else ""
    return (
        f"nothing imported: {len(others)} rows of other layers would refer to rows that are "
        f"gone ({shown}{more}); keep those ids in the file, use --mode add, or import the "
        "dependent layers after fixing their references"
    )
