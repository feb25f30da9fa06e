"""Step 2 of a four-to build: loose ends bridged or joined to a dual road's midline, ends
extended (``extend_m``) to the side they must meet, and consecutive sides checked to touch,
with the ``--extend-m`` a gap would need suggested.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import shapely
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from geo.boundaries.build_result import BuildError, _Ref
from geo.boundaries.fourto import (
    CHINESE,
    ORDER,
    FourTo,
)
from geo.boundaries.roads import (
    GRID,
    Extension,
    RoadNetwork,
    bridge_gaps,
    extend_end,
    lonlat,
    loose_ends,
    meet_ends,
)

SUGGEST_MAX_M = 2000.0  # m: how far a road end is followed to suggest an ``extend_m``


def _parts(geom: BaseGeometry) -> list[LineString]:
    return [p for p in shapely.get_parts(geom) if p.geom_type == "LineString" and not p.is_empty]


def _bridge(refs: list[_Ref], network: RoadNetwork, tol: float) -> None:
    """Give each ref's loose ends a connector to the nearby lines of other refs."""
    extra: dict[int, list[LineString]] = {}
    _junction_connectors(refs, tol, extra)
    _midline_connectors(refs, network, tol, extra)
    for k, conns in extra.items():
        refs[k].geom = shapely.union_all([refs[k].geom, *conns])


def _junction_connectors(refs: list[_Ref], tol: float, extra: dict[int, list[LineString]]) -> None:
    """A line end near another ref's line (junction gaps) gets a connector, added to ``extra``
    under the index of its ref."""
    lines: list[LineString] = []
    owner: list[int] = []
    for k, r in enumerate(refs):
        parts = _parts(r.geom)
        lines += parts
        owner += [k] * len(parts)
    geoms = [r.geom for r in refs]
    for i, line in enumerate(lines):
        others = [g if j != owner[i] else shapely.Point() for j, g in enumerate(geoms)]
        for c in bridge_gaps([line], [shapely.Point(), *others], tol):
            extra.setdefault(owner[i], []).append(c)


def _midline_connectors(
    refs: list[_Ref], network: RoadNetwork, tol: float, extra: dict[int, list[LineString]]
) -> None:
    """A line ending at one carriageway of another ref's dual road is joined to its midline;
    the connectors are added to ``extra`` under the index of the line's ref."""
    for k, r in enumerate(refs):
        for line in _parts(r.geom):
            xy = shapely.get_coordinates(line)
            for end in (xy[0], xy[-1]):
                p = shapely.Point(end)
                joins = [
                    shapely.shortest_line(p, other.geom)
                    for j, other in enumerate(refs)
                    if j != k and _ends_at_carriageway(line, p, other, network, tol)
                ]
                if joins:
                    extra.setdefault(k, []).extend(joins)


def _ends_at_carriageway(
    line: LineString, end: shapely.Point, other: _Ref, network: RoadNetwork, tol: float
) -> bool:
    """Whether ``line``'s ``end`` lies at a carriageway of road ref ``other`` without ``line``
    crossing ``other`` near that end (a crossing within 60 m needs no connector)."""
    if other.ref.kind != "road":
        return False
    strands = network.carriageways.get(other.ref.name, [])
    if not any(s.distance(end) <= tol for s in strands):
        return False
    crossing = line.intersection(other.geom)
    return crossing.is_empty or crossing.distance(end) > 60.0


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
