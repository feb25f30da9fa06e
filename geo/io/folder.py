"""A data folder read whole: one file per layer (ours read strictly, any other format through
`geo.io.source_layers`), then references checked across tables and grid codes validated.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.io.csv_tables import _read_enterprises, _read_officers
from geo.io.geojson import _layer_from_doc, _load_json, _read_geojson_layer
from geo.io.rows import (
    _REFERENCES,
    _SINGULAR,
    FILES,
    GEOJSON_LAYERS,
    OPTIONAL_FILES,
    InputError,
    Issue,
    LoadResult,
    _empty,
    _finish,
)
from geo.io.source_layers import _check_unused_fields, _read_source_into, read_layer_source
from geo.model import AREAS, TABLES


def read_directory(
    path: str | os.PathLike[str],
    *,
    crs: str | None = None,
    fields: Mapping[str, str] | None = None,
) -> LoadResult:
    """Read and validate every layer file in ``path`` (other files there are ignored).

    A layer is the file named after it: ``roads.geojson`` … ``enterprises.csv`` in our schema
    are read strictly as before; the same stem with another supported extension (``roads.shp``,
    ``enterprises.xlsx`` …) is read with `load_layer_source`, ``crs`` and ``fields`` applying.
    """
    folder = Path(path)
    found = {name: _layer_file(folder, name) for name in [*GEOJSON_LAYERS, "areas", *FILES]}
    missing = [file for name, file in FILES.items() if found[name] is None]
    if missing:
        raise InputError(
            f"{folder}: missing {', '.join(missing)}; a data folder needs "
            f"{', '.join(FILES.values())} (or the same names with another supported "
            "extension such as .shp, .gpkg, .xlsx)"
        )
    result = LoadResult({}, [], [])
    applied: set[str] = set()  # the --field overrides some file used
    for name, file in found.items():
        if file is None:
            result.tables[name] = _empty(AREAS)
            continue
        ours = _read_ours(file, name, result)
        result.tables[name] = (
            ours
            if ours is not None
            else _read_source_into(file, TABLES[name], result, crs, fields, applied)
        )
    _check_unused_fields(folder, fields, applied)
    _check_references(result)
    _warn_codes(result)
    for name, frame in result.tables.items():
        result.tables[name] = _finish(frame, TABLES[name])
    return result


def _read_ours(file: Path, name: str, result: LoadResult) -> pd.DataFrame | None:
    """A layer file in our schema read strictly (as ever), or None for a file that is not:
    another format, a GeoJSON whose features carry no id, a CSV without an ``id`` column."""
    if file.name != FILES.get(name, OPTIONAL_FILES.get(name)):
        return None
    if name == "enterprises":
        return _read_enterprises(file, result) if _csv_has_id(file) else None
    if name == "officers":
        return _read_officers(file, result) if _csv_has_id(file) else None
    doc = _load_json(file)
    if doc["features"] and not any(_has_id(f) for f in doc["features"]):
        return None
    return _layer_from_doc(doc, file, TABLES[name], result)


def _has_id(feature: Any) -> bool:
    """Whether a GeoJSON feature carries an id (the member or an ``id`` property)."""
    if not isinstance(feature, dict):
        return False
    props = feature.get("properties")
    return feature.get("id") is not None or (isinstance(props, dict) and "id" in props)


def _csv_has_id(path: Path) -> bool:
    """Whether a CSV's header line names an ``id`` column."""
    with path.open("rb") as handle:
        head = handle.readline()
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = head.decode("gb18030", errors="replace")
    header = next(csv.reader([text]), [])
    return "id" in (c.strip().lower() for c in header)


def _layer_file(folder: Path, layer: str) -> Path | None:
    """The one file of ``folder`` named after ``layer`` with a supported extension, if any."""
    from geo.sources import SUPPORTED_SUFFIXES, suffix_of

    if not folder.is_dir():
        return None
    candidates = sorted(
        p
        for p in folder.iterdir()
        if suffix_of(p) in SUPPORTED_SUFFIXES and p.name[: -len(suffix_of(p))] == layer
    )
    if len(candidates) > 1:
        raise InputError(
            f"{folder}: {len(candidates)} files for the {layer} layer "
            f"({', '.join(p.name for p in candidates)}); keep one"
        )
    return candidates[0] if candidates else None


def read_layer_file(
    path: str | os.PathLike[str], layer: str
) -> tuple[gpd.GeoDataFrame, list[Issue]]:
    """One layer's file on its own: the valid features and the issues (rejected rows, then
    warnings). GeoJSON in our schema is read strictly; any other format goes through
    `read_layer_source`. Raises InputError when the file cannot be read at all."""
    file = Path(path)
    if file.suffix.lower() not in (".geojson", ".json"):
        frame, issues, _ = read_layer_source(file, layer)
        return frame, issues
    if not file.is_file():
        raise InputError(f"{file}: no such file; give the path of a GeoJSON {layer} layer")
    result = LoadResult({}, [], [])
    frame = _read_geojson_layer(file, TABLES[layer], result)
    return _finish(frame, TABLES[layer]), result.rejected + result.warnings


def dangling_references(tables: Mapping[str, pd.DataFrame]) -> list[tuple[str, str, str, str]]:
    """(table, id, field, missing id) for every reference to a row no table holds: the parent
    keys of `geo.model.PARENT`, buildings' park_id and officers' building_ids."""
    found = []
    for table, key, parent in _REFERENCES:
        frame, known = tables[table], set(tables[parent]["id"])
        values = frame[key]
        bad = (values.notna() & ~values.isin(known)).to_numpy()
        found += [
            (table, fid, key, ref) for fid, ref in zip(frame["id"][bad], values[bad], strict=True)
        ]
    known = set(tables["buildings"]["id"])
    officers = tables["officers"]
    for fid, ids in zip(officers["id"], officers["building_ids"], strict=True):
        found += [("officers", fid, "building_ids", b) for b in ids.split(";") if b not in known]
    return found


def _warn_codes(result: LoadResult) -> None:
    """Warn about malformed, inconsistent or repeated grid and micro-grid codes."""
    from geo.grids.codes import validate_codes

    rows = {
        (name, fid): int(r)
        for name, frame in result.tables.items()
        if "_row" in frame.columns
        for fid, r in zip(frame["id"], frame["_row"], strict=True)
    }
    for p in validate_codes(result.tables):
        result.warnings.append(Issue(p.table, rows.get((p.table, p.id), 0), p.id, p.reason))


def _check_references(result: LoadResult) -> None:
    """Reject rows whose parent id is missing or was rejected, until nothing changes."""
    tables = result.tables
    rejected_rows: dict[tuple[str, Any], int] = {}
    for issue in result.rejected:
        rejected_rows.setdefault((issue.table, issue.id), issue.row)
    changed = True
    while changed:
        changed = False
        for table, key, parent in _REFERENCES:
            frame = tables[table]
            values = frame[key]
            dangling = (values.notna() & ~values.isin(set(tables[parent]["id"]))).to_numpy()
            for k in np.flatnonzero(dangling):
                reason = _dangling(key, values.iloc[k], parent, rejected_rows)
                _reject(result, rejected_rows, table, frame.iloc[k], reason)
            if dangling.any():
                tables[table] = frame[~dangling].reset_index(drop=True)
                changed = True
        changed |= _check_officer_buildings(result, rejected_rows)


def _check_officer_buildings(result: LoadResult, rejected_rows: dict[tuple[str, Any], int]) -> bool:
    """Reject officers serving a building that does not exist; True if any was rejected."""
    officers = result.tables["officers"]
    known = set(result.tables["buildings"]["id"])
    keep = np.ones(len(officers), dtype=bool)
    for k, ids in enumerate(officers["building_ids"]):
        missing = [b for b in ids.split(";") if b not in known]
        if missing:
            keep[k] = False
            reason = "; ".join(
                _dangling("building_ids", b, "buildings", rejected_rows) for b in missing
            )
            _reject(result, rejected_rows, "officers", officers.iloc[k], reason)
    result.tables["officers"] = officers[keep].reset_index(drop=True)
    return not keep.all()


def _reject(
    result: LoadResult,
    rejected_rows: dict[tuple[str, Any], int],
    table: str,
    row: pd.Series,
    reason: str,
) -> None:
    """Record a rejected row (and remember its row number for the cascade's reasons)."""
    result.rejected.append(Issue(table, int(row["_row"]), row["id"], reason))
    rejected_rows.setdefault((table, row["id"]), int(row["_row"]))


def _dangling(key: str, ref: str, parent: str, rejected_rows: dict[tuple[str, Any], int]) -> str:
    """The reason for a reference to a missing (or rejected) parent."""
    what = _SINGULAR[parent]
    parent_row = rejected_rows.get((parent, ref))
    if parent_row is None:
        return f"{key} {ref!r} refers to no {what}; add the {what} to {FILES[parent]} or fix the id"
    return (
        f"{key} {ref!r} refers to a {what} that was rejected ({parent} row {parent_row}); "
        "fix that row first"
    )
