"""Steps 3–4 of a four-to build: the spec's lines noded and polygonized, and the smallest
connected union of faces whose ring carries every side, contiguous and on its compass side.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from geo.boundaries.build_result import (
    LABEL_EPS,
    MIN_STRETCH_M,
    BuildError,
    BuildResult,
    SideReport,
    _Ref,
)
from geo.boundaries.fourto import (
    CHINESE,
    ORDER,
    FourTo,
)
from geo.boundaries.roads import (
    lonlat,
    node,
)
from geo.crs import to_lonlat

MAX_SUBSETS = 200_000
_OPPOSITE = {"east": "west", "west": "east", "north": "south", "south": "north"}
_COMPASS_WORD = {"east": "east", "west": "west", "north": "north", "south": "south"}


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
    """The candidate union ``faces`` with every reason it is not the area (none: it is), or
    None when its outer boundary is not one simple ring."""
    ring = _ring(arr, faces)
    if ring is None:
        return None
    idx = list(faces)
    area = float(arr.areas[idx].sum())
    centre = (arr.centroids[idx] * arr.areas[idx, None]).sum(axis=0) / area
    sides = {d: {k for k, r in enumerate(refs) if r.side == d} for d in ORDER}
    # a side closed by ``within`` only has to be on the ring: one boundary may close several
    checked = [d for d in ORDER if not any(refs[k].closing for k in sides[d])]
    problems = _missing_refs(arr, refs, ring)
    problems += _broken_sides(arr, ring, sides, checked)
    problems += _compass_problems(arr, refs, ring, sides, checked, centre)
    if len(checked) < len(ORDER):
        problems += _facing(arr, faces, ring, sides, checked)
    problems += _qualifier_problems(arr, refs, ring, faces)
    return _Candidate(faces, ring, problems, centre, area)


def _missing_refs(arr: _Arrangement, refs: list[_Ref], ring: list[int]) -> list[tuple[str, str]]:
    """Every ref contributes a stretch of the ring: a problem for each that does not."""
    problems = []
    for k, r in enumerate(refs):
        stretch = sum(arr.lengths[e] for e in ring if k in arr.labels[e])
        if stretch < MIN_STRETCH_M:
            problems.append(("missing", f"{r.shown} is not on the boundary"))
    return problems


def _broken_sides(
    arr: _Arrangement, ring: list[int], sides: dict[str, set[int]], checked: list[str]
) -> list[tuple[str, str]]:
    """Each checked side is one contiguous stretch of the ring: a problem for each that is not."""
    problems = []
    for d in checked:
        present = [bool(arr.labels[e] & sides[d]) for e in ring]
        runs = sum(1 for i in range(len(ring)) if present[i] and not present[i - 1])
        if all(present):
            runs = 1
        if runs > 1:
            problems.append(("contiguity", f"side {CHINESE[d]} is broken into {runs} stretches"))
    return problems


def _compass_problems(
    arr: _Arrangement,
    refs: list[_Ref],
    ring: list[int],
    sides: dict[str, set[int]],
    checked: list[str],
    centre: np.ndarray,
) -> list[tuple[str, str]]:
    """Each checked side lies on its compass side of the centre: a problem for each that does
    not, saying where it lies and by how much."""
    problems = []
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
    return problems


def _qualifier_problems(
    arr: _Arrangement, refs: list[_Ref], ring: list[int], faces: frozenset[int]
) -> list[tuple[str, str]]:
    """Area qualifiers: the qualifier says where the area lies from the boundary; a problem
    for each area on the wrong side."""
    problems = []
    for k, r in enumerate(refs):
        q = r.ref.qualifier
        if r.area is None or q is None:
            continue
        qd = {"东": "east", "南": "south", "西": "west", "北": "north"}[q]
        if qd not in (r.side, _OPPOSITE[r.side]):
            continue
        want_inside = qd == _OPPOSITE[r.side]
        if any(
            _area_inside(arr, faces, e, r.area) != want_inside for e in ring if k in arr.labels[e]
        ):
            where = "inside" if want_inside else "outside"
            problems.append(("qualifier", f"area {r.ref.name} must lie {where} the boundary"))
    return problems


def _area_inside(arr: _Arrangement, faces: frozenset[int], edge: int, area: BaseGeometry) -> bool:
    """Whether most of the candidate's face along ring ``edge`` lies in ``area``."""
    inner = next(f for f in arr.edge_faces[edge] if f in faces)
    face = arr.faces[inner]
    return face.intersection(area).area > 0.5 * face.area


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
    """The one minimal union of faces the refs enclose, as the build's result; otherwise a
    `BuildError` saying why (ambiguous, wrong compass side, or the closest attempt)."""
    arr = _arrange(refs)
    valid, compass_only, best = _search(arr, refs)
    minimal = _minimal(valid)
    if len(minimal) == 1:
        return _result(spec, refs, arr, minimal[0])
    raise _no_enclosure(refs, minimal, compass_only, best)


def _search(
    arr: _Arrangement, refs: list[_Ref]
) -> tuple[list[_Candidate], list[_Candidate], _Candidate | None]:
    """Every connected union of faces evaluated (supersets of a valid one pruned): the valid
    candidates, those that fail only the compass test, and the one with fewest problems."""
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
    return valid, compass_only, best


def _no_enclosure(
    refs: list[_Ref],
    minimal: list[_Candidate],
    compass_only: list[_Candidate],
    best: _Candidate | None,
) -> BuildError:
    """The error when the search found several minimal areas, or none (then the compass
    failures, or the closest enclosure, explain why)."""
    if len(minimal) > 1:
        shown = "; ".join(
            f"({i}) {c.area / 1e6:.3f} km² around {_fmt(lonlat(*c.centre))}"
            for i, c in enumerate(sorted(minimal, key=lambda c: -c.area), start=1)
        )
        return BuildError(
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
        return BuildError(
            "wrong compass side: " + "; ".join(msgs) + hint + f" (area around "
            f"{_fmt(lonlat(*cand.centre))})"
        )
    roads = "; ".join(f"{r.shown}" for r in refs)
    if best is None:
        return BuildError(f"the sides do not close around any area (lines: {roads})")
    return BuildError(
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
