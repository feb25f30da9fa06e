"""GeoJSON layers read strictly: a FeatureCollection's features coerced to the layer's spec,
geometries parsed, checked (type, range, validity), converted to WGS84 and wound as RFC 7946 says.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

from geo import crs as geo_crs
from geo.io.rows import (
    _GEOMETRY_TYPES,
    _PARSE_HINTS,
    _VALIDITY_HINTS,
    WGS84,
    InputError,
    Issue,
    LoadResult,
    _coerce_record,
    _finish,
    _frame,
    _keep_valid,
)
from geo.model import TABLES, LayerSpec


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
