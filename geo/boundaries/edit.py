"""Boundary edits: a new boundary from four-to text or a drawn geometry, snapped to roads,
validated against the street and its communities, and its impact previewed.

Pure functions on GeoDataFrames (the atlas's tables); the store keeps the versions and the API
and CLI call these before they commit.

* `propose` turns either four-to text (`geo.boundaries.build`) or a drawn GeoJSON geometry into
  a `Proposal`. Drawn vertices within ``snap_tolerance_m`` of a named road's centerline move
  onto it (nearest road part by STRtree, `shapely.line_locate_point`); an edge whose two ends
  snapped onto the same road then follows the road between them, and is reported.
* `validate` lists what forbids the write (invalid rings, parts outside the street, overlaps
  with sibling communities over 1 m²) and the gaps it would leave (reported, not fatal).
* `impact` says which parks, buildings and enterprises change community (by the ownership rule:
  the polygon whose interior holds the point, on a shared edge the smallest id) and the area
  gained and lost.
* `rebuild_check` builds every community from its four-to text and compares it with the
  digitised polygon (``geo load``).

Geometry work is in EPSG:4549 (areas in m²); ownership is decided in WGS84, as stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient
from shapely.ops import substring

from geo import crs as crs_mod
from geo.boundaries.build import BuildError, build_boundary
from geo.boundaries.fourto import FourToError
from geo.boundaries.roads import RoadNetwork, lonlat
from geo.boundaries.topology import Problem, check_member, invalid_location
from geo.crs import to_lonlat, to_metric
from geo.errors import InvalidInput

SNAP_TOLERANCE_M = 15.0
MOVED_M = 0.05  # vertices moved less than this were on the road already (not reported)
MIN_IOU = 0.99


class EditError(InvalidInput):
    """A boundary edit that cannot be applied; the message says what and where."""


# --------------------------------------------------------------------------------------------
# Reading a drawn geometry
# --------------------------------------------------------------------------------------------


def read_geometry(obj: Any, crs: str = "wgs84") -> BaseGeometry:
    """A GeoJSON Polygon/MultiPolygon (bare, a Feature or a one-feature FeatureCollection) in
    ``crs`` as a metric (EPSG:4549) geometry. Validity is not checked here."""
    if isinstance(obj, dict) and obj.get("type") == "FeatureCollection":
        feats = obj.get("features") or []
        if len(feats) != 1:
            raise EditError(
                f"the FeatureCollection holds {len(feats)} features; send one boundary polygon"
            )
        obj = feats[0]
    if isinstance(obj, dict) and obj.get("type") == "Feature":
        obj = obj.get("geometry")
    if not isinstance(obj, dict) or obj.get("type") not in ("Polygon", "MultiPolygon"):
        kind = obj.get("type") if isinstance(obj, dict) else type(obj).__name__
        raise EditError(
            f"the geometry must be a GeoJSON Polygon or MultiPolygon, got {kind!r}; "
            'send {"type": "Polygon", "coordinates": [[[lon, lat], ...]]}'
        )
    try:
        geom = shapely.from_geojson(json.dumps(obj))
    except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
        raise EditError(f"cannot read the geometry: {exc}; check its coordinates") from exc
    if geom is None or geom.is_empty:
        raise EditError("the geometry is empty; draw the boundary polygon")
    geom = shapely.force_2d(geom)
    try:
        name = crs_mod.normalize_crs(crs)
    except crs_mod.UnknownCRSError as exc:
        raise EditError(str(exc)) from exc
    if not name.startswith("EPSG:") or _geographic(name):
        minx, miny, maxx, maxy = geom.bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise EditError(
                f"coordinates out of range (x {minx:g}…{maxx:g}, y {miny:g}…{maxy:g}): "
                "send lon, lat in degrees, or name the projected CRS in crs (e.g. EPSG:4549)"
            )
    return to_metric(geom, name)


def _geographic(name: str) -> bool:
    from pyproj import CRS

    return CRS.from_user_input(name).is_geographic


def _check_valid(metric: BaseGeometry, what: str) -> None:
    bad = invalid_location(metric)
    if bad is None:
        return
    reason, where = bad
    at = f" at ({where[0]:.6f}, {where[1]:.6f}) (lon, lat)" if where else ""
    hint = (
        "; redraw the boundary so that its edges do not cross"
        if "intersection" in reason.lower()
        else ""
    )
    raise EditError(f"{what} is not a valid polygon: {reason}{at}{hint}")


def orient_rfc7946(geom: BaseGeometry) -> tuple[BaseGeometry, list[str]]:
    """A Polygon/MultiPolygon with RFC 7946 winding (exteriors counter-clockwise, holes
    clockwise), and one warning per kind of ring that was wound the wrong way (none if none)."""
    polys = list(shapely.get_parts(geom))
    holes = [ring for poly in polys for ring in poly.interiors]
    warnings = [
        _reversed(bad, total, ring, wrong, rule)
        for bad, total, ring, wrong, rule in (
            (sum(not p.exterior.is_ccw for p in polys), len(polys), "exterior ring",
             "clockwise", "exteriors counter-clockwise"),
            (sum(r.is_ccw for r in holes), len(holes), "hole", "counter-clockwise",
             "holes clockwise"),
        )
        if bad
    ]  # fmt: skip
    if not warnings:
        return geom, []
    oriented = [orient(poly, 1.0) for poly in polys]
    fixed = oriented[0] if geom.geom_type == "Polygon" else shapely.MultiPolygon(oriented)
    return fixed, warnings


def _reversed(bad: int, total: int, ring: str, wrong: str, rule: str) -> str:
    """The warning for ``bad`` of ``total`` rings that were wound ``wrong`` and reversed."""
    if total == 1:
        return f"the {ring} was {wrong}; it was reversed (RFC 7946: {rule})"
    verb, it = ("was", "it") if bad == 1 else ("were", "they")
    return f"{bad} of {total} {ring}s {verb} {wrong}; {it} {verb} reversed (RFC 7946: {rule})"


# --------------------------------------------------------------------------------------------
# Snapping drawn vertices onto road centerlines
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapReport:
    """What snapping moved: vertices (ring, index, road, metres moved) and edges that now
    follow a road (ring, index, road, from/to lon-lat, length); vertices that were on a road
    already, and edges between two of them, are not listed."""

    vertices: list[dict] = field(default_factory=list)
    edges: list[dict] = field(default_factory=list)


def snap_to_roads(
    metric: BaseGeometry, network: RoadNetwork, tolerance_m: float = SNAP_TOLERANCE_M
) -> tuple[BaseGeometry, SnapReport]:
    """Move the vertices of a metric polygon within ``tolerance_m`` of a named road's centerline
    onto it; an edge whose ends snapped onto the same road part follows that road."""
    names = list(network.lines)
    if tolerance_m <= 0 or not names:
        return metric, SnapReport()
    part_geoms: list[BaseGeometry] = []
    part_names: list[str] = []
    for name in names:
        for part in shapely.get_parts(network.lines[name]):
            part_geoms.append(part)
            part_names.append(name)
    parts = np.asarray(part_geoms, dtype=object)
    tree = shapely.STRtree(parts)
    report = SnapReport()
    polys = []
    for p_i, poly in enumerate(shapely.get_parts(metric)):
        rings = [poly.exterior, *poly.interiors]
        new_rings = []
        for r_i, ring in enumerate(rings):
            ring_no = f"{p_i}.{r_i}" if len(rings) > 1 or p_i else "0"
            snapped = _snap_ring(ring, parts, part_names, tree, tolerance_m, ring_no, report)
            new_rings.append(snapped)
        polys.append(Polygon(new_rings[0], new_rings[1:]))
    out = polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)
    return shapely.remove_repeated_points(out, 1e-3), report


def _snap_ring(ring, parts, part_names, tree, tol, ring_no, report) -> np.ndarray:
    xy = shapely.get_coordinates(ring)[:-1]
    n = len(xy)
    pts = shapely.points(xy)
    (vi, pj), dist = tree.query_nearest(pts, max_distance=tol, return_distance=True)
    # one road part per vertex (ties: the first)
    vi, first = np.unique(vi, return_index=True)
    pj, dist = pj[first], dist[first]
    part_of = np.full(n, -1, dtype=np.int64)
    pos = np.full(n, np.nan)
    part_of[vi] = pj
    pos[vi] = shapely.line_locate_point(parts[pj], pts[vi])
    new_xy = xy.copy()
    if len(vi):
        new_xy[vi] = shapely.get_coordinates(shapely.line_interpolate_point(parts[pj], pos[vi]))
    moved = np.zeros(n, dtype=bool)
    moved[vi] = dist > MOVED_M
    for v, j, d in zip(vi, pj, dist, strict=True):
        if d <= MOVED_M:
            continue  # already on the road
        report.vertices.append(
            {"ring": ring_no, "vertex": int(v), "road": part_names[j], "moved_m": round(d, 2)}
        )
    out: list[np.ndarray] = []
    for i in range(n):
        k = (i + 1) % n
        out.append(new_xy[i][None, :])
        if part_of[i] < 0 or part_of[i] != part_of[k]:
            continue
        line = parts[part_of[i]]
        piece = substring(line, pos[i], pos[k])
        inner = shapely.get_coordinates(piece)[1:-1]
        if len(inner):
            out.append(inner)
        if not (moved[i] or moved[k]):
            continue
        report.edges.append(
            {
                "ring": ring_no,
                "edge": i,
                "road": part_names[part_of[i]],
                "from": list(lonlat(*new_xy[i])),
                "to": list(lonlat(*new_xy[k])),
                "length_m": round(float(piece.length), 1),
            }
        )
    coords = np.concatenate(out)
    return np.concatenate([coords, coords[:1]])


# --------------------------------------------------------------------------------------------
# Proposals
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """A new boundary: metric and WGS84, where it came from, and how it was made."""

    metric: BaseGeometry
    polygon: BaseGeometry  # WGS84
    source: str  # "four_to" | "geometry"
    four_to: str | None = None  # the text it was built from
    sides: dict | None = None  # build report per side (four-to only)
    snapped: SnapReport = field(default_factory=SnapReport)
    warnings: tuple[str, ...] = ()  # repairs to report (e.g. rings wound the wrong way)
    # the four-to build's report beyond its sides, where not empty: extensions, exceptions
    # (provisos applied or not), notes (text that is no side), within, resolved (names)
    report: Mapping[str, Any] = field(default_factory=dict)

    @property
    def area_m2(self) -> float:
        """The area in square metres (EPSG:4549)."""
        return float(self.metric.area)

    def feature(self, properties: Mapping[str, Any] | None = None) -> dict:
        """A GeoJSON Feature of the boundary with its area, sides and ``properties``."""
        props: dict[str, Any] = {"area_m2": round(self.area_m2, 1)}
        if self.sides is not None:
            props["sides"] = self.sides
        props.update(self.report)
        props.update(properties or {})
        return {
            "type": "Feature",
            "geometry": shapely.geometry.mapping(self.polygon),
            "properties": props,
        }


def named_areas(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """What four-to text may cite as an area (``…地界``, ``与…交界``): the named areas and the
    streets, as one frame of ``name`` and polygons."""
    frames = [
        tables[name][["name", "geometry"]]
        for name in ("areas", "streets")
        if name in tables and len(tables[name])
    ]
    if not frames:
        return tables.get("areas")
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def within_polygon(streets: pd.DataFrame, key: str | None) -> BaseGeometry | None:
    """The polygon a four-to text's open side is closed by: street ``key`` (id or name), or
    the whole district for ``district``; None for None. Raises `EditError` for an unknown key."""
    if key is None:
        return None
    if key == "district":
        if not len(streets):
            raise EditError("within district: the store has no streets yet")
        return shapely.union_all(streets.geometry.values)
    hit = streets[(streets["id"] == key) | (streets["name"] == key)]
    if hit.empty:
        known = ", ".join(f"{i} ({n})" for i, n in zip(streets["id"], streets["name"], strict=True))
        raise EditError(
            f"within: no street {key!r}; streets are {known or 'none yet'}, or district"
        )
    return hit.geometry.iloc[0]


def propose(
    *,
    four_to: str | None = None,
    geometry: Any = None,
    roads: RoadNetwork | pd.DataFrame | None = None,
    areas: pd.DataFrame | None = None,
    crs: str = "wgs84",
    snap_tolerance_m: float = SNAP_TOLERANCE_M,
    extend_m: float = 0.0,
    within: BaseGeometry | None = None,
) -> Proposal:
    """The boundary from four-to text (built along ``roads``, extending roads that stop short
    by up to ``extend_m`` metres, closing a side the text leaves open with ``within``'s
    boundary) or a drawn GeoJSON ``geometry`` (snapped to ``roads``). Raises `EditError`,
    `BuildError` or `FourToError` (all ValueError)."""
    if (four_to is None) == (geometry is None):
        raise EditError(
            "give either four_to (the four-to text) or geometry (a drawn GeoJSON polygon), "
            "not both and not neither"
        )
    network = roads
    if network is not None and not isinstance(network, RoadNetwork):
        network = RoadNetwork.from_frame(network)
    if four_to is not None:
        if not four_to.strip():
            raise FourToError("the four-to text is empty; write e.g. 东至…、南至…、西至…、北至…")
        if network is None:
            raise EditError("no roads to build the boundary along")
        res = build_boundary(four_to, network, areas, extend_m=extend_m, within=within)
        props = res.to_feature()["properties"]
        report = {k: v for k, v in props.items() if k not in ("area_m2", "sides")}
        return Proposal(res.metric, res.polygon, "four_to", four_to, props["sides"], report=report)
    metric = read_geometry(geometry, crs)
    _check_valid(metric, "the drawn boundary")
    metric, warnings = orient_rfc7946(metric)  # wrong winding is repaired and reported
    report = SnapReport()
    if network is not None and snap_tolerance_m > 0:
        metric, report = snap_to_roads(metric, network, snap_tolerance_m)
        _check_valid(metric, "the boundary snapped to the roads")
        metric = orient_rfc7946(metric)[0]
    return Proposal(metric, to_lonlat(metric), "geometry", None, None, report, tuple(warnings))


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Validation:
    """A boundary's problems: errors forbid the write, gaps are only reported."""

    errors: list[Problem]  # forbid the write
    gaps: list[Problem]  # reported only

    @property
    def ok(self) -> bool:
        """Whether the boundary may be saved."""
        return not self.errors

    def message(self) -> str:
        """Why the boundary cannot be saved, and what to do."""
        return (
            "the boundary cannot be saved: "
            + "; ".join(p.message for p in self.errors)
            + (". Move the boundary onto the shared road (or inside the street) and try again")
        )


def validate(
    tables: Mapping[str, pd.DataFrame], community_id: str, street_id: str, metric: BaseGeometry
) -> Validation:
    """What the new boundary ``metric`` of ``community_id`` breaks in ``street_id``."""
    if street_id not in set(tables["streets"]["id"]):
        known = ", ".join(sorted(tables["streets"]["id"]))
        raise EditError(f"unknown street {street_id!r}; streets are {known}")
    found = check_member(tables, community_id, street_id, metric)
    gaps = [p for p in found if p.kind == "gap" or p.detail.startswith("gap")]
    errors = [p for p in found if p not in gaps]
    return Validation(errors, gaps)


# --------------------------------------------------------------------------------------------
# Impact
# --------------------------------------------------------------------------------------------


def owners(points: np.ndarray, polygons: np.ndarray) -> np.ndarray:
    """Index of the polygon owning each point (-1: none): the one whose interior holds it;
    on a shared edge, the lowest index (polygons sorted by id: the smallest id)."""
    out = np.full(len(points), -1, dtype=np.int64)
    if not len(points) or not len(polygons):
        return out
    tree = shapely.STRtree(polygons)
    pi, gi = tree.query(points, predicate="intersects")
    if not len(pi):
        return out
    interior = shapely.contains_properly(polygons[gi], points[pi])
    key = np.where(interior, 0, len(polygons)) + gi
    order = np.lexsort((key, pi))
    pi, gi = pi[order], gi[order]
    first = np.r_[True, pi[1:] != pi[:-1]]
    out[pi[first]] = gi[first]
    return out


def impact(
    tables: Mapping[str, pd.DataFrame],
    community_id: str,
    polygon: BaseGeometry,
    *,
    name: str | None = None,
    layers: tuple[str, ...] = ("parks", "buildings", "enterprises"),
) -> dict:
    """Which parks, buildings and enterprises (of ``layers``) change community, and the area
    gained and lost (m², EPSG:4549), if ``community_id`` had the WGS84 boundary ``polygon``."""
    comm = tables["communities"]
    ids = comm["id"].to_numpy(dtype=object)
    names = dict(zip(comm["id"], comm["name"], strict=True))
    before = np.asarray(comm.geometry.values, dtype=object)
    hit = np.flatnonzero(ids == community_id)
    if len(hit):
        after = before.copy()
        after[hit[0]] = polygon
        new_ids = ids
        old_geom = before[hit[0]]
    else:  # a new community
        new_ids = np.append(ids, community_id)
        order = np.argsort(new_ids, kind="stable")
        new_ids = new_ids[order]
        after = np.append(before, polygon)[order]
        old_geom = None
    names[community_id] = name or names.get(community_id, community_id)

    def moves(layer: str, pts: np.ndarray) -> list[dict]:
        frame = tables[layer]
        was = owners(pts, before)
        now = owners(pts, after)
        was_id = np.append(ids, None)[was]
        now_id = np.append(new_ids, None)[now]
        changed = np.flatnonzero(was_id != now_id)
        xy = shapely.get_coordinates(pts[changed]) if len(changed) else np.empty((0, 2))
        return [
            {
                "id": frame["id"].iat[k],
                "name": frame["name"].iat[k],
                "from": _cell(was_id[k], names),
                "to": _cell(now_id[k], names),
                "lon": round(float(x), 7),  # where it is (a point on it), for the map
                "lat": round(float(y), 7),
            }
            for k, (x, y) in zip(changed, xy, strict=True)
        ]

    points = {  # where each layer's features are, for the ownership rule
        "parks": lambda f: shapely.point_on_surface(f.geometry.values),
        "buildings": lambda f: shapely.point_on_surface(f.geometry.values),
        "enterprises": lambda f: np.asarray(f.geometry.values, dtype=object),
    }
    result = {k: moves(k, points[k](tables[k])) for k in layers}
    new_m = to_metric(polygon)
    old_m = to_metric(old_geom) if old_geom is not None else shapely.Polygon()
    area = {
        "before_m2": round(float(old_m.area), 1),
        "after_m2": round(float(new_m.area), 1),
        "gained_m2": round(float(shapely.difference(new_m, old_m).area), 1),
        "lost_m2": round(float(shapely.difference(old_m, new_m).area), 1),
    }
    counts = {k: len(v) for k, v in result.items()}
    return {"community": community_id, "area": area, "counts": counts, **result}


def _cell(cid: str | None, names: Mapping[str, str]) -> dict | None:
    return None if cid is None else {"id": cid, "name": names.get(cid, cid)}


# --------------------------------------------------------------------------------------------
# Rebuilding from four-to text (geo load)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rebuild:
    """One community built from its four-to text: IoU with the digitised polygon, or error."""

    id: str
    iou: float | None
    error: str | None = None
    area_m2: float | None = None

    @property
    def ok(self) -> bool:
        """Whether the rebuild matches the stored boundary (IoU at least `MIN_IOU`)."""
        return self.error is None and self.iou is not None and self.iou >= MIN_IOU

    def message(self) -> str:
        """What the check found, in one line."""
        if self.error is not None:
            return f"cannot build {self.id} from its four-to text: {self.error}"
        return (
            f"{self.id} built from its four-to text differs from the digitised polygon "
            f"(IoU {self.iou:.3f} < {MIN_IOU}); check the text or the drawing"
        )


def rebuild_check(
    communities: pd.DataFrame, roads: pd.DataFrame | RoadNetwork, areas: pd.DataFrame | None
) -> list[Rebuild]:
    """Build every community from its ``four_to`` along ``roads`` and compare (IoU, metric)."""
    if not len(communities):
        return []
    network = roads if isinstance(roads, RoadNetwork) else RoadNetwork.from_frame(roads)
    digitised = to_metric(np.asarray(communities.geometry.values, dtype=object))
    out = []
    for cid, text, want in zip(communities["id"], communities["four_to"], digitised, strict=True):
        if not isinstance(text, str) or not text.strip():
            out.append(Rebuild(cid, None, "no four-to text"))
            continue
        try:
            res = build_boundary(text, network, areas)
        except (BuildError, FourToError) as exc:
            out.append(Rebuild(cid, None, str(exc)))
            continue
        union = shapely.union(res.metric, want).area
        iou = shapely.intersection(res.metric, want).area / union if union else 0.0
        out.append(Rebuild(cid, float(iou), None, res.area_m2))
    return out


__all__ = [
    "EditError",
    "Proposal",
    "Rebuild",
    "SnapReport",
    "Validation",
    "impact",
    "orient_rfc7946",
    "owners",
    "propose",
    "read_geometry",
    "rebuild_check",
    "snap_to_roads",
    "validate",
]
