"""One layer from any other source (`geo.sources`: Shapefile, GeoPackage, .xlsx …): columns
found by `geo.columns`, then validated row by row as our own files are.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import crs as geo_crs
from geo.model import ENTERPRISES, TABLES, LayerSpec

if TYPE_CHECKING:
    from geo.sources import Source
from geo.io.csv_tables import _enterprises_from_rows, _officers_from_rows
from geo.io.geojson import _layer_from_doc
from geo.io.rows import InputError, Issue, LoadResult, _finish, _plain_records


@dataclass
class SourceLoad:
    """One layer read from any source: valid rows (finished as the store expects), the rows
    rejected, the warnings, and notes on what was detected and which columns were used."""

    frame: pd.DataFrame
    rejected: list[Issue]
    warnings: list[Issue]
    notes: list[str]
    rows: dict[str, int] = dataclasses.field(default_factory=dict)  # id -> row in the source


def read_layer_source(
    path: str | os.PathLike[str],
    layer: str,
    *,
    source_layer: str | None = None,
    crs: str | None = None,
    fields: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, list[Issue], list[str]]:
    """One layer from any source (`geo.sources.read_source`), columns found by `geo.columns`,
    every row validated as `read_directory` does: (frame, rejected + warnings, notes)."""
    loaded = load_layer_source(path, layer, source_layer=source_layer, crs=crs, fields=fields)
    return loaded.frame, loaded.rejected + loaded.warnings, loaded.notes


def load_layer_source(
    path: str | os.PathLike[str],
    layer: str,
    *,
    source_layer: str | None = None,
    crs: str | None = None,
    fields: Mapping[str, str] | None = None,
) -> SourceLoad:
    """`read_layer_source` with the rejected rows and the warnings apart."""
    from geo.sources import read_source

    spec = _spec(layer)
    source = read_source(path, layer=source_layer, crs=crs)  # tables ignore crs here
    result = LoadResult({}, [], [])
    notes = list(source.notes)
    frame = _conform_source(source, spec, result, crs, fields, notes)
    return _source_load(frame, spec, result, notes)


def load_layer_frame(
    frame: pd.DataFrame,
    layer: str,
    *,
    name: str = "frame",
    fields: Mapping[str, str] | None = None,
) -> SourceLoad:
    """`load_layer_source` for a frame already in memory (a GeoDataFrame in any CRS)."""
    from geo.sources import Source, to_wgs84

    notes: list[str] = []
    found = None
    if isinstance(frame, gpd.GeoDataFrame):
        frame, found, notes = to_wgs84(frame, Path(name), None)
    source = Source(frame, Path(name), None, "memory", None, found, notes)
    result = LoadResult({}, [], [])
    spec = _spec(layer)
    out = _conform_source(source, spec, result, None, fields, notes)
    return _source_load(out, spec, result, notes)


def _source_load(
    frame: pd.DataFrame, spec: LayerSpec, result: LoadResult, notes: list[str]
) -> SourceLoad:
    rows = dict(zip(frame["id"], (int(r) for r in frame["_row"]), strict=True))
    return SourceLoad(_finish(frame, spec), result.rejected, result.warnings, notes, rows)


def _spec(layer: str) -> LayerSpec:
    if layer not in TABLES:
        raise InputError(f"unknown layer {layer!r}; the layers are {', '.join(TABLES)}")
    return TABLES[layer]


def _read_source_into(
    file: Path,
    spec: LayerSpec,
    result: LoadResult,
    crs: str | None,
    fields: Mapping[str, str] | None,
    applied: set[str],
) -> pd.DataFrame:
    """A layer of a data folder in another format, its issues added to ``result``; of the
    ``fields`` overrides, those this file has the field and the column for apply (and are
    added to ``applied``)."""
    from geo.columns import applicable
    from geo.sources import read_source

    source = read_source(file, crs=crs, override=False)
    extra = ("lon", "lat", "crs") if spec.name == "enterprises" else ()
    mine = applicable(fields or {}, list(source.frame.columns), spec, extra)
    applied.update(mine)
    notes = list(source.notes)
    frame = _conform_source(source, spec, result, crs, mine, notes)
    result.notes += [f"{file.name}: {note}" for note in notes]
    return frame


def _check_unused_fields(folder: Path, fields: Mapping[str, str] | None, applied: set[str]) -> None:
    """An `InputError` for a ``--field`` override that no file of the folder could use."""
    unused = [f"{ours}={theirs}" for ours, theirs in (fields or {}).items() if ours not in applied]
    if unused:
        raise InputError(
            f"{folder}: --field {', '.join(unused)}: no file (other than our own GeoJSON/CSV) "
            "has that field and column; check the column's spelling"
        )


def _conform_source(
    source: Source,
    spec: LayerSpec,
    result: LoadResult,
    crs: str | None,
    fields: Mapping[str, str] | None,
    notes: list[str],
) -> pd.DataFrame:
    """A `geo.sources.Source` conformed to ``spec`` and validated row by row (not finished)."""
    from geo.columns import conform

    table = source.frame
    if spec.name == "enterprises":
        return _enterprises_from_source(source, result, crs, fields, notes)
    if spec.geometry is not None and not source.is_vector:
        raise InputError(
            f"{source.path}: a table without geometry cannot be the {spec.name} layer; "
            "give a vector file (Shapefile, GeoPackage, GeoJSON …)"
        )
    conformed, match = conform(table, spec, fields)
    notes.append(f"{spec.name}: {match.describe()}")
    if spec.geometry is None:
        rows = _table_rows(conformed, source)
        return _officers_from_rows(rows, result)
    return _layer_from_doc(_feature_doc(conformed), source.path, spec, result)


def _enterprises_from_source(
    source: Source,
    result: LoadResult,
    crs: str | None,
    fields: Mapping[str, str] | None,
    notes: list[str],
) -> pd.DataFrame:
    """Enterprises from a table with lon/lat columns (per-row ``crs`` column unless ``crs`` is
    given) or from a point layer (already in WGS84; its CRS kept as ``source_crs``)."""
    from geo.columns import conform

    if source.is_vector:
        conformed, match = conform(source.frame, ENTERPRISES, fields)
        points = conformed.geometry.to_numpy()
        table = pd.DataFrame(conformed.drop(columns=conformed.geometry.name))
        kinds = shapely.get_type_id(points)
        table["lon"] = np.where(kinds == 0, shapely.get_x(points), np.nan)
        table["lat"] = np.where(kinds == 0, shapely.get_y(points), np.nan)
        table["crs"] = "wgs84"
    else:
        conformed, match = conform(source.frame, ENTERPRISES, fields, extra=("lon", "lat", "crs"))
        table = conformed
        if crs is not None:
            table["crs"] = crs
            notes.append(f"coordinates converted from {crs} (--crs) to WGS84")
        elif "crs" in table:
            notes.append(f"coordinates converted per row from the {match.used['crs']} column")
        else:
            notes.append(
                "coordinates taken as WGS84 (no crs column, no --crs); AMap/Tencent "
                "coordinates are GCJ-02 and Baidu's BD-09: pass --crs gcj02 or --crs bd09"
            )
    notes.append(f"enterprises: {match.describe()}")
    rows = _table_rows(table, source)
    if source.is_vector:
        for k in np.flatnonzero(kinds != 0):
            kind = "no geometry" if kinds[k] < 0 else f"a {points[k].geom_type}"
            rows[k][2].append(f"an enterprise is a point, this row has {kind}; give its point")
    frame = _enterprises_from_rows(rows, result)
    if source.is_vector:
        frame["source_crs"] = _crs_name(source.crs)
    return frame


def _crs_name(found: str | None) -> str:
    """A source's CRS as `geo.crs` names it (``EPSG:4549``), or as found when it has no code."""
    if found is None:
        return "wgs84"
    try:
        return geo_crs.normalize_crs(found)
    except geo_crs.UnknownCRSError:
        return found


def _table_rows(table: pd.DataFrame, source: Source) -> list[tuple[int, dict[str, Any], list[str]]]:
    """A conformed table as `_read_csv` rows: (row number, values, problems). Rows count as in
    the file: a spreadsheet's header is row 1, Parquet and vector rows count from 1."""
    first = 2 if source.driver in ("CSV", "XLSX") else 1
    records = _plain_records(_dates_as_text(table))
    positions = range(len(table)) if source.driver != "XLSX" else table.index
    return [(int(k) + first, record, []) for k, record in zip(positions, records, strict=True)]


def _dates_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Dates and times (Excel cells, GeoPackage DATE fields) as ISO text, as our fields hold
    them: ``2024-01-05``, or with the time when it is not midnight."""
    out = frame.copy()
    for name in out.columns:
        values = out[name]
        if not (
            pd.api.types.is_datetime64_any_dtype(values)
            or (values.dtype == object and values.map(_is_date).any())
        ):
            continue
        stamps = pd.to_datetime(values.where(values.map(_is_date)), errors="coerce")
        midnight = (stamps.dropna() == stamps.dropna().dt.normalize()).all()
        text = stamps.dt.strftime("%Y-%m-%d" if midnight else "%Y-%m-%dT%H:%M:%S")
        out[name] = text.where(stamps.notna(), values.where(~values.map(_is_date)))
    return out


def _is_date(value: Any) -> bool:
    return isinstance(value, datetime.date | pd.Timestamp | np.datetime64)


def _feature_doc(frame: gpd.GeoDataFrame) -> dict[str, Any]:
    """A conformed GeoDataFrame as a GeoJSON FeatureCollection dict for `_layer_from_doc`."""
    texts = shapely.to_geojson(frame.geometry.to_numpy())
    props = _plain_records(_dates_as_text(pd.DataFrame(frame.drop(columns=frame.geometry.name))))
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": record,
                "geometry": None if text is None else json.loads(text),
            }
            for record, text in zip(props, texts, strict=True)
        ],
    }
