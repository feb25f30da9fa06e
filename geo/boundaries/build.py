"""Build the polygon a four-to (四至) description encloses, along road centerlines.

``build_boundary(spec, roads, areas, *, within=None)``:

1. Every ref of the spec is looked up: a road (or river, canal: rows of the roads frame) in
   the `RoadNetwork` (pieces joined, dual carriageways collapsed to their midline), an area's
   boundary in ``areas`` (its vertices within the gap tolerance of a spec road are moved onto
   the road, so shared edges coincide). ``areas`` may hold streets, parks and buildings as
   well: whatever a text names (西与长河街道交界). A name is looked up exactly first; failing
   that, by its 路/大道/街 variants (东信路 → 东信大道) or, written bare, by the roads it begins
   (信诚 → 信诚路); more than one candidate is an error listing them. A road name that is no
   road falls back to an area of that name (南至白马湖, a lake drawn as an area), and an area
   to a road. Unknown names fail with the closest names (pinyin-aware). A side the text does
   not give is closed by the boundary of ``within`` (the street or district the area lies
   in); without it the build fails naming the open side.
2. Loose ends within the gap tolerance of another spec line get a short connector; a road that
   ends at one carriageway of a dual road is joined to the midline. Consecutive sides (and
   consecutive refs of one side's chain) must then touch, or the build fails naming the two
   sides and where the gap is. With ``extend_m`` > 0 a road end that touches no other spec
   line is first extended along its last direction, at most ``extend_m`` metres, to the first
   spec line it meets, when that line is the side (or chain neighbour) it must meet; the
   result lists each extension. Without it the error suggests the ``--extend-m`` needed.
3. Only the spec's lines are noded (so unnamed and other named roads never cut the area) and
   polygonized. Overshoots past junctions are dangles and drop out.
4. The result is the smallest connected union of faces whose outer ring is one simple ring on
   which every ref of the spec has a stretch, each side's stretches are contiguous, and each
   side lies on its compass side of the centroid (east side east of it, and so on). A spec
   road that runs on through the area (联庄路 in Torch) splits it into several faces: their
   union is taken. An area qualifier says where the area lies: ``北至…汇智地界北`` puts 汇智
   north of the boundary (outside); ``北至…X地界南`` would put X inside.
   Several minimal unions → ambiguous; unions that fail only the compass test → that error.
   A side closed by ``within`` need only be on the ring; every road side must then also face
   the area (南环路, the south side, has the area to its north).
5. The text's provisos are applied where every name they give is a known area: ``(另含X)``
   adds X's polygon, ``(不含X)`` / ``X除外`` takes it out; the others are reported unapplied,
   with the text's notes (lead-in, trailing sentences) and the names read as other names.

All geometry work is in `geo.crs.METRIC_CRS` (EPSG:4549); the result polygon is WGS84.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geo.boundaries.build_result import BuildError, BuildResult, ExceptionReport, SideReport
from geo.boundaries.connect import _bridge, _check_gaps
from geo.boundaries.enclose import _enclose
from geo.boundaries.fourto import (
    CHINESE,
    ORDER,
    FourTo,
    Proviso,
    normalise,
    parse_four_to,
)
from geo.boundaries.resolve import _area_key, _resolve
from geo.boundaries.roads import (
    GRID,
    RoadNetwork,
    frame_crs,
)
from geo.crs import to_lonlat, to_metric

# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def build_boundary(
    spec: FourTo | str,
    roads,
    areas=None,
    *,
    gap_tolerance_m: float = 1.0,
    extend_m: float = 0.0,
    within: BaseGeometry | None = None,
) -> BuildResult:
    """The polygon ``spec`` describes, from ``roads`` (GeoDataFrame or `RoadNetwork`; rivers
    and canals are rows too) and optional named ``areas`` (GeoDataFrame with ``name`` and
    polygons: areas, parks, streets, buildings — whatever the text may name). A text is read
    with ``parse_four_to(strict=False)``. A road that stops short of the side it must meet is
    extended along its direction by up to ``extend_m`` metres. A missing side is closed by the
    boundary of ``within`` (a WGS84 polygon the area lies in: its street or district). The
    text's provisos are applied where they name a known area. Raises `BuildError`."""
    if not math.isfinite(extend_m) or extend_m < 0:
        raise BuildError(f"extend_m must be a number of metres ≥ 0, got {extend_m!r}")
    if isinstance(spec, str):
        spec = parse_four_to(spec, strict=False)
    network = (
        roads
        if isinstance(roads, RoadNetwork)
        else RoadNetwork.from_frame(roads, gap_tolerance_m=gap_tolerance_m)
    )
    area_polys = area_polygons(areas)
    closing = _closing(spec, within)
    refs, resolved = _resolve(spec, network, area_polys, gap_tolerance_m, closing)
    _bridge(refs, network, gap_tolerance_m)
    extensions = _check_gaps(spec, refs, network.carriageways, extend_m)
    try:
        result = _enclose(spec, refs)
    except BuildError as exc:
        if not extensions:
            raise
        done = "; ".join(f"{e.road} by {e.length_m:.1f} m to {e.reached}" for e in extensions)
        raise BuildError(f"{exc} (after extending {done})") from exc
    if closing is not None:  # the area lies in ``within``: nothing of it may reach outside
        result = _clip(result, closing)
    result = _apply_provisos(result, spec, area_polys, resolved)
    return dataclasses.replace(result, extensions=extensions) if extensions else result


def _clip(result: BuildResult, within: BaseGeometry) -> BuildResult:
    """``result`` cut to the metric ``within`` polygon: where a road side and the within
    boundary run a little apart (a carriageway midline beside a street border), the sliver
    outside is not the area's."""
    poly = shapely.intersection(result.metric, within, grid_size=GRID)
    parts = [g for g in shapely.get_parts(poly) if g.geom_type == "Polygon" and g.area > 0]
    if not parts:
        raise BuildError("the area the sides enclose lies outside the within polygon")
    poly = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
    poly = shapely.orient_polygons(poly, exterior_cw=False)  # RFC 7946 winding
    return dataclasses.replace(
        result, polygon=to_lonlat(poly), area_m2=float(poly.area), metric=poly
    )


def _closing(spec: FourTo, within: BaseGeometry | None) -> BaseGeometry | None:
    """The metric ``within`` polygon when a side is missing; an error when none is given."""
    missing = [d for d in ORDER if d not in spec.sides]
    if not missing:
        return None
    letters = "、".join(CHINESE[d] for d in missing)
    if within is None:
        adds = "、".join(f"{CHINESE[d]}至<road>" for d in missing)
        raise BuildError(
            f"side {letters} is open: the text gives no {letters}至…; add {adds}, or close it "
            "with the area the community lies in (--within STREET_ID, or within=polygon)"
        )
    if within.is_empty or within.geom_type not in ("Polygon", "MultiPolygon"):
        raise BuildError(f"within must be a (Multi)Polygon in WGS84, got {within.geom_type}")
    return to_metric(within)


def area_polygons(areas) -> dict[str, BaseGeometry]:
    """Named areas as metric polygons (rows of one name are unioned)."""
    if areas is None or len(areas) == 0:
        return {}
    if "name" not in areas.columns:
        raise BuildError("the areas frame has no 'name' column")
    metric = to_metric(np.asarray(list(areas.geometry.values), dtype=object), frame_crs(areas))
    out: dict[str, list[BaseGeometry]] = {}
    for name, geom in zip(areas["name"], metric, strict=True):
        if isinstance(name, str) and name.strip() and geom is not None and not geom.is_empty:
            out.setdefault(normalise(name).strip(), []).append(geom)
    return {k: shapely.union_all(v) for k, v in out.items()}


# --------------------------------------------------------------------------------------------
# 5. Provisos: (另含…) adds a known area, (不含…) takes it out
# --------------------------------------------------------------------------------------------


def _apply_provisos(
    result: BuildResult, spec: FourTo, areas: dict[str, BaseGeometry], resolved: dict[str, str]
) -> BuildResult:
    """``result`` with each include/exclude proviso that names known areas applied (union /
    difference with the area's polygon), and every proviso reported."""
    poly = result.metric
    reports: list[ExceptionReport] = []
    index = {_area_key(k): k for k in areas}
    for p in spec.exceptions:
        poly, report = _apply_one(poly, p, areas, index)
        reports.append(report)
    if poly is not result.metric:
        poly = shapely.orient_polygons(poly, exterior_cw=False)  # RFC 7946 winding
    return dataclasses.replace(
        result,
        polygon=to_lonlat(poly) if poly is not result.metric else result.polygon,
        area_m2=float(poly.area),
        metric=poly,
        exceptions=tuple(reports),
        notes=spec.notes,
        resolved=resolved,
    )


def _apply_one(
    poly: BaseGeometry, p: Proviso, areas: dict[str, BaseGeometry], index: dict[str, str]
) -> tuple[BaseGeometry, ExceptionReport]:
    if p.kind == "remark":
        return poly, ExceptionReport(p.text, p.kind, p.side, False, "a remark: not applied")
    if not p.names:
        return poly, ExceptionReport(p.text, p.kind, p.side, False, "names nothing: not applied")
    keys = {n: n if n in areas else index.get(_area_key(normalise(n).strip())) for n in p.names}
    unknown = [n for n, k in keys.items() if k is None]
    if unknown:
        why = f"not applied: {', '.join(unknown)} is not a known area; add it to the areas"
        return poly, ExceptionReport(p.text, p.kind, p.side, False, why)
    before = poly.area
    for key in keys.values():
        area = areas[key]  # on the noding grid, so an area along a side merges with it
        if p.kind == "include":
            poly = shapely.union(poly, area, grid_size=GRID)
        else:
            poly = shapely.difference(poly, area, grid_size=GRID)
    poly = shapely.make_valid(poly)
    change = (poly.area - before) / 1e6
    names = ", ".join(p.names)
    verb = "added" if p.kind == "include" else "took out"
    why = f"{verb} {names} ({change:+.3f} km²)"
    return poly, ExceptionReport(p.text, p.kind, p.side, True, why)


__all__ = [
    "BuildError",
    "BuildResult",
    "ExceptionReport",
    "SideReport",
    "area_polygons",
    "build_boundary",
]
