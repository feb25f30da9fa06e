"""Step 1 of a four-to build: every ref looked up as a road of the network or a named area
(exact name, then its 路/大道/街 variants or the roads a bare name begins), areas snapped onto
the spec's roads; unknown names fail with the closest names.
"""

from __future__ import annotations

import re

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geo.boundaries.build_result import WITHIN, BuildError, _Ref
from geo.boundaries.fourto import (
    CHINESE,
    ORDER,
    ROAD_SUFFIXES,
    FourTo,
    Ref,
)
from geo.boundaries.roads import (
    RoadNetwork,
    suggest_names,
)

_AREA_NAME_DROP = ("区块", "地块", "用地", "地界", "边界", "红线")
_STEM_RE = re.compile("(大道|大街|路|街|道)$")


def _area_key(name: str) -> str:
    for drop in _AREA_NAME_DROP:
        if name.endswith(drop) and len(name) > len(drop):
            return name[: -len(drop)]
    return name


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
