"""Read and write the layers' files; every reader validates each row and explains what it drops.

A folder holds ``roads streets communities grids parks buildings`` as GeoJSON (RFC 7946) and
``enterprises.csv`` / ``officers.csv``. `read_directory` returns tables shaped as `geo.model`
describes (WGS84, spec columns in order, sorted by id) plus the rows it rejected and the warnings,
each an `Issue` that names the table, the row and the fix. Rows are 1-based feature indexes in a
GeoJSON file and 1-based line numbers in a CSV (the header is line 1); row 0 means the whole file.

A bad row never stops a load: it is rejected with its reason and the rest loads. Problems with a
whole file (missing, not JSON, not a FeatureCollection, missing CSV columns, an unknown ``crs``
member) raise `InputError`.

Any other source (Shapefile, GeoPackage, FileGDB, KML, GeoParquet, .osm.pbf, CSV in any usual
encoding, .xlsx, Parquet) is read by `geo.sources`, its columns found and ids derived by
`geo.columns`, then validated row by row exactly as above: `read_layer_source` for one layer,
and `read_directory` for a folder's ``roads.shp``, ``enterprises.xlsx`` … (one file per layer).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from geo import crs as geo_crs
from geo.creditcode import ALPHABET, check_char, valid_mask
from geo.errors import InvalidInput
from geo.model import AREAS, ENTERPRISES, OFFICERS, PARENT, TABLES, Field, LayerSpec

if TYPE_CHECKING:
    from geo.sources import Source

GEOJSON_LAYERS = ("roads", "streets", "communities", "grids", "parks", "buildings")
OPTIONAL_FILES = {"areas": "areas.geojson"}  # named areas cited by four-to text (…地界)
FILES = {
    **{name: f"{name}.geojson" for name in GEOJSON_LAYERS},
    "enterprises": "enterprises.csv",
    "officers": "officers.csv",
}
WGS84 = "EPSG:4326"

_SINGULAR = {
    "roads": "road",
    "streets": "street",
    "communities": "community",
    "grids": "grid",
    "parks": "park",
    "buildings": "building",
    "enterprises": "enterprise",
    "officers": "officer",
}
# Foreign keys checked after every table is read: (table, field, referenced table).
_REFERENCES = (
    *((child, key, parent) for child, (parent, key) in PARENT.items()),
    ("buildings", "park_id", "parks"),
)
_GEOMETRY_TYPES = {
    "line": ("LineString", "MultiLineString"),
    "polygon": ("Polygon", "MultiPolygon"),
    "point": ("Point",),
}
_TRUE = ("true", "1", "是", "yes", "y", "t")
_FALSE = ("false", "0", "否", "no", "n", "f")
_EXPECTED = {
    "str": "text",
    "int": "a whole number",
    "float": "a finite number",
    "bool": "true/false (also 1/0, 是/否)",
}
_VALIDITY_HINTS = {
    "Self-intersection": "fix the ring so that it does not cross itself",
    "Ring Self-intersection": "fix the ring so that it does not touch itself",
    "Too few points": "a ring needs at least 3 distinct positions",
    "Hole lies outside shell": "move the hole inside the outer ring",
    "Nested shells": "make the polygons of a MultiPolygon disjoint",
    "Interior is disconnected": "holes must not split the polygon",
}
_PARSE_HINTS = {
    "closed linestring": "repeat the first position of each ring at its end",
    "0 or >1 elements": "a line needs at least two positions",
    "Unknown geometry type": "use a GeoJSON geometry type such as Polygon",
}
_ENTERPRISE_COMPUTED = ("credit_code_valid", "source_crs")
_LON = Field("lon", "float")
_LAT = Field("lat", "float")
_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Issue:
    """One problem in an input file: which table and row, which id, what is wrong and the fix."""

    table: str
    row: int
    id: str | None
    reason: str


@dataclass
class LoadResult:
    """Validated tables ready for the store, with the rows that were rejected and the warnings."""

    tables: dict[str, pd.DataFrame]
    rejected: list[Issue]
    warnings: list[Issue]
    notes: list[str] = dataclasses.field(default_factory=list)  # what was detected, per file


class InputError(InvalidInput):
    """A whole file cannot be read: the message names the file and the fix."""


# ---------------------------------------------------------------------------------------- read


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


def read_layer_doc(
    doc: Any, layer: str, source: str = "request"
) -> tuple[gpd.GeoDataFrame, list[Issue]]:
    """`read_layer_file` for a parsed GeoJSON FeatureCollection (e.g. a request body)."""
    result = LoadResult({}, [], [])
    frame = _layer_from_doc(
        _check_collection(doc, Path(source)), Path(source), TABLES[layer], result
    )
    return _finish(frame, TABLES[layer]), result.rejected + result.warnings


def _read_geojson_layer(path: Path, spec: LayerSpec, result: LoadResult) -> gpd.GeoDataFrame:
    """One layer's features: fields coerced to the spec, geometries checked and in WGS84."""
    return _layer_from_doc(_load_json(path), path, spec, result)


def _layer_from_doc(
    doc: dict[str, Any], path: Path, spec: LayerSpec, result: LoadResult
) -> gpd.GeoDataFrame:
    source_crs = _collection_crs(doc, path)
    if source_crs not in ("wgs84", "cgcs2000"):
        result.warnings.append(
            Issue(
                spec.name,
                0,
                None,
                f"coordinates converted from {source_crs} (the file's crs member) to WGS84; "
                "RFC 7946 GeoJSON is always WGS84 lon/lat: write it that way and drop the member",
            )
        )
    features = doc["features"]
    records: list[dict[str, Any]] = []
    geometries: list[Any] = []
    problems: list[list[str]] = []
    for row, feature in enumerate(features, start=1):
        record, geometry, found = _parse_feature(feature, spec)
        records.append({**record, "_row": row})
        geometries.append(geometry)
        problems.append(found)
    geoms, geometry_problems, reoriented = _build_geometries(geometries, spec, source_crs)
    for found, problem in zip(problems, geometry_problems, strict=True):
        if problem:
            found.append(problem)
    rows = [int(k) + 1 for k in np.flatnonzero(reoriented) if not problems[k]]
    if rows:
        result.warnings.append(Issue(spec.name, 0, None, _winding_warning(rows)))
    frame = _frame(records, spec)
    frame = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)
    return _keep_valid(frame, problems, spec.name, result)


def _load_json(path: Path) -> dict[str, Any]:
    """A GeoJSON FeatureCollection as a dict, or an InputError saying what is wrong."""
    try:
        doc = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "save the file as UTF-8 (RFC 7946)"
        ) from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}); fix the syntax or re-export the layer"
        ) from exc
    return _check_collection(doc, path)


def _check_collection(doc: Any, path: Path) -> dict[str, Any]:
    """``doc`` if it is a FeatureCollection with a features list, else an InputError."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        kind = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise InputError(
            f"{path}: expected a GeoJSON FeatureCollection, got {kind!r}; "
            'wrap the features in {"type": "FeatureCollection", "features": [...]}'
        )
    if not isinstance(doc.get("features"), list):
        raise InputError(f"{path}: the FeatureCollection has no 'features' list; add one")
    return doc


def _collection_crs(doc: Mapping[str, Any], path: Path) -> str:
    """The normalised CRS of an old-style (GeoJSON 2008) ``crs`` member; ``wgs84`` without one."""
    member = doc.get("crs")
    if member is None:
        return "wgs84"
    props = member.get("properties") if isinstance(member, dict) else None
    props = props if isinstance(props, dict) else {}
    name = props.get("name") or props.get("code")  # {"type": "EPSG"} members carry a code
    if name is None:
        raise InputError(
            f"{path}: cannot read the crs member {member!r}; remove it and write "
            "WGS84 lon/lat (RFC 7946), or name the CRS, e.g. "
            '{"type": "name", "properties": {"name": "EPSG:4549"}}'
        )
    text = str(name).strip()
    urn = re.fullmatch(r"urn:ogc:def:crs:(\w+):[\d.]*:(\w+)", text, flags=re.IGNORECASE)
    if urn:
        text = f"EPSG:{urn[2]}" if urn[1].lower() == "epsg" else urn[2]
    if text.isdigit():
        text = f"EPSG:{text}"
    try:
        return geo_crs.normalize_crs(text)
    except geo_crs.UnknownCRSError as exc:
        raise InputError(
            f"{path}: crs member {name!r} not understood ({exc}); remove it and "
            "write WGS84 lon/lat (RFC 7946)"
        ) from exc


def _parse_feature(feature: Any, spec: LayerSpec) -> tuple[dict[str, Any], Any, list[str]]:
    """A feature's coerced fields, its raw geometry and the problems found in its fields."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return (
            {},
            None,
            [
                'is not a GeoJSON Feature; write {"type": "Feature", "id": ..., '
                '"properties": {...}, "geometry": {...}}'
            ],
        )
    props = feature.get("properties")
    if props is None:
        props = {}
    if not isinstance(props, dict):
        return {}, None, [f"properties must be an object, got {type(props).__name__}"]
    fid = feature.get("id")
    values = {**props, "id": props.get("id") if fid is None else fid}
    record, problems = _coerce_record(values, spec.fields)
    return record, feature.get("geometry"), problems


def _build_geometries(
    raw: list[Any], spec: LayerSpec, source_crs: str
) -> tuple[NDArray[np.object_], list[str | None], NDArray[np.bool_]]:
    """Shapely geometries in WGS84 (None where rejected), one problem (or None) per feature, and
    which polygons were re-oriented (RFC 7946 winding)."""
    n = len(raw)
    geoms = np.full(n, None, dtype=object)
    reoriented = np.zeros(n, dtype=bool)
    problems: list[str | None] = [None] * n
    present = [i for i, g in enumerate(raw) if isinstance(g, dict)]
    for i in set(range(n)) - set(present):
        problems[i] = (
            "has no geometry; draw one"
            if raw[i] is None
            else f"geometry must be a GeoJSON geometry object, got {raw[i]!r}"
        )
    if not present:
        return geoms, problems, reoriented
    parsed = shapely.from_geojson([json.dumps(raw[i]) for i in present], on_invalid="ignore")
    geoms[present] = parsed
    for i, geom in zip(present, parsed, strict=True):
        problems[i] = (
            _kind_problem(geom, spec) if geom is not None else _explain_unreadable(raw[i], spec)
        )
    ok = np.array([p is None for p in problems])
    geoms[~ok] = None
    if not ok.any():
        return geoms, problems, reoriented
    geoms[ok] = shapely.force_2d(geoms[ok].astype(object))
    if source_crs not in ("wgs84", "cgcs2000"):
        geoms[ok] = shapely.transform(
            geoms[ok], lambda xy: np.column_stack(geo_crs.to_wgs84(xy[:, 0], xy[:, 1], source_crs))
        )
    bounds = shapely.bounds(geoms[ok])
    range_problems = _range_problems(bounds[:, 0], bounds[:, 1], bounds[:, 2], bounds[:, 3])
    valid = shapely.is_valid(geoms[ok])
    for j, i in enumerate(np.flatnonzero(ok)):
        problems[i] = range_problems[j] or (
            None if valid[j] else _validity_problem(shapely.is_valid_reason(geoms[i]))
        )
    ok = np.array([p is None for p in problems])
    geoms[~ok] = None
    if spec.geometry == "polygon" and ok.any():
        oriented = _orient(geoms[ok])
        reoriented[ok] = ~shapely.equals_exact(geoms[ok], oriented, tolerance=0.0)
        geoms[ok] = oriented
    return geoms, problems, reoriented


def _kind_problem(geom: shapely.Geometry, spec: LayerSpec) -> str | None:
    """Why a parsed geometry does not fit the layer (wrong type, empty), or None."""
    allowed = _GEOMETRY_TYPES[spec.geometry or "point"]
    if geom.geom_type == "GeometryCollection":
        return _collection_problem(spec)
    if geom.geom_type not in allowed:
        return f"geometry must be {' or '.join(allowed)} for {spec.name}, got {geom.geom_type}"
    if geom.is_empty:
        return "geometry is empty; draw it or remove the feature"
    return None


def _collection_problem(spec: LayerSpec) -> str:
    """The reason a GeometryCollection is refused."""
    allowed = " or ".join(_GEOMETRY_TYPES[spec.geometry or "point"])
    return f"GeometryCollection is not supported; use {allowed} (split the parts into features)"


def _explain_unreadable(geometry: Mapping[str, Any], spec: LayerSpec) -> str:
    """Why GEOS could not read a GeoJSON geometry, found by walking it in Python."""
    if geometry.get("type") == "GeometryCollection":
        return _collection_problem(spec)
    if "coordinates" not in geometry:
        return f"geometry {geometry.get('type')!r} has no 'coordinates'; add them"
    for position in _positions(geometry.get("coordinates")):
        if not isinstance(position, list):
            return f"coordinates must be nested lists of numbers, got {position!r}"
        for value in position:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"coordinate {value!r} is not a number; write numbers without quotes"
            if not math.isfinite(value):
                return f"coordinate {value} is not a finite number; give a real lon/lat"
        if len(position) < 2:
            return f"position {position} needs two numbers, [lon, lat]"
    try:
        shapely.from_geojson(json.dumps(geometry))
    except shapely.errors.GEOSException as exc:
        message = str(exc).split(":", 1)[-1].strip()
        hint = next((h for key, h in _PARSE_HINTS.items() if key in message), "fix the geometry")
        return f"geometry cannot be read: {message}; {hint}"
    return "geometry cannot be read; fix it"  # pragma: no cover - GEOS read it this time


def _positions(coords: Any) -> Iterable[Any]:
    """The positions (innermost lists) of a GeoJSON coordinates array."""
    if isinstance(coords, list) and coords and isinstance(coords[0], list):
        for part in coords:
            yield from _positions(part)
    elif coords != []:
        yield coords


def _range_problems(
    minx: NDArray[np.float64],
    miny: NDArray[np.float64],
    maxx: NDArray[np.float64],
    maxy: NDArray[np.float64],
) -> list[str | None]:
    """Per bounding box: out-of-range (or non-finite) lon/lat explained, with the swap hint."""
    finite = np.isfinite(minx) & np.isfinite(miny) & np.isfinite(maxx) & np.isfinite(maxy)
    lon_ok = (minx >= -180) & (maxx <= 180)
    lat_ok = (miny >= -90) & (maxy <= 90)
    swapped_ok = (miny >= -180) & (maxy <= 180) & (minx >= -90) & (maxx <= 90)
    problems: list[str | None] = []
    for k in range(len(minx)):
        if not finite[k]:
            problems.append("coordinates are not finite after conversion to WGS84; check the CRS")
        elif lon_ok[k] and lat_ok[k]:
            problems.append(None)
        else:
            parts = []
            if not lon_ok[k]:
                parts.append(f"longitude {_span(minx[k], maxx[k])} is outside [-180, 180]")
            if not lat_ok[k]:
                parts.append(f"latitude {_span(miny[k], maxy[k])} is outside [-90, 90]")
            hint = (
                "lon/lat swapped? write [lon, lat]"
                if swapped_ok[k]
                else "projected coordinates? name their CRS"
            )
            problems.append(f"{' and '.join(parts)}; {hint}")
    return problems


def _span(low: float, high: float) -> str:
    """A coordinate range for messages, one number when it is a single value."""
    return f"{low:g}" if low == high else f"{low:g}..{high:g}"


def _validity_problem(reason: str) -> str:
    """`shapely.is_valid_reason` text as a sentence with the location and a fix."""
    match = re.fullmatch(r"(.*?)\[(\S+) (\S+)\]", reason)
    if not match:
        return f"geometry is invalid: {reason}; fix it (e.g. QGIS Fix Geometries)"
    what, x, y = match[1], float(match[2]), float(match[3])
    hint = _VALIDITY_HINTS.get(what, "fix it (e.g. QGIS Fix Geometries)")
    return f"geometry is invalid: {what} at ({x:g}, {y:g}); {hint}"


def _winding_warning(rows: list[int]) -> str:
    """The warning for the features (1-based rows) that `_orient` re-oriented."""
    n = len(rows)
    shown = ", ".join(map(str, rows[:10])) + (", …" if n > 10 else "")
    plural = n > 1
    return (
        f"{n} feature{'s' if plural else ''} (row{'s' if plural else ''} {shown}) wound the "
        "wrong way (a clockwise exterior ring or a counter-clockwise hole) "
        f"{'were' if plural else 'was'} re-oriented (RFC 7946: exteriors counter-clockwise, "
        "holes clockwise); fix the winding in the source"
    )


def _orient(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    """Polygons with counter-clockwise exteriors and clockwise holes (RFC 7946); others as is."""
    if hasattr(shapely, "orient_polygons"):  # shapely >= 2.1
        return shapely.orient_polygons(geoms, exterior_cw=False)
    return np.array([_orient_one(g) for g in geoms], dtype=object)


def _orient_one(geom: shapely.Geometry | None) -> shapely.Geometry | None:
    """One geometry oriented as `_orient` does, for shapely < 2.1."""
    from shapely.geometry.polygon import orient

    if isinstance(geom, shapely.Polygon):
        return orient(geom, 1.0)
    if isinstance(geom, shapely.MultiPolygon):
        return shapely.MultiPolygon([orient(part, 1.0) for part in geom.geoms])
    return geom


def _read_enterprises(path: Path, result: LoadResult) -> gpd.GeoDataFrame:
    """enterprises.csv: fields checked, credit codes flagged, coordinates converted to WGS84."""
    fields = tuple(f for f in ENTERPRISES.fields if f.name not in _ENTERPRISE_COMPUTED)
    required = [f.name for f in fields if f.required] + ["lon", "lat"]
    return _enterprises_from_rows(_read_csv(path, required), result)


def _enterprises_from_rows(
    rows: list[tuple[int, Mapping[str, Any], list[str]]], result: LoadResult
) -> gpd.GeoDataFrame:
    """Enterprise rows (line, values, problems) validated, in WGS84, credit codes flagged."""
    fields = tuple(f for f in ENTERPRISES.fields if f.name not in _ENTERPRISE_COMPUTED)
    records, problems = [], []
    for line, values, found in rows:
        record, field_problems = _coerce_record(values, fields)
        found = found + field_problems
        record["lon"], lon_problem = _coerce(_LON, values.get("lon"))
        record["lat"], lat_problem = _coerce(_LAT, values.get("lat"))
        record["source_crs"], crs_problem = _source_crs(values.get("crs"))
        if record["credit_code"] is not None:
            record["credit_code"] = record["credit_code"].upper()
        found += [p for p in (lon_problem, lat_problem, crs_problem) if p]
        records.append({**record, "_row": line})
        problems.append(found)
    frame = _frame(records, ENTERPRISES, extra=("lon", "lat"))
    lon, lat = _enterprise_wgs84(frame, problems)
    codes = frame["credit_code"].fillna("").astype(str)
    frame["credit_code_valid"] = valid_mask(codes.tolist())
    frame = gpd.GeoDataFrame(
        frame.drop(columns=["lon", "lat"]), geometry=shapely.points(lon, lat), crs=WGS84
    )
    frame = _keep_valid(frame, problems, "enterprises", result)
    _warn_credit_codes(frame, result)
    return frame


def _source_crs(value: str | None) -> tuple[str | None, str | None]:
    """A row's normalised CRS (default wgs84) or the reason it is not understood."""
    if value is None or not value.strip():
        return "wgs84", None
    try:
        return geo_crs.normalize_crs(value), None
    except geo_crs.UnknownCRSError as exc:
        return None, f"field 'crs': {exc}"


def _enterprise_wgs84(
    frame: pd.DataFrame, problems: list[list[str]]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Enterprise coordinates converted to WGS84 per source CRS; range problems recorded."""
    lon = np.full(len(frame), np.nan)
    lat = np.full(len(frame), np.nan)
    usable = frame["lon"].notna() & frame["lat"].notna() & frame["source_crs"].notna()
    for source, group in frame[usable].groupby("source_crs"):
        x, y = geo_crs.to_wgs84(
            group["lon"].to_numpy(float), group["lat"].to_numpy(float), str(source)
        )
        lon[group.index], lat[group.index] = x, y
    index = np.flatnonzero(usable.to_numpy())
    for i, problem in zip(
        index, _range_problems(lon[index], lat[index], lon[index], lat[index]), strict=True
    ):
        if problem:
            problems[i].append(problem)
    return lon, lat


def _warn_credit_codes(frame: pd.DataFrame, result: LoadResult) -> None:
    """Warn about kept enterprises whose credit code fails the check or repeats another's."""
    for row, fid, code in frame.loc[
        ~frame["credit_code_valid"], ["_row", "id", "credit_code"]
    ].itertuples(index=False):
        result.warnings.append(Issue("enterprises", int(row), fid, _credit_code_problem(code)))
    repeated = frame["credit_code"].duplicated(keep="first")
    first_row = frame.drop_duplicates("credit_code").set_index("credit_code")["_row"]
    for row, fid, code in frame.loc[repeated, ["_row", "id", "credit_code"]].itertuples(
        index=False
    ):
        result.warnings.append(
            Issue(
                "enterprises",
                int(row),
                fid,
                f"credit_code {code!r} is also used by line {first_row[code]}; "
                "each enterprise has its own code, check both rows",
            )
        )


def _credit_code_problem(code: str) -> str:
    """Why a credit code fails GB 32100, with the expected check character when computable."""
    kept = "kept with credit_code_valid=false; check the business licence"
    if len(code) != 18:
        return f"credit_code {code!r} has {len(code)} characters, not 18; {kept}"
    wrong = sorted({c for c in code if c not in ALPHABET})
    if wrong:
        return (
            f"credit_code {code!r} contains {', '.join(wrong)}, not allowed in GB 32100 "
            f"codes (I, O, S, V, Z never occur); {kept}"
        )
    return (
        f"credit_code {code!r} fails the GB 32100 check: the last character should be "
        f"{check_char(code[:17])!r}; {kept}"
    )


def _read_officers(path: Path, result: LoadResult) -> pd.DataFrame:
    """officers.csv: fields checked; building_ids normalised to ';'-separated ids."""
    return _officers_from_rows(_read_csv(path, list(OFFICERS.required)), result)


def _officers_from_rows(
    rows: list[tuple[int, Mapping[str, Any], list[str]]], result: LoadResult
) -> pd.DataFrame:
    """Officer rows (line, values, problems) validated."""
    records, problems = [], []
    for line, values, found in rows:
        record, field_problems = _coerce_record(values, OFFICERS.fields)
        found = found + field_problems
        if record["building_ids"] is not None:
            ids = [s.strip() for s in re.split(r"[;；,，]", record["building_ids"]) if s.strip()]
            record["building_ids"] = ";".join(ids) or None
        records.append({**record, "_row": line})
        problems.append(found)
    return _keep_valid(_frame(records, OFFICERS), problems, "officers", result)


def _read_csv(path: Path, required: list[str]) -> list[tuple[int, dict[str, str], list[str]]]:
    """A CSV's rows as (line, {column: text}, problems); UTF-8 (BOM or not) or GB18030/GBK."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{path}: neither UTF-8 nor GBK/GB18030 text; save it as UTF-8"
            ) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in next(reader, [])]
    lacking = [name for name in required if name not in header]
    if lacking:
        raise InputError(
            f"{path}: missing column(s) {', '.join(lacking)}; the header line must "
            f"name at least {','.join(required)}"
        )
    rows = []
    start = reader.line_num + 1
    for cells in reader:
        if any(cell.strip() for cell in cells):
            extra = (
                [
                    f"has {len(cells)} cells but the header has {len(header)} columns; "
                    "quote cells that contain commas"
                ]
                if len(cells) > len(header)
                else []
            )
            rows.append((start, dict(zip(header, cells, strict=False)), extra))
        start = reader.line_num + 1
    return rows


def _coerce_record(
    values: Mapping[str, Any], fields: Iterable[Field]
) -> tuple[dict[str, Any], list[str]]:
    """The spec's fields coerced from raw values, and the problems found."""
    record: dict[str, Any] = {}
    problems = []
    for field in fields:
        record[field.name], problem = _coerce(field, values.get(field.name))
        if problem:
            problems.append(problem)
    return record, problems


def _coerce(field: Field, value: Any) -> tuple[Any, str | None]:
    """One value as the field's type, or None and the reason it cannot be."""
    if (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    ):
        return None, (f"field '{field.name}' is required; fill it in" if field.required else None)
    try:
        out = _CONVERTERS[field.type](value)
    except (TypeError, ValueError):
        return None, f"field '{field.name}' must be {_EXPECTED[field.type]}, got {value!r}"
    if field.choices is not None and out not in field.choices:
        return None, (
            f"field '{field.name}' must be one of {', '.join(field.choices)}, got {out!r}"
        )
    return out, None


def _to_str(value: Any) -> str:
    """Text from text or a number (whole floats lose their '.0')."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _to_int(value: Any) -> int:
    """A whole number from an int, a whole float or digits."""
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise ValueError(value)


def _to_float(value: Any) -> float:
    """A finite float from a number or numeric text."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(value)
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(value)
    return out


def _to_bool(value: Any) -> bool:
    """A bool from true/false, 1/0, 是/否 (and yes/no)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(value)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "str": _to_str,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
}


def _frame(
    records: list[dict[str, Any]], spec: LayerSpec, extra: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Records as a DataFrame with the spec's columns (plus ``extra`` and ``_row``), as objects."""
    columns = [*spec.field_names, *extra, "_row"]
    frame = pd.DataFrame.from_records(records, columns=columns).astype(object)
    return frame.where(frame.notna(), None)


def _keep_valid(
    frame: pd.DataFrame, problems: list[list[str]], table: str, result: LoadResult
) -> pd.DataFrame:
    """Reject rows with problems and repeated ids; return the rest."""
    bad = np.array([bool(p) for p in problems], dtype=bool)
    first: dict[str, int] = {}
    for k, (fid, row) in enumerate(zip(frame["id"], frame["_row"], strict=True)):
        if fid is None:
            continue
        if fid in first:
            problems[k].append(
                f"id {fid!r} is already used by row {first[fid]}; ids must be unique within a table"
            )
            bad[k] = True
        else:
            first[fid] = row
    for k in np.flatnonzero(bad):
        fid = frame["id"].iloc[k]
        result.rejected.append(
            Issue(table, int(frame["_row"].iloc[k]), fid, "; ".join(problems[k]))
        )
    return frame[~bad].reset_index(drop=True)


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


def _empty(spec: LayerSpec) -> gpd.GeoDataFrame:
    """A layer with no features (an optional file that is absent)."""
    return gpd.GeoDataFrame({name: [] for name in spec.field_names}, geometry=[], crs=WGS84)


def _finish(frame: pd.DataFrame, spec: LayerSpec) -> pd.DataFrame:
    """The table as the store expects it: spec columns with their dtypes, sorted by id."""
    frame = frame.sort_values("id", kind="stable").reset_index(drop=True)
    columns = {}
    for field in spec.fields:
        values = frame[field.name]
        if field.type == "str":
            columns[field.name] = values.astype(object).where(values.notna(), None)
        elif field.type == "int":
            columns[field.name] = values.astype("Int64" if not field.required else "int64")
        elif field.type == "float":
            columns[field.name] = values.astype("float64")
        else:
            columns[field.name] = values.astype("boolean" if not field.required else bool)
    out = pd.DataFrame(columns, index=frame.index)
    if spec.geometry is None:
        return out
    return gpd.GeoDataFrame(
        out, geometry=gpd.GeoSeries(frame.geometry.to_numpy(), crs=WGS84), crs=WGS84
    )


# --------------------------------------------------------------------------------------- write


def write_geojson(frame: gpd.GeoDataFrame, path: str | os.PathLike[str]) -> None:
    """Write an RFC 7946 FeatureCollection (WGS84, Feature ``id`` from the ``id`` column)."""
    if frame.crs is not None and not frame.crs.equals(WGS84):
        frame = frame.to_crs(WGS84)
    geometry_json = shapely.to_geojson(_orient(frame.geometry.to_numpy()))
    props = _plain_records(frame.drop(columns=[frame.geometry.name]))
    features = []
    for record, geometry in zip(props, geometry_json, strict=True):
        fid = record.pop("id", None)
        feature = {
            "type": "Feature",
            **({} if fid is None else {"id": fid}),
            "properties": record,
            "geometry": None if geometry is None else json.loads(geometry),
        }
        features.append(feature)
    text = json.dumps(
        {"type": "FeatureCollection", "features": features},
        ensure_ascii=False,
        default=_json_default,
    )
    _atomic_write(Path(path), text.encode("utf-8"))


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a CSV for Excel: UTF-8 with BOM, formulas defused; points as lon/lat, else WKT."""
    table = frame
    if isinstance(frame, gpd.GeoDataFrame):
        if frame.crs is not None and not frame.crs.equals(WGS84):
            frame = frame.to_crs(WGS84)
        geoms = frame.geometry.to_numpy()
        table = pd.DataFrame(frame.drop(columns=[frame.geometry.name]))
        if (shapely.get_type_id(geoms[~shapely.is_missing(geoms)]) == 0).all():
            table["lon"], table["lat"] = shapely.get_x(geoms), shapely.get_y(geoms)
        else:
            table["geometry"] = shapely.to_wkt(geoms)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(table.columns)
    for record in _plain_records(table):
        writer.writerow(_csv_cell(v) for v in record.values())
    _atomic_write(Path(path), buffer.getvalue().encode("utf-8-sig"))


def _csv_cell(value: Any) -> Any:
    """A cell for CSV: text that Excel would run as a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_CSV_FORMULA_START):
        return "'" + value  # a text column: quote even numeric-looking text (+86…)
    return value


def defuse_formula(text: str) -> str:
    """An untyped CSV cell: text that Excel would run as a formula (``=cmd|…``, ``@SUM(…)``)
    gets a leading quote; numbers such as ``-120.5`` stay as they are."""
    if text.startswith(_CSV_FORMULA_START):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def _plain_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values, None for missing."""
    plain = frame.astype(object)
    return plain.where(plain.notna(), None).to_dict("records")


def _json_default(value: Any) -> Any:
    """JSON for numpy scalars the json module does not know."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and os.replace."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
