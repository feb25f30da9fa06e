"""Split an industrial community into grids (网格) along its internal roads, balanced.

``propose_split(tables, community_id, count=K | per_grid=N, weight=...)`` returns a `Proposal`;
``apply_split(tables, proposal)`` returns new tables with the community's grids replaced and its
parks' and buildings' ``grid_id`` and micro-grid codes updated (nothing else changes).

How (all geometry in `geo.crs.METRIC_CRS`, EPSG:4549):

1. **Street blocks** (`street_blocks`): the community boundary and every road inside it — named
   roads as `RoadNetwork` merges them (pieces joined, dual carriageways collapsed), unnamed roads
   with their loose ends bridged to the nearest line within ``GAP_TOLERANCE_M`` — are noded and
   polygonized. Faces thinner than ``SLIVER_WIDTH_M`` on average or smaller than
   ``SLIVER_AREA_M2`` (a road drawn beside the boundary, a carriageway strip) are merged into the
   neighbour they share the longest edge with. The blocks tile the community exactly.
2. **Units**: blocks that one micro-grid (a park, or a building outside parks) overlaps are
   merged, so a micro-grid is never cut by a grid edge.
3. **Weights** per unit: enterprises (points inside), employees (their sum), or floor area
   (footprint area × floors of the buildings inside).
4. **Regionalisation** (`regionalise`) on the rook-contiguity graph of the units (shared edge
   ≥ 1 m): many seeded greedy region-growings (seeds spread apart by farthest-point sampling;
   the lightest region grows next, by the neighbour closest to its seed), each refined by
   boundary moves that keep every region contiguous, minimising
   ``log(max/min weight) + COMPACTNESS · mean(1 − Polsby–Popper)``. The best is kept; fixed seeds
   make it deterministic. (spopt's Max-P and SKATER were measured on the sample too: see
   ``benchmarks/bench_split.py``; they optimise attribute homogeneity or a floor, not balance,
   and came out less balanced.)

Pure: no I/O, tables in, tables out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geo.boundaries.roads import RoadNetwork, bridge_gaps, node
from geo.crs import to_lonlat, to_metric
from geo.errors import InvalidInput
from geo.grids import codes as codes_mod

Weight = Literal["enterprises", "employees", "floor_area"]
WEIGHTS: tuple[str, ...] = ("enterprises", "employees", "floor_area")
GAP_TOLERANCE_M = 2.0  # m: loose ends of unnamed roads this close to a line are joined to it
SLIVER_WIDTH_M = 12.0  # m: a face narrower than this on average (2·area/perimeter) is a sliver
SLIVER_AREA_M2 = 500.0
OVERLAP_M2 = 1.0  # m²: a micro-grid overlapping a block by more than this lies (partly) in it
MIN_SHARED_M = 1.0  # m of shared edge for two units to be neighbours
COMPACTNESS = 0.3  # weight of (1 − mean Polsby–Popper) against log(balance ratio)
RESTARTS = 48
SNAP_DEG = 1e-7  # ~1 cm: grid vertices this close to a community vertex become that vertex
SEED = 20240524


class SplitError(InvalidInput):
    """A split that cannot be made; the message says why and what to change."""


# --------------------------------------------------------------------------------------------
# Street blocks
# --------------------------------------------------------------------------------------------


def road_lines(roads: pd.DataFrame) -> list[BaseGeometry]:
    """All roads as metric lines: named ones merged by `RoadNetwork`, unnamed ones bridged."""
    if len(roads) == 0:
        return []
    names = roads["name"].astype(object).where(roads["name"].notna(), "")
    named_mask = names.map(lambda s: isinstance(s, str) and s.strip() != "").to_numpy(dtype=bool)
    net = RoadNetwork.from_frame(roads[named_mask])
    named = [p for g in net.lines.values() for p in shapely.get_parts(g)]
    unnamed_geoms = np.asarray(roads.geometry.to_numpy()[~named_mask], dtype=object)
    unnamed = [
        p
        for g in to_metric(unnamed_geoms)
        if g is not None
        for p in shapely.get_parts(g)
        if not p.is_empty and p.length > 0
    ]
    connectors = bridge_gaps(unnamed, [*unnamed, *named], GAP_TOLERANCE_M)
    return [*named, *unnamed, *connectors]


def street_blocks(boundary: BaseGeometry, lines: Sequence[BaseGeometry]) -> np.ndarray:
    """The street blocks of a metric polygon cut by metric ``lines``, slivers merged away.

    Blocks are returned in reading order (north→south, west→east); they tile ``boundary``.
    """
    if boundary.is_empty:
        raise SplitError("the community has an empty boundary")
    inside: list[BaseGeometry] = []
    if lines:
        # lines run on a little past the boundary so that they cross it, not stop short of it
        frame = boundary.buffer(5.0)
        tree = shapely.STRtree(list(lines))
        hits = tree.query(frame, predicate="intersects")
        clipped = shapely.intersection(np.asarray(lines, dtype=object)[hits], frame)
        inside = [g for g in clipped if not g.is_empty]
    # roads are noded among themselves with 1 mm snap rounding (near-touching ends meet), then
    # exactly with the boundary, so the outer edges keep the community's own vertices
    roads_noded = node(inside) if inside else shapely.MultiLineString()
    noded = shapely.union_all(np.asarray([boundary.boundary, roads_noded], dtype=object))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.area(faces) > 0]
    faces = faces[shapely.contains(boundary, shapely.point_on_surface(faces))]
    if len(faces) == 0:
        raise SplitError("the community boundary does not enclose an area")
    blocks = _merge_slivers(faces)
    return blocks[codes_mod.reading_order(blocks)]


def _shared_lengths(geoms: np.ndarray) -> dict[tuple[int, int], float]:
    """Length of shared boundary between each pair of touching polygons (i < j)."""
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if len(left) == 0:
        return {}
    common = shapely.intersection(shapely.boundary(geoms[left]), shapely.boundary(geoms[right]))
    lengths = shapely.length(common)
    return {
        (int(i), int(j)): float(n) for i, j, n in zip(left, right, lengths, strict=True) if n > 0
    }


def _merge_slivers(faces: np.ndarray) -> np.ndarray:
    """Merge thin or tiny faces into the neighbour with the longest shared edge."""
    groups = list(range(len(faces)))

    def find(i: int) -> int:
        while groups[i] != i:
            groups[i] = groups[groups[i]]
            i = groups[i]
        return i

    shared = _shared_lengths(faces)
    area = shapely.area(faces)
    width = 2 * area / np.maximum(shapely.length(faces), 1e-9)
    sliver = (width < SLIVER_WIDTH_M) | (area < SLIVER_AREA_M2)
    if sliver.all():
        return np.array([shapely.coverage_union_all(faces)], dtype=object)
    by_face: dict[int, list[tuple[float, int]]] = {}
    for (i, j), n in shared.items():
        by_face.setdefault(i, []).append((n, j))
        by_face.setdefault(j, []).append((n, i))
    # slivers join their best non-sliver neighbour (else their best neighbour), smallest first
    for i in sorted(np.flatnonzero(sliver), key=lambda k: (area[k], k)):
        options = sorted(by_face.get(int(i), []), key=lambda t: (-t[0], t[1]))
        if not options:
            continue
        solid = [j for _, j in options if not sliver[j]]
        target = solid[0] if solid else options[0][1]
        groups[find(int(i))] = find(target)
    labels = np.array([find(i) for i in range(len(faces))])
    return np.array(
        [_union(faces[labels == g]) for g in sorted(set(labels.tolist()))], dtype=object
    )


def _union(polys: np.ndarray) -> BaseGeometry:
    """Coverage union of exactly-noded polygons (falls back to a plain union)."""
    if len(polys) == 1:
        return polys[0]
    out = shapely.coverage_union_all(polys)
    if not out.is_valid:
        out = shapely.make_valid(shapely.union_all(polys), method="structure", keep_collapsed=False)
    return out


# --------------------------------------------------------------------------------------------
# Micro-grids
# --------------------------------------------------------------------------------------------


def microgrids(tables: Mapping[str, pd.DataFrame]) -> gpd.GeoDataFrame:
    """Micro-grids: every park, and every building outside parks (``id, kind, grid_id, code``).

    Buildings inside a park belong to the park's micro-grid and are not listed.
    """
    parks = tables["parks"]
    buildings = tables["buildings"]
    loose = buildings[buildings["park_id"].fillna("") == ""]
    cols = ["id", "grid_id", "code"]
    frame = pd.concat(
        [
            pd.DataFrame(parks[cols]).assign(kind="park", geometry=parks.geometry.to_numpy()),
            pd.DataFrame(loose[cols]).assign(kind="building", geometry=loose.geometry.to_numpy()),
        ],
        ignore_index=True,
    )
    return gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326")


def straddling(
    grids: pd.DataFrame, micro: pd.DataFrame, tolerance_m2: float = OVERLAP_M2
) -> list[dict[str, Any]]:
    """Micro-grids that straddle a grid edge: they overlap more than one grid (by more than
    ``tolerance_m2``). Each is ``{"id", "kind", "grids": [grid ids]}``. WGS84 input."""
    if len(grids) == 0 or len(micro) == 0:
        return []
    g = to_metric(np.asarray(grids.geometry.to_numpy(), dtype=object))
    m = to_metric(np.asarray(micro.geometry.to_numpy(), dtype=object))
    tree = shapely.STRtree(g)
    mi, gi = tree.query(m, predicate="intersects")
    areas = shapely.area(shapely.intersection(m[mi], g[gi]))
    hits: dict[int, list[int]] = {}
    for a, b, area in zip(mi, gi, areas, strict=True):
        if area > tolerance_m2:
            hits.setdefault(int(a), []).append(int(b))
    grid_ids = grids["id"].to_numpy()
    return [
        {
            "id": micro["id"].iloc[i],
            "kind": micro["kind"].iloc[i],
            "grids": sorted(grid_ids[js].tolist()),
        }
        for i, js in sorted(hits.items())
        if len(js) > 1
    ]


# --------------------------------------------------------------------------------------------
# Regionalisation
# --------------------------------------------------------------------------------------------


@dataclass
class Graph:
    """Units of a community: weights, areas, perimeters, centroids and shared edge lengths."""

    weights: np.ndarray
    area: np.ndarray
    perimeter: np.ndarray
    centroid: np.ndarray  # (n, 2)
    shared: np.ndarray  # (n, n) shared edge length, m
    neighbours: list[list[int]] = field(default_factory=list)

    @classmethod
    def of(cls, geoms: np.ndarray, weights: np.ndarray) -> Graph:
        n = len(geoms)
        shared = np.zeros((n, n))
        for (i, j), length in _shared_lengths(geoms).items():
            shared[i, j] = shared[j, i] = length
        neighbours = [np.flatnonzero(shared[i] >= MIN_SHARED_M).tolist() for i in range(n)]
        return cls(
            np.asarray(weights, dtype=float),
            shapely.area(geoms),
            shapely.length(geoms),
            shapely.get_coordinates(shapely.centroid(geoms)),
            shared,
            neighbours,
        )

    def __len__(self) -> int:
        return len(self.weights)

    def components(self) -> int:
        return len({_component(self, i) for i in range(len(self))})

    def score(self, labels: np.ndarray, k: int) -> float:
        """log(max/min weight) + COMPACTNESS · mean(1 − Polsby–Popper); lower is better."""
        sums = np.bincount(labels, weights=self.weights, minlength=k)
        ratio = (sums.max() + 1.0) / (sums.min() + 1.0)
        area = np.bincount(labels, weights=self.area, minlength=k)
        same = labels[:, None] == labels[None, :]
        inner = np.bincount(labels, weights=(self.shared * same).sum(axis=1), minlength=k)
        perim = np.bincount(labels, weights=self.perimeter, minlength=k) - inner
        pp = 4 * math.pi * area / np.maximum(perim, 1e-9) ** 2
        return math.log(ratio) + COMPACTNESS * float(np.mean(1.0 - pp))


def _component(graph: Graph, start: int) -> int:
    """Smallest unit index in the connected component of ``start`` (for counting)."""
    seen = {start}
    todo = [start]
    while todo:
        for j in graph.neighbours[todo.pop()]:
            if j not in seen:
                seen.add(j)
                todo.append(j)
    return min(seen)


def _connected(graph: Graph, members: set[int]) -> bool:
    if not members:
        return False
    start = next(iter(members))
    seen = {start}
    todo = [start]
    while todo:
        for j in graph.neighbours[todo.pop()]:
            if j in members and j not in seen:
                seen.add(j)
                todo.append(j)
    return len(seen) == len(members)


def _grow(graph: Graph, k: int, rng: np.random.Generator) -> np.ndarray | None:
    """One greedy region-growing from k spread-out seeds; None if some region could not grow."""
    n = len(graph)
    first = int(rng.integers(n))
    seeds = [first]
    dist = np.hypot(*(graph.centroid - graph.centroid[first]).T)
    while len(seeds) < k:
        # farthest-point sampling with a little jitter so restarts differ
        nxt = int(np.argmax(dist * rng.uniform(0.8, 1.0, n)))
        if nxt in seeds:
            nxt = int(next(i for i in np.argsort(-dist) if i not in seeds))
        seeds.append(nxt)
        dist = np.minimum(dist, np.hypot(*(graph.centroid - graph.centroid[nxt]).T))
    labels = np.full(n, -1)
    sums = np.zeros(k)
    for r, s in enumerate(seeds):
        labels[s] = r
        sums[r] = graph.weights[s]
    open_regions = set(range(k))
    while (labels < 0).any() and open_regions:
        r = min(open_regions, key=lambda q: (sums[q], q))
        members = np.flatnonzero(labels == r)
        frontier = sorted({j for i in members for j in graph.neighbours[i] if labels[j] < 0})
        if not frontier:
            open_regions.discard(r)
            continue
        seed_xy = graph.centroid[seeds[r]]
        j = min(frontier, key=lambda q: (float(np.hypot(*(graph.centroid[q] - seed_xy))), q))
        labels[j] = r
        sums[r] += graph.weights[j]
    if (labels < 0).any():
        return None
    return labels


def _refine(graph: Graph, labels: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Boundary moves (a unit to a neighbouring region) while the score improves."""
    labels = labels.copy()
    best = graph.score(labels, k)
    improved = True
    while improved:
        improved = False
        for u in range(len(graph)):
            a = labels[u]
            targets = sorted({int(labels[j]) for j in graph.neighbours[u]} - {int(a)})
            if not targets:
                continue
            rest = set(np.flatnonzero(labels == a).tolist()) - {u}
            if not _connected(graph, rest):
                continue
            for b in targets:
                labels[u] = b
                s = graph.score(labels, k)
                if s < best - 1e-12:
                    best = s
                    improved = True
                    break
                labels[u] = a
    return labels, best


def regionalise(graph: Graph, k: int, *, restarts: int = RESTARTS, seed: int = SEED) -> np.ndarray:
    """Labels 0…k-1 per unit: k contiguous regions, balanced and compact. Deterministic."""
    n = len(graph)
    if k < 1:
        raise SplitError("a community needs at least 1 grid")
    if k > n:
        raise SplitError(
            f"the community has only {n} street blocks (parks kept whole): at most {n} grids"
        )
    if graph.components() > 1:
        raise SplitError("the community's street blocks are not connected to each other")
    if k == 1:
        return np.zeros(n, dtype=int)
    best: tuple[float, np.ndarray] | None = None
    for r in range(restarts):
        rng = np.random.default_rng([seed, r])
        grown = _grow(graph, k, rng)
        if grown is None:
            continue
        labels, score = _refine(graph, grown, k)
        if best is None or score < best[0] - 1e-12:
            best = (score, labels)
    if best is None:
        raise SplitError(f"could not form {k} contiguous grids from {n} street blocks")
    return best[1]


def balance_ratio(values: Sequence[float] | np.ndarray) -> float | None:
    """max/min of per-grid weights (None when a grid has none: the ratio is unbounded)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0 or values.min() <= 0:
        return None
    return float(values.max() / values.min())


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------


def _point_owner(polys: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Index of the polygon covering each point (smallest index on a shared edge), -1 if none."""
    out = np.full(len(points), -1)
    if len(points) == 0 or len(polys) == 0:
        return out
    tree = shapely.STRtree(polys)
    pi, gi = tree.query(points, predicate="intersects")
    order = np.lexsort((gi, pi))
    pi, gi = pi[order], gi[order]
    first = np.ones(len(pi), dtype=bool)
    first[1:] = pi[1:] != pi[:-1]
    out[pi[first]] = gi[first]
    return out


def _largest_overlap(polys: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Index of the polygon each item overlaps most (-1 if none)."""
    out = np.full(len(items), -1)
    if len(items) == 0 or len(polys) == 0:
        return out
    tree = shapely.STRtree(polys)
    ii, gi = tree.query(items, predicate="intersects")
    area = shapely.area(shapely.intersection(items[ii], polys[gi]))
    best = np.zeros(len(items))
    for i, g, a in zip(ii, gi, area, strict=True):
        if a > best[i]:
            best[i], out[i] = a, g
    return out


def weigh(polys: np.ndarray, tables: Mapping[str, pd.DataFrame], weight: str) -> np.ndarray:
    """Per metric polygon: enterprise count, employees, or building floor area (m²)."""
    if weight not in WEIGHTS:
        raise SplitError(f"unknown weight {weight!r}: use one of {', '.join(WEIGHTS)}")
    out = np.zeros(len(polys))
    if weight == "floor_area":
        b = tables["buildings"]
        fp = to_metric(np.asarray(b.geometry.to_numpy(), dtype=object))
        floors = pd.to_numeric(b["floors"], errors="coerce").fillna(1).to_numpy(dtype=float)
        owner = _largest_overlap(polys, fp)
        ok = owner >= 0
        np.add.at(out, owner[ok], shapely.area(fp[ok]) * floors[ok])
        return out
    e = tables["enterprises"]
    pts = to_metric(np.asarray(e.geometry.to_numpy(), dtype=object))
    owner = _point_owner(polys, pts)
    ok = owner >= 0
    if weight == "enterprises":
        np.add.at(out, owner[ok], 1.0)
    else:
        emp = pd.to_numeric(e["employees"], errors="coerce").fillna(0).to_numpy(dtype=float)
        np.add.at(out, owner[ok], emp[ok])
    return out


# --------------------------------------------------------------------------------------------
# The proposal
# --------------------------------------------------------------------------------------------


@dataclass
class ProposedGrid:
    id: str
    name: str
    code: str
    status: Literal["kept", "new"]
    weight: float
    enterprises: int
    area_m2: float
    blocks: int
    geometry: BaseGeometry  # WGS84
    replaces: str | None = None  # id of the old grid whose code it keeps


@dataclass
class Proposal:
    """A split of one community: its new grids and how they compare with the current ones."""

    community_id: str
    weight: str
    count: int
    grids: list[ProposedGrid]
    current: list[dict[str, Any]]  # id, code, weight of the current grids
    retired: list[str]  # codes retired by this split (and before)
    blocks: int
    units: int
    micro_codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (grid, code)
    seconds: float = 0.0

    @property
    def ratio(self) -> float | None:
        return balance_ratio([g.weight for g in self.grids])

    @property
    def current_ratio(self) -> float | None:
        return balance_ratio([g["weight"] for g in self.current])

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (grid geometries as GeoJSON)."""
        return {
            "community": self.community_id,
            "weight": self.weight,
            "count": self.count,
            "blocks": self.blocks,
            "units": self.units,
            "balance": _ratio_dict([g.weight for g in self.grids]),
            "current": {
                "count": len(self.current),
                "balance": _ratio_dict([g["weight"] for g in self.current]),
                "grids": self.current,
            },
            "grids": [
                {
                    "id": g.id,
                    "name": g.name,
                    "code": g.code,
                    "status": g.status,
                    "replaces": g.replaces,
                    "weight": g.weight,
                    "enterprises": g.enterprises,
                    "area_m2": round(g.area_m2, 1),
                    "blocks": g.blocks,
                    "geometry": shapely.geometry.mapping(g.geometry),
                }
                for g in self.grids
            ],
            "retired": self.retired,
            "seconds": round(self.seconds, 3),
        }


def _ratio_dict(values: Sequence[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=float)
    ratio = balance_ratio(arr)
    return {
        "ratio": None if ratio is None else round(ratio, 4),
        "max": float(arr.max()) if len(arr) else None,
        "min": float(arr.min()) if len(arr) else None,
    }


def _community(tables: Mapping[str, pd.DataFrame], community_id: str) -> pd.Series:
    comms = tables["communities"]
    hit = comms[comms["id"] == community_id]
    if len(hit) == 0:
        known = ", ".join(f"{i} ({n})" for i, n in zip(comms["id"], comms["name"], strict=True))
        raise SplitError(f"no community {community_id!r}; known: {known}")
    return hit.iloc[0]


def find_community(tables: Mapping[str, pd.DataFrame], key: str) -> str:
    """The id of the community with this id, name, or short name (火炬 for 火炬产业社区)."""
    comms = tables["communities"]
    for column in ("id", "name"):
        hit = comms[comms[column] == key]
        if len(hit):
            return str(hit["id"].iloc[0])
    short = comms[comms["name"].str.startswith(key)] if key else comms.iloc[0:0]
    if len(short) == 1:
        return str(short["id"].iloc[0])
    return str(_community(tables, key)["id"])


def _theta(_: Any = None) -> float:
    return 0.0


@dataclass
class CommunityUnits:
    """A community's street blocks, the units (blocks merged around micro-grids), their weights
    and the community's micro-grids; geometries metric."""

    boundary: BaseGeometry
    blocks: np.ndarray
    unit_of_block: np.ndarray
    units: np.ndarray
    weights: np.ndarray
    micro: pd.DataFrame
    micro_m: np.ndarray


def community_units(
    tables: Mapping[str, pd.DataFrame], community_id: str, weight: str = "enterprises"
) -> CommunityUnits:
    """Blocks and units of a community, weighed (the input of `regionalise`)."""
    comm = _community(tables, community_id)
    boundary = to_metric(comm.geometry)
    blocks = street_blocks(boundary, _nearby_lines(tables["roads"], comm.geometry))
    micro = microgrids(tables)
    micro_m = to_metric(np.asarray(micro.geometry.to_numpy(), dtype=object))
    inside = shapely.contains(boundary, shapely.point_on_surface(micro_m))
    micro, micro_m = micro[inside].reset_index(drop=True), micro_m[inside]
    unit_of_block = _merge_by_micro(blocks, micro_m)
    n_units = int(unit_of_block.max()) + 1
    units = np.array([_union(blocks[unit_of_block == u]) for u in range(n_units)], dtype=object)
    weights = weigh(units, tables, weight)
    return CommunityUnits(boundary, blocks, unit_of_block, units, weights, micro, micro_m)


def propose_split(
    tables: Mapping[str, pd.DataFrame],
    community_id: str,
    *,
    count: int | None = None,
    per_grid: float | None = None,
    weight: str = "enterprises",
    restarts: int = RESTARTS,
    seed: int = SEED,
) -> Proposal:
    """Propose ``count`` grids (or about ``per_grid`` of the weight per grid) for a community."""
    import time

    t0 = time.perf_counter()
    if (count is None) == (per_grid is None):
        raise SplitError("give either a grid count or a weight per grid, not both")
    if weight not in WEIGHTS:
        raise SplitError(f"unknown weight {weight!r}: use one of {', '.join(WEIGHTS)}")
    comm = _community(tables, community_id)
    cu = community_units(tables, community_id, weight)
    blocks, unit_of_block, units, weights = cu.blocks, cu.unit_of_block, cu.units, cu.weights
    micro, micro_m, n_units = cu.micro, cu.micro_m, len(cu.units)
    total = float(weights.sum())
    if count is None:
        if per_grid is None or per_grid <= 0:
            raise SplitError("the weight per grid must be positive")
        count = max(1, round(total / per_grid))
        count = min(count, n_units)
    graph = Graph.of(units, weights)
    labels = regionalise(graph, int(count), restarts=restarts, seed=seed)

    geoms = np.array([_union(units[labels == r]) for r in range(count)], dtype=object)
    reg_weights = np.bincount(labels, weights=weights, minlength=count)
    ent = weigh(geoms, tables, "enterprises") if weight != "enterprises" else reg_weights
    n_blocks = np.bincount(unit_of_block, minlength=n_units)
    blocks_per = np.bincount(labels, weights=n_blocks, minlength=count).astype(int)

    # current grids and codes
    grids = tables["grids"]
    old = grids[grids["community_id"] == community_id].reset_index(drop=True)
    old_m = to_metric(np.asarray(old.geometry.to_numpy(), dtype=object))
    current = [
        {"id": i, "code": c, "weight": float(w)}
        for i, c, w in zip(old["id"], old["code"], weigh(old_m, tables, weight), strict=True)
    ]
    streets = tables["streets"]
    street_code = streets.loc[streets["id"] == comm["street_id"], "code"]
    if len(street_code) == 0:
        raise SplitError(f"community {community_id!r} refers to no street {comm['street_id']!r}")
    prefix = codes_mod.community_prefix(str(street_code.iloc[0]), str(comm["code"]))
    retired_before = codes_mod.parse_retired(comm.get("retired_grids"))
    assignment = codes_mod.assign_grid_codes(
        list(old["code"]), old_m, geoms, prefix, retired_before, _theta()
    )
    order = sorted(range(count), key=lambda j: assignment.codes[j])
    used_ids = set(grids["id"]) - set(old["id"])
    short = str(comm["name"]).removesuffix("产业社区")
    # back to lon/lat, with the community's own vertices where the grids meet its boundary
    lonlat = shapely.snap(to_lonlat(geoms), comm.geometry, SNAP_DEG)
    # "structure" keeps polygons polygonal (linework would add collapsed slivers as lines)
    fixed = shapely.make_valid(lonlat, method="structure", keep_collapsed=False)
    lonlat = np.where(shapely.is_valid(lonlat), lonlat, fixed)
    proposed: list[ProposedGrid] = []
    for j in order:
        code = assignment.codes[j]
        seq = int(code[-3:])
        k = assignment.kept[j]
        if k is not None:
            gid, name, status, replaces = old["id"][k], old["name"][k], "kept", old["id"][k]
        else:
            gid = f"{community_id}-G{seq:02d}"
            while gid in used_ids or gid in set(old["id"]):
                gid += "'"
            name, status, replaces = f"{short}第{seq}网格", "new", None
        used_ids.add(gid)
        proposed.append(
            ProposedGrid(
                gid,
                name,
                code,
                status,
                float(reg_weights[j]),
                int(ent[j]),
                float(shapely.area(geoms[j])),
                int(blocks_per[j]),
                lonlat[j],
                replaces,
            )
        )
    proposal = Proposal(
        community_id,
        weight,
        int(count),
        proposed,
        current,
        assignment.retired,
        len(blocks),
        n_units,
    )
    proposal.micro_codes = _micro_codes(micro, micro_m, proposal, geoms, order)
    proposal.seconds = time.perf_counter() - t0
    return proposal


def _nearby_lines(roads: pd.DataFrame, community: BaseGeometry) -> list[BaseGeometry]:
    """Road lines (metric) near a community: roads whose box meets its box, plus a margin."""
    minx, miny, maxx, maxy = community.bounds
    pad = 0.01  # degrees (~1 km): keeps the pieces a junction or a gap needs
    box = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    near = roads[shapely.intersects(np.asarray(roads.geometry.to_numpy(), dtype=object), box)]
    return road_lines(near)


def _merge_by_micro(blocks: np.ndarray, micro: np.ndarray) -> np.ndarray:
    """Unit label per block: blocks a micro-grid overlaps (> OVERLAP_M2) share a unit."""
    parent = list(range(len(blocks)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if len(micro):
        tree = shapely.STRtree(blocks)
        mi, bi = tree.query(micro, predicate="intersects")
        area = shapely.area(shapely.intersection(micro[mi], blocks[bi]))
        by_micro: dict[int, list[int]] = {}
        for m, b, a in zip(mi, bi, area, strict=True):
            if a > OVERLAP_M2:
                by_micro.setdefault(int(m), []).append(int(b))
        for bs in by_micro.values():
            root = find(bs[0])
            for b in bs[1:]:
                parent[find(b)] = root
    roots = [find(i) for i in range(len(blocks))]
    relabel = {r: n for n, r in enumerate(dict.fromkeys(roots))}
    return np.array([relabel[r] for r in roots])


def _micro_codes(
    micro: pd.DataFrame,
    micro_m: np.ndarray,
    proposal: Proposal,
    geoms: np.ndarray,
    order: list[int],
) -> dict[str, tuple[str, str]]:
    """New (grid id, micro-grid code) per micro-grid of the community.

    A micro-grid that stays in a grid keeping its code keeps its own code; the others are
    numbered in reading order after the highest sequence present in their grid.
    """
    owner_pos = _largest_overlap(geoms, micro_m)  # index into geoms
    by_geom = dict(zip(order, proposal.grids, strict=True))
    out: dict[str, tuple[str, str]] = {}
    for j, grid in by_geom.items():
        mine = np.flatnonzero(owner_pos == j)
        keep = [
            i
            for i in mine
            if isinstance(micro["code"].iloc[i], str)
            and codes_mod.sequence(micro["code"].iloc[i], grid.code) is not None
            and micro["grid_id"].iloc[i] == grid.replaces
        ]
        for i in keep:
            out[micro["id"].iloc[i]] = (grid.id, micro["code"].iloc[i])
        highest = codes_mod.highest_issued(grid.code, [micro["code"].iloc[i] for i in keep])
        rest = [i for i in mine if i not in set(keep)]
        for i in np.asarray(rest, dtype=int)[codes_mod.reading_order(micro_m[rest])]:
            highest += 1
            out[micro["id"].iloc[i]] = (grid.id, codes_mod.make_code(grid.code, highest))
    return out


def apply_split(tables: Mapping[str, pd.DataFrame], proposal: Proposal) -> dict[str, pd.DataFrame]:
    """New tables: the community's grids replaced, its micro-grids re-pointed and re-coded.

    Parks and buildings outside parks get their new ``grid_id`` and ``code``; buildings inside a
    park follow their park's grid. The community's retired codes record is updated when the
    schema has a ``retired_grids`` field. Every other row is untouched.
    """
    out = {name: frame.copy() for name, frame in tables.items()}
    cid = proposal.community_id
    grids = out["grids"]
    keep = grids[grids["community_id"] != cid]
    new = gpd.GeoDataFrame(
        {
            "id": [g.id for g in proposal.grids],
            "name": [g.name for g in proposal.grids],
            "community_id": [cid] * len(proposal.grids),
            "code": [g.code for g in proposal.grids],
        },
        geometry=[g.geometry for g in proposal.grids],
        crs=grids.crs or "EPSG:4326",
    )
    both = pd.concat([keep, new[grids.columns]], ignore_index=True)
    out["grids"] = gpd.GeoDataFrame(both, geometry="geometry", crs=grids.crs or "EPSG:4326")
    out["grids"] = out["grids"].sort_values("id", kind="stable").reset_index(drop=True)

    moves = proposal.micro_codes
    parks = out["parks"]
    mask = parks["id"].isin(moves)
    parks.loc[mask, "grid_id"] = parks.loc[mask, "id"].map(lambda i: moves[i][0])
    parks.loc[mask, "code"] = parks.loc[mask, "id"].map(lambda i: moves[i][1])
    park_grid = dict(zip(parks["id"], parks["grid_id"], strict=True))
    b = out["buildings"]
    loose = b["id"].isin(moves)
    b.loc[loose, "grid_id"] = b.loc[loose, "id"].map(lambda i: moves[i][0])
    b.loc[loose, "code"] = b.loc[loose, "id"].map(lambda i: moves[i][1])
    in_park = b["park_id"].fillna("").isin(set(parks.loc[mask, "id"]))
    b.loc[in_park, "grid_id"] = b.loc[in_park, "park_id"].map(park_grid)

    comms = out["communities"]
    if "retired_grids" in comms.columns:
        row = comms["id"] == cid
        comms.loc[row, "retired_grids"] = codes_mod.format_retired(proposal.retired)
    return out
