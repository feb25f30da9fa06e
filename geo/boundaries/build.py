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
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon, mapping
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from geo.boundaries.fourto import (
    CHINESE,
    ORDER,
    ROAD_SUFFIXES,
    FourTo,
    Proviso,
    Ref,
    normalise,
    parse_four_to,
)
from geo.boundaries.roads import (
    GRID,
    Extension,
    RoadNetwork,
    bridge_gaps,
    extend_end,
    frame_crs,
    lonlat,
    loose_ends,
    meet_ends,
    node,
    suggest_names,
)
from geo.crs import to_lonlat, to_metric
from geo.errors import InvalidInput

LABEL_EPS = 0.01  # m: an edge lies on a ref when its midpoint is this close to it
MIN_STRETCH_M = 1.0  # m of ring a ref must contribute
MAX_SUBSETS = 200_000
_OPPOSITE = {"east": "west", "west": "east", "north": "south", "south": "north"}
_AREA_NAME_DROP = ("区块", "地块", "用地", "地界", "边界", "红线")
_COMPASS_WORD = {"east": "east", "west": "west", "north": "north", "south": "south"}
SUGGEST_MAX_M = 2000.0  # m: how far a road end is followed to suggest an ``extend_m``
WITHIN = "within"  # the label of a side closed by the ``within`` polygon
_STEM_RE = re.compile("(大道|大街|路|街|道)$")


class BuildError(InvalidInput):
    """A four-to spec that cannot be turned into a polygon; the message says what and where."""


@dataclass(frozen=True)
class SideReport:
    roads: list[str]
    length_m: float


@dataclass(frozen=True)
class BuildResult:
    polygon: BaseGeometry  # WGS84 Polygon or MultiPolygon
    sides: dict[str, SideReport]
    area_m2: float
    metric: BaseGeometry = field(repr=False, compare=False, default=None)  # the EPSG:4549 polygon
    extensions: list[Extension] = field(default_factory=list)  # roads extended to meet a side
    exceptions: tuple[ExceptionReport, ...] = ()  # the text's provisos, applied or not
    notes: tuple[str, ...] = ()  # text that is not a side (lead-in, trailing), never applied
    within: tuple[str, ...] = ()  # the sides the ``within`` polygon closed
    resolved: dict[str, str] = field(default_factory=dict)  # name as written → name in the data

    def to_feature(self) -> dict:
        """A GeoJSON Feature: the polygon, ``area_m2`` and ``sides`` {dir: {roads, length_m}};
        when the build has them, ``extensions`` [{road, length_m, lon, lat, reached}],
        ``exceptions`` [{text, kind, side, applied, reason}], ``notes``, ``within`` (the sides
        the within polygon closed) and ``resolved`` {written: data name}."""
        props: dict = {
            "area_m2": round(self.area_m2, 1),
            "sides": {
                d: {"roads": list(s.roads), "length_m": round(s.length_m, 1)}
                for d, s in self.sides.items()
            },
        }
        extra = {
            "extensions": [e.as_dict() for e in self.extensions],
            "exceptions": [dataclasses.asdict(e) for e in self.exceptions],
            "notes": list(self.notes),
            "within": list(self.within),
            "resolved": dict(self.resolved),
        }
        props.update({k: v for k, v in extra.items() if v})
        return {"type": "Feature", "geometry": mapping(self.polygon), "properties": props}


@dataclass(frozen=True)
class ExceptionReport:
    """A proviso of the text (``(另含白马湖地块)``) and what the build did with it."""

    text: str
    kind: str  # include | exclude | remark
    side: str | None
    applied: bool
    reason: str  # what was done, or why not


@dataclass
class _Ref:
    side: str
    index: int  # position in the side's chain
    ref: Ref
    geom: BaseGeometry  # metric lines (+ connectors once bridged)
    area: BaseGeometry | None = None  # the area polygon for area refs
    closing: bool = False  # the within polygon's boundary standing in for a missing side

    @property
    def label(self) -> str:
        if self.closing:
            return WITHIN
        return f"{self.ref.name}地界" if self.ref.kind == "area" else self.ref.name

    @property
    def shown(self) -> str:
        return f"{CHINESE[self.side]} ({self.label})"


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


def _area_key(name: str) -> str:
    for drop in _AREA_NAME_DROP:
        if name.endswith(drop) and len(name) > len(drop):
            return name[: -len(drop)]
    return name


# --------------------------------------------------------------------------------------------
# 1. Resolve refs
# --------------------------------------------------------------------------------------------


class _Lookup:
    """Names as written → lines and areas in the data (exact, then suffix variants)."""

    def __init__(self, network: RoadNetwork, areas: dict[str, BaseGeometry]) -> None:
        self.network, self.areas = network, areas
        self.area_index = {_area_key(k): k for k in areas}
        stems: dict[str, list[str]] = {}
        for name in network.names():
            stems.setdefault(_STEM_RE.sub("", name), []).append(name)
        self.stems = stems

    def roads(self, ref: Ref) -> list[str]:
        """Road names ``ref`` may mean: itself; else its 路/大道/街 variants (东信路 → 东信大道);
        a bare name (信诚) any road or river it starts (信诚路, 北塘 → 北塘河)."""
        if ref.name in self.network:
            return [ref.name]
        if ref.kind == "name":
            return [
                n
                for n in self.network.names()
                if n.startswith(ref.name) and n[len(ref.name) :] in (*ROAD_SUFFIXES, "大道", "大街")
            ]
        stem = _STEM_RE.sub("", ref.name)
        return self.stems.get(stem, []) if stem != ref.name else []

    def area(self, name: str) -> str | None:
        return name if name in self.areas else self.area_index.get(_area_key(name))


def _resolve(
    spec: FourTo,
    network: RoadNetwork,
    areas: dict[str, BaseGeometry],
    tol: float,
    within: BaseGeometry | None = None,
) -> tuple[list[_Ref], dict[str, str]]:
    """Each ref of the spec as metric lines (and each missing side as ``within``'s boundary);
    also which names were read as another name of the data."""
    refs: list[_Ref] = []
    problems: list[str] = []
    resolved: dict[str, str] = {}
    lookup = _Lookup(network, areas)
    for direction in ORDER:
        if direction not in spec.sides:
            ref = Ref(WITHIN, "area")
            refs.append(_Ref(direction, 0, ref, within.boundary, within, closing=True))
            continue
        for i, ref in enumerate(spec.sides[direction].chain):
            found = _find(ref, CHINESE[direction], lookup, problems)
            if found is None:
                continue
            used, geom, area = found
            if (used.name, used.kind) != (ref.name, ref.kind):
                resolved[ref.name] = used.name if used.kind == "road" else f"{used.name}地界"
            refs.append(_Ref(direction, i, used, geom, area))
    if problems:
        raise BuildError("; ".join(problems))
    roads = [r.geom for r in refs if r.ref.kind == "road"]
    if roads:
        target = shapely.union_all(roads)
        for r in refs:
            if r.ref.kind == "area":
                r.geom = _snap_onto(r.geom, target, tol)
    return refs, resolved


def _find(
    ref: Ref, letter: str, lookup: _Lookup, problems: list[str]
) -> tuple[Ref, BaseGeometry, BaseGeometry | None] | None:
    """One ref in the data: roads first for roads and bare names, areas first for areas (a
    road that is an area, or 与…交界 a river, falls back to the other); None + a problem."""
    names = lookup.roads(ref)
    key = lookup.area(ref.name)
    if len(names) > 1:
        problems.append(
            f'"{ref.name}" (side {letter}) may be any of {", ".join(names)}; write the full name'
        )
        return None
    road = (
        (Ref(names[0], "road", ref.qualifier), lookup.network.get(names[0]), None)
        if names
        else None
    )
    area = (
        (Ref(ref.name, "area", ref.qualifier), lookup.areas[key].boundary, lookup.areas[key])
        if key is not None
        else None
    )
    first, second = (area, road) if ref.kind == "area" else (road, area)
    if first or second:
        return first or second
    problems.append(_unknown(ref, letter, lookup))
    return None


def _unknown(ref: Ref, letter: str, lookup: _Lookup) -> str:
    if ref.kind == "area":
        hint = suggest_names(ref.name, lookup.areas)
        known = ", ".join(sorted(lookup.areas)) or "none were given"
        return (
            f'unknown area "{ref.name}" (side {letter}, {ref.name}地界)'
            + (f"; did you mean {', '.join(hint)}?" if hint else "")
            + f" (known areas: {known})"
        )
    hint = lookup.network.suggest(ref.name)
    what = "road" if ref.kind == "road" else "name"
    return (
        f'unknown {what} "{ref.name}" (side {letter})'
        + ("; no road, river or area has that name" if ref.kind == "name" else "")
        + (f"; did you mean {', '.join(hint)}?" if hint else "")
    )


def _snap_onto(geom: BaseGeometry, target: BaseGeometry, tol: float) -> BaseGeometry:
    """Move the vertices of ``geom`` within ``tol`` of ``target`` onto it, then add target's
    vertices to geom's segments (``shapely.snap``), so shared stretches coincide."""

    def fn(xy: np.ndarray) -> np.ndarray:
        pts = shapely.points(xy)
        d = shapely.distance(pts, target)
        near = (d > 0) & (d <= tol)
        if near.any():
            ends = shapely.get_coordinates(shapely.shortest_line(pts[near], target))
            xy = xy.copy()
            xy[near] = ends[1::2]
        return xy

    moved = shapely.transform(geom, fn)
    return shapely.snap(moved, target, tol)


# --------------------------------------------------------------------------------------------
# 2. Connect loose ends, check that consecutive sides meet
# --------------------------------------------------------------------------------------------


def _parts(geom: BaseGeometry) -> list[LineString]:
    return [p for p in shapely.get_parts(geom) if p.geom_type == "LineString" and not p.is_empty]


def _bridge(refs: list[_Ref], network: RoadNetwork, tol: float) -> None:
    """Give each ref's loose ends a connector to the nearby lines of other refs."""
    lines: list[LineString] = []
    owner: list[int] = []
    for k, r in enumerate(refs):
        parts = _parts(r.geom)
        lines += parts
        owner += [k] * len(parts)
    geoms = [r.geom for r in refs]
    extra: dict[int, list[LineString]] = {}
    # a line end near another ref's line (junction gaps) …
    for i, line in enumerate(lines):
        others = [g if j != owner[i] else shapely.Point() for j, g in enumerate(geoms)]
        for c in bridge_gaps([line], [shapely.Point(), *others], tol):
            extra.setdefault(owner[i], []).append(c)
    # … or ending at one carriageway of a dual road: join it to the midline
    for k, r in enumerate(refs):
        for line in _parts(r.geom):
            xy = shapely.get_coordinates(line)
            for end in (xy[0], xy[-1]):
                p = shapely.Point(end)
                for j, other in enumerate(refs):
                    if j == k or other.ref.kind != "road":
                        continue
                    strands = network.carriageways.get(other.ref.name, [])
                    if not any(s.distance(p) <= tol for s in strands):
                        continue
                    crossing = line.intersection(other.geom)
                    if not crossing.is_empty and crossing.distance(p) <= 60.0:
                        continue
                    extra.setdefault(k, []).append(shapely.shortest_line(p, other.geom))
    for k, conns in extra.items():
        refs[k].geom = shapely.union_all([refs[k].geom, *conns])


def _gap(a: _Ref | list[_Ref], b: _Ref | list[_Ref]) -> tuple[float, LineString]:
    ga = shapely.union_all([r.geom for r in (a if isinstance(a, list) else [a])])
    gb = shapely.union_all([r.geom for r in (b if isinstance(b, list) else [b])])
    return shapely.distance(ga, gb), shapely.shortest_line(ga, gb)


def _describe_gap(what: str, dist: float, line: LineString) -> str:
    (x0, y0), (x1, y1) = shapely.get_coordinates(line)
    a, b = lonlat(x0, y0), lonlat(x1, y1)
    return (
        f"{what} do not meet: the gap is {dist:.1f} m, between "
        f"({a[0]:.6f}, {a[1]:.6f}) and ({b[0]:.6f}, {b[1]:.6f}) (lon, lat)"
    )


_SIDE_PAIRS = [("north", "east"), ("east", "south"), ("south", "west"), ("west", "north")]


def _check_gaps(
    spec: FourTo, refs: list[_Ref], strands: dict[str, list[LineString]], extend_m: float
) -> list[Extension]:
    """Consecutive sides (and chain neighbours) must meet; a gap a road end can close by
    running on along its direction for at most ``extend_m`` metres is closed. Returns the
    extensions made; raises naming every gap left (and the ``--extend-m`` that would close it)."""
    by_side = {d: [r for r in refs if r.side == d] for d in ORDER}
    pairs: list[tuple[list[_Ref], list[_Ref], str]] = []
    for d in ORDER:
        for a, b in itertools.pairwise(by_side[d]):
            pairs.append(([a], [b], f"{a.label} and {b.label} (side {CHINESE[d]})"))
    for a, b in _SIDE_PAIRS:
        shown = (f"{CHINESE[s]} ({'/'.join(r.label for r in by_side[s])})" for s in (a, b))
        pairs.append((by_side[a], by_side[b], "sides {} and {}".format(*shown)))
    problems: list[str] = []
    extensions: list[Extension] = []
    for a, b, what in pairs:
        if not a or not b:  # a side the text leaves open
            continue
        dist, line = _gap(a, b)
        if dist <= 10 * GRID:
            continue
        reach, blocked = _reach(refs, a, b, strands, max(extend_m, SUGGEST_MAX_M))
        if reach is not None and round(reach.longest, 1) <= extend_m:
            for k, new in reach.lines:
                refs[k].geom = shapely.union_all([refs[k].geom, new])
            extensions += reach.exts
            continue
        problems.append(_describe_gap(what, dist, line) + _extend_hint(reach, blocked, extend_m))
    if problems:
        raise BuildError("; ".join(problems))
    return extensions


@dataclass
class _Reach:
    exts: list[Extension]  # one road end run on to the other side, or two to where they cross
    lines: list[tuple[int, LineString]]  # (ref, line to add to it)

    @property
    def longest(self) -> float:
        return max(e.length_m for e in self.exts)

    @property
    def total(self) -> float:
        return sum(e.length_m for e in self.exts)


def _reach(
    refs: list[_Ref],
    a: list[_Ref],
    b: list[_Ref],
    strands: dict[str, list[LineString]],
    max_m: float,
) -> tuple[_Reach | None, Extension | None]:
    """The least extension that closes the gap between ``a`` and ``b``: one loose road end of
    either run on until it meets the other before any other spec line, else a loose end of
    each run on to where their directions cross. Also the shortest run that met another
    line first."""
    ends = {"a": _ends_of(refs, a), "b": _ends_of(refs, b)}
    best: _Reach | None = None
    blocked: Extension | None = None
    for side, goal in (("a", b), ("b", a)):
        labels = {x.label for x in goal}
        for k, part, at_start in ends[side]:
            r = refs[k]
            line, ext = extend_end(part, at_start, max_m, _targets(refs, k, strands), road=r.label)
            if ext is None:
                continue
            if ext.reached not in labels:
                blocked = ext if blocked is None or ext.length_m < blocked.length_m else blocked
                continue
            if best is None or ext.length_m < best.total:
                conns = _to_midline(line, at_start, refs, ext.reached)
                best = _Reach([ext], [(k, line), *((k, c) for c in conns)])
    if best is not None:
        return best, blocked
    blockers = [g for _, g in _targets(refs, -1, strands)]
    for (ka, pa, sa), (kb, pb, sb) in itertools.product(ends["a"], ends["b"]):
        met = meet_ends((refs[ka].label, pa, sa), (refs[kb].label, pb, sb), max_m, blockers)
        if met is not None and (best is None or sum(e.length_m for e in met[1]) < best.total):
            best = _Reach(met[1], [(ka, met[0][0]), (kb, met[0][1])])
    return best, blocked


def _targets(
    refs: list[_Ref], k: int, strands: dict[str, list[LineString]]
) -> list[tuple[str, BaseGeometry]]:
    """The spec's lines by label (with the carriageways of dual roads), ref ``k``'s own last
    so that an end never runs through its own road (``k`` = -1: no ref is ``k``'s)."""
    own = refs[k] if k >= 0 else None
    out = [(o.label, o.geom) for o in refs if o is not own]
    out += [(o.label, s) for o in refs if o is not own for s in strands.get(o.label, [])]
    return out + ([(own.label, own.geom)] if own is not None else [])


def _ends_of(refs: list[_Ref], group: list[_Ref]) -> list[tuple[int, LineString, bool]]:
    """(ref, line, at_start) for every loose end of the roads in ``group``."""
    out = []
    for k, r in enumerate(refs):
        if r.ref.kind == "road" and any(r is x for x in group):
            others = shapely.union_all([o.geom for o in refs if o is not r])
            out += [(k, line, at_start) for line, at_start in loose_ends(r.geom, others)]
    return out


def _to_midline(line: LineString, at_start: bool, refs: list[_Ref], name: str) -> list[LineString]:
    """A connector from an extension's end on one carriageway to the road's midline."""
    end = shapely.get_point(line, 0 if at_start else -1)
    target = shapely.union_all([r.geom for r in refs if r.label == name])
    if shapely.distance(end, target) <= 10 * GRID:
        return []
    return [shapely.shortest_line(end, target)]


def _needed(length_m: float) -> int:
    """The whole metres of ``extend_m`` an extension needs (lengths count to 0.1 m)."""
    return math.ceil(round(length_m, 1))


def _extend_hint(reach: _Reach | None, blocked: Extension | None, extend_m: float) -> str:
    if reach is not None:
        short = f"--extend-m {extend_m:g} is not enough; " if extend_m > 0 else ""
        if len(reach.exts) == 1:
            how = f"{reach.exts[0].road}'s end along its direction to {reach.exts[0].reached}"
        else:
            how = " and ".join(f"{e.road}'s end" for e in reach.exts)
            how += " along their directions until they meet"
        return (
            f"; {short}pass --extend-m {_needed(reach.longest)} (any N ≥ {reach.longest:.1f}) "
            f"to extend {how}"
        )
    if blocked is not None:
        return (
            f"; {blocked.road}'s end, extended along its direction, would meet "
            f"{blocked.reached} first ({blocked.length_m:.1f} m)"
        )
    return ""


# --------------------------------------------------------------------------------------------
# 3–4. Faces and the enclosure
# --------------------------------------------------------------------------------------------


@dataclass
class _Arrangement:
    edges: list[LineString]
    labels: list[frozenset[int]]  # ref indices each edge lies on
    ends: list[tuple[tuple[float, float], tuple[float, float]]]
    lengths: np.ndarray
    mids: np.ndarray  # (n, 2) length-weighted centre of each edge
    faces: list[Polygon]
    face_edges: list[list[int]]
    edge_faces: list[list[int]]
    areas: np.ndarray
    centroids: np.ndarray
    adjacency: list[set[int]]


def _arrange(refs: list[_Ref]) -> _Arrangement:
    noded = node([r.geom for r in refs])
    edges = [e for e in shapely.get_parts(noded) if e.geom_type == "LineString" and e.length > 0]
    mid_pts = shapely.line_interpolate_point(edges, 0.5, normalized=True)
    labels = []
    ref_geoms = [r.geom for r in refs]
    dist = shapely.distance(mid_pts[:, None], np.asarray(ref_geoms, dtype=object)[None, :])
    for row in dist:
        labels.append(frozenset(int(k) for k in np.flatnonzero(row <= LABEL_EPS)))
    ends = []
    for e in edges:
        xy = shapely.get_coordinates(e)
        ends.append((tuple(xy[0]), tuple(xy[-1])))
    lengths = shapely.length(edges)
    mids = shapely.get_coordinates(shapely.centroid(edges))
    faces = [f for f in shapely.get_parts(shapely.polygonize(edges)) if f.area > 0]
    tree = shapely.STRtree(mid_pts)
    face_edges: list[list[int]] = []
    edge_faces: list[list[int]] = [[] for _ in edges]
    for fi, f in enumerate(faces):
        hits = tree.query(f.boundary, predicate="dwithin", distance=1e-4)
        face_edges.append([int(h) for h in hits])
        for h in hits:
            edge_faces[int(h)].append(fi)
    adjacency = [set() for _ in faces]
    for fs in edge_faces:
        for a in fs:
            for b in fs:
                if a != b:
                    adjacency[a].add(b)
    areas = np.array([f.area for f in faces])
    centroids = shapely.get_coordinates(shapely.centroid(faces)) if faces else np.zeros((0, 2))
    return _Arrangement(
        edges, labels, ends, lengths, mids, faces, face_edges, edge_faces, areas, centroids,
        adjacency,
    )  # fmt: skip


def _connected_subsets(adj: list[set[int]]) -> Iterator[frozenset[int]]:
    """Every connected set of faces exactly once (ESU enumeration); send True to prune."""
    n = len(adj)
    for v in range(n):
        stack = [(frozenset([v]), frozenset(u for u in adj[v] if u > v))]
        while stack:
            sub, ext = stack.pop()
            prune = yield sub
            if prune:
                continue
            closed = set(sub)
            for s in sub:
                closed |= adj[s]
            ext_list = sorted(ext)
            for i, w in enumerate(ext_list):
                rest = frozenset(ext_list[i + 1 :])
                excl = frozenset(u for u in adj[w] if u > v and u not in closed)
                stack.append((sub | {w}, rest | excl))


@dataclass
class _Candidate:
    faces: frozenset[int]
    ring: list[int]  # edge indices in ring order
    problems: list[tuple[str, str]]  # (kind, message)
    centre: np.ndarray
    area: float


def _ring(arr: _Arrangement, faces: frozenset[int]) -> list[int] | None:
    """The outer boundary of a union of faces as ordered edges, or None unless one simple ring."""
    count: Counter[int] = Counter()
    for f in faces:
        count.update(arr.face_edges[f])
    boundary = [e for e, c in count.items() if c == 1 and len(arr.edge_faces[e]) <= 2]
    # an edge with both sides in the union is interior; edges bounding one face only
    boundary = [e for e in boundary if sum(g in faces for g in arr.edge_faces[e]) == 1]
    if not boundary:
        return None
    at: dict[tuple[float, float], list[int]] = {}
    for e in boundary:
        a, b = arr.ends[e]
        at.setdefault(a, []).append(e)
        at.setdefault(b, []).append(e)
    if any(len(v) != 2 for v in at.values()):
        return None
    ring = [boundary[0]]
    node_ = arr.ends[boundary[0]][1]
    while True:
        nxt = [e for e in at[node_] if e != ring[-1]]
        e = nxt[0]
        if e == ring[0]:
            break
        ring.append(e)
        a, b = arr.ends[e]
        node_ = b if a == node_ else a
        if len(ring) > len(boundary):
            return None
    return ring if len(ring) == len(boundary) else None


def _evaluate(arr: _Arrangement, refs: list[_Ref], faces: frozenset[int]) -> _Candidate | None:
    ring = _ring(arr, faces)
    if ring is None:
        return None
    idx = list(faces)
    area = float(arr.areas[idx].sum())
    centre = (arr.centroids[idx] * arr.areas[idx, None]).sum(axis=0) / area
    problems: list[tuple[str, str]] = []
    # every ref contributes a stretch of the ring
    for k, r in enumerate(refs):
        stretch = sum(arr.lengths[e] for e in ring if k in arr.labels[e])
        if stretch < MIN_STRETCH_M:
            problems.append(("missing", f"{r.shown} is not on the boundary"))
    sides = {d: {k for k, r in enumerate(refs) if r.side == d} for d in ORDER}
    # a side closed by ``within`` only has to be on the ring: one boundary may close several
    checked = [d for d in ORDER if not any(refs[k].closing for k in sides[d])]
    for d in checked:
        present = [bool(arr.labels[e] & sides[d]) for e in ring]
        runs = sum(1 for i in range(len(ring)) if present[i] and not present[i - 1])
        if all(present):
            runs = 1
        if runs > 1:
            problems.append(("contiguity", f"side {CHINESE[d]} is broken into {runs} stretches"))
    # compass sides
    for d in checked:
        es = [e for e in ring if arr.labels[e] & sides[d]]
        w = arr.lengths[es]
        if w.sum() <= 0:
            continue
        c = (arr.mids[es] * w[:, None]).sum(axis=0) / w.sum()
        dx, dy = c - centre
        offset = {"east": dx, "west": -dx, "north": dy, "south": -dy}[d]
        if offset <= 0:
            actual = _heading(dx, dy)
            roads = ", ".join(refs[k].label for k in sorted(sides[d]))
            problems.append(
                (
                    "compass",
                    f"side {CHINESE[d]} ({roads}) lies {actual} of the area's centre, "
                    f"not {_COMPASS_WORD[d]} ({abs(offset):.0f} m on the wrong side)",
                )
            )
    if len(checked) < len(ORDER):
        problems += _facing(arr, faces, ring, sides, checked)
    # area qualifiers: the qualifier says where the area lies from the boundary
    for k, r in enumerate(refs):
        q = r.ref.qualifier
        if r.area is None or q is None:
            continue
        qd = {"东": "east", "南": "south", "西": "west", "北": "north"}[q]
        if qd not in (r.side, _OPPOSITE[r.side]):
            continue
        want_inside = qd == _OPPOSITE[r.side]
        for e in ring:
            if k not in arr.labels[e]:
                continue
            inner = next(f for f in arr.edge_faces[e] if f in faces)
            face = arr.faces[inner]
            inside = face.intersection(r.area).area > 0.5 * face.area
            if inside != want_inside:
                where = "inside" if want_inside else "outside"
                problems.append(("qualifier", f"area {r.ref.name} must lie {where} the boundary"))
                break
    return _Candidate(faces, ring, problems, centre, area)


_INWARD = {"east": (-1.0, 0.0), "west": (1.0, 0.0), "north": (0.0, -1.0), "south": (0.0, 1.0)}


def _facing(
    arr: _Arrangement,
    faces: frozenset[int],
    ring: list[int],
    sides: dict[str, set[int]],
    checked: list[str],
) -> list[tuple[str, str]]:
    """With a side closed by ``within`` the centre test is weak (an area may wrap around the
    roads), so each road side must also face the area: 南环路 (south) has the area north of it."""
    problems: list[tuple[str, str]] = []
    for d in checked:
        total = 0.0
        for e in (e for e in ring if arr.labels[e] & sides[d]):
            edge = arr.edges[e]
            inner = arr.faces[next(f for f in arr.edge_faces[e] if f in faces)]
            h = min(0.05, edge.length / 4)
            a, b = shapely.get_coordinates(
                shapely.line_interpolate_point(edge, [edge.length / 2 - h, edge.length / 2 + h])
            )
            t = (b - a) / np.hypot(*(b - a))
            left = np.array([-t[1], t[0]])
            mid = (a + b) / 2
            inward = left if inner.contains(shapely.Point(mid + 0.01 * left)) else -left
            total += edge.length * float(inward @ np.array(_INWARD[d]))
        if total <= 0:
            problems.append(
                ("compass", f"side {CHINESE[d]} faces away from the area (it lies beyond it)")
            )
    return problems


def _heading(dx: float, dy: float) -> str:
    if abs(dx) >= abs(dy):
        return "east" if dx > 0 else "west"
    return "north" if dy > 0 else "south"


def _enclose(spec: FourTo, refs: list[_Ref]) -> BuildResult:
    arr = _arrange(refs)
    valid: list[_Candidate] = []
    compass_only: list[_Candidate] = []
    best: _Candidate | None = None
    gen = _connected_subsets(arr.adjacency)
    n = 0
    prune = None
    while True:
        try:
            faces = gen.send(prune)
        except StopIteration:
            break
        n += 1
        if n > MAX_SUBSETS:
            raise BuildError(
                f"too many faces ({len(arr.faces)}) between the spec's roads to search; "
                "the roads may cross each other many times"
            )
        cand = _evaluate(arr, refs, faces)
        prune = False
        if cand is None:
            continue
        kinds = {k for k, _ in cand.problems}
        if not kinds:
            valid.append(cand)
            prune = True  # supersets of a valid union are never minimal
        elif kinds == {"compass"}:
            compass_only.append(cand)
        if best is None or len(cand.problems) < len(best.problems):
            best = cand
    minimal = _minimal(valid)
    if len(minimal) == 1:
        return _result(spec, refs, arr, minimal[0])
    if len(minimal) > 1:
        shown = "; ".join(
            f"({i}) {c.area / 1e6:.3f} km² around {_fmt(lonlat(*c.centre))}"
            for i, c in enumerate(sorted(minimal, key=lambda c: -c.area), start=1)
        )
        raise BuildError(
            f"ambiguous enclosure: {len(minimal)} separate areas are each bounded by all four "
            f"sides: {shown}; a road name may be used in more than one place"
        )
    if compass_only:
        cand = _minimal(compass_only)[0]
        msgs = [m for _, m in cand.problems]
        hint = ""
        wrong = {m.split(" ")[1] for m in msgs}
        if {"东", "西"} <= wrong or {"南", "北"} <= wrong:
            hint = "; are two sides swapped?"
        raise BuildError(
            "wrong compass side: " + "; ".join(msgs) + hint + f" (area around "
            f"{_fmt(lonlat(*cand.centre))})"
        )
    roads = "; ".join(f"{r.shown}" for r in refs)
    if best is None:
        raise BuildError(f"the sides do not close around any area (lines: {roads})")
    raise BuildError(
        f"no area is bounded by all four sides ({roads}); the closest enclosure, around "
        f"{_fmt(lonlat(*best.centre))}: " + "; ".join(m for _, m in best.problems)
    )


def _fmt(p: tuple[float, float]) -> str:
    return f"({p[0]:.6f}, {p[1]:.6f})"


def _minimal(cands: list[_Candidate]) -> list[_Candidate]:
    cands = sorted(cands, key=lambda c: len(c.faces))
    out: list[_Candidate] = []
    for c in cands:
        if not any(k.faces < c.faces for k in out):
            out.append(c)
    return out


def _result(spec: FourTo, refs: list[_Ref], arr: _Arrangement, cand: _Candidate) -> BuildResult:
    poly = shapely.union_all([arr.faces[f] for f in cand.faces])
    if poly.geom_type == "Polygon":
        poly = Polygon(poly.exterior)
    poly = orient(poly, 1.0)
    # each ring edge to one side: its own if unique, else the side of its neighbours
    side_of = {k: r.side for k, r in enumerate(refs)}
    assigned: list[str | None] = []
    for e in cand.ring:
        ds = {side_of[k] for k in arr.labels[e]}
        assigned.append(next(iter(ds)) if len(ds) == 1 else None)
    m = len(assigned)
    for i, e in enumerate(cand.ring):
        if assigned[i] is None:
            ds = {side_of[k] for k in arr.labels[e]}
            for j in (i - 1, (i + 1) % m):
                if assigned[j] in ds:
                    assigned[i] = assigned[j]
                    break
            else:
                assigned[i] = min(ds, key=ORDER.index) if ds else None
    lengths = dict.fromkeys(ORDER, 0.0)
    for e, d in zip(cand.ring, assigned, strict=True):
        if d is not None:
            lengths[d] += float(arr.lengths[e])
    sides = {
        d: SideReport([r.label for r in refs if r.side == d], round(lengths[d], 2)) for d in ORDER
    }
    within = tuple(d for d in ORDER if d not in spec.sides)
    return BuildResult(to_lonlat(poly), sides, float(poly.area), poly, within=within)


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
