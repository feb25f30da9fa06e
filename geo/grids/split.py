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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geo.crs import to_lonlat, to_metric
from geo.grids import codes as codes_mod
from geo.grids.blocks import (
    GAP_TOLERANCE_M,
    OVERLAP_M2,
    SLIVER_AREA_M2,
    SLIVER_WIDTH_M,
    SplitError,
    _union,
    microgrids,
    road_lines,
    straddling,
    street_blocks,
)
from geo.grids.regions import (
    COMPACTNESS,
    MIN_SHARED_M,
    RESTARTS,
    SEED,
    Graph,
    balance_ratio,
    regionalise,
)

Weight = Literal["enterprises", "employees", "floor_area"]
WEIGHTS: tuple[str, ...] = ("enterprises", "employees", "floor_area")
SNAP_DEG = 1e-7  # ~1 cm: grid vertices this close to a community vertex become that vertex


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
    """One grid of a proposal: id, name and code (kept from an old grid or new), its weight,
    enterprises, area, blocks and WGS84 geometry."""

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
    notes: list[str] = field(default_factory=list)  # why the count is not what was asked

    @property
    def ratio(self) -> float | None:
        """The balance ratio (max/min weight) of the proposed grids."""
        return balance_ratio([g.weight for g in self.grids])

    @property
    def current_ratio(self) -> float | None:
        """The balance ratio of the community's current grids."""
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
            "notes": list(self.notes),
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
    count = _grid_count(count, per_grid, float(cu.weights.sum()), len(cu.units))
    notes = _count_notes(community_id, weight, per_grid, float(cu.weights.sum()), count, cu)
    labels = regionalise(Graph.of(cu.units, cu.weights), count, restarts=restarts, seed=seed)
    regions = _Regions.of(cu, labels, count, tables, weight)
    old, old_m, current = _current_grids(tables, community_id, weight)
    assignment = _assign_codes(tables, community_id, comm, (old, old_m), regions.geoms)
    order = sorted(range(count), key=lambda j: assignment.codes[j])
    proposed = _proposed_grids(tables, community_id, comm, old, (regions, assignment, order))
    proposal = Proposal(
        community_id,
        weight,
        count,
        proposed,
        current,
        assignment.retired,
        len(cu.blocks),
        len(cu.units),
    )
    proposal.micro_codes = _micro_codes(cu.micro, cu.micro_m, proposal, regions.geoms, order)
    proposal.seconds = time.perf_counter() - t0
    proposal.notes = notes
    return proposal


def _count_notes(
    community_id: str,
    weight: str,
    per_grid: float | None,
    total: float,
    count: int,
    cu: CommunityUnits,
) -> list[str]:
    """Why a split by weight per grid makes fewer grids than the weight asks for: a grid is at
    least one unit (a street block, or blocks merged around a park or building), so a community
    of N units has at most N grids."""
    if per_grid is None or per_grid <= 0:
        return []
    wanted = max(1, round(total / per_grid))
    if wanted <= count:
        return []
    return [
        f"{total:,.0f} {weight} at about {per_grid:g} per grid would make {wanted} grids, but "
        f"{community_id} has only {len(cu.units)} units (its {len(cu.blocks)} street blocks, "
        "merged where a park or building straddles them) and a grid is at least one unit: "
        f"capped at {count} grids (about {total / count:,.0f} {weight} each). For smaller "
        f"grids, add the roads inside {community_id} (geo import roads …) so that it has more "
        "street blocks"
    ]


def _grid_count(count: int | None, per_grid: float | None, total: float, n_units: int) -> int:
    """The number of grids: ``count``, or the total weight over ``per_grid`` (at least one, at
    most one per unit)."""
    if count is None:
        if per_grid is None or per_grid <= 0:
            raise SplitError("the weight per grid must be positive")
        count = max(1, round(total / per_grid))
        count = min(count, n_units)
    return int(count)


@dataclass
class _Regions:
    """The regions of a split (metric geometry), with their weight, enterprises and blocks."""

    geoms: np.ndarray
    weights: np.ndarray
    enterprises: np.ndarray
    blocks: np.ndarray

    @classmethod
    def of(
        cls,
        cu: CommunityUnits,
        labels: np.ndarray,
        count: int,
        tables: Mapping[str, pd.DataFrame],
        weight: str,
    ) -> _Regions:
        """The ``count`` regions that ``labels`` (a region per unit) make of ``cu``'s units."""
        units, weights, n_units = cu.units, cu.weights, len(cu.units)
        geoms = np.array([_union(units[labels == r]) for r in range(count)], dtype=object)
        reg_weights = np.bincount(labels, weights=weights, minlength=count)
        ent = weigh(geoms, tables, "enterprises") if weight != "enterprises" else reg_weights
        n_blocks = np.bincount(cu.unit_of_block, minlength=n_units)
        blocks_per = np.bincount(labels, weights=n_blocks, minlength=count).astype(int)
        return cls(geoms, reg_weights, ent, blocks_per)


def _current_grids(
    tables: Mapping[str, pd.DataFrame], community_id: str, weight: str
) -> tuple[pd.DataFrame, np.ndarray, list[dict[str, Any]]]:
    """The community's current grids, their metric geometry, and their id, code and weight
    for the summary."""
    grids = tables["grids"]
    old = grids[grids["community_id"] == community_id].reset_index(drop=True)
    old_m = to_metric(np.asarray(old.geometry.to_numpy(), dtype=object))
    current = [
        {"id": i, "code": c, "weight": float(w)}
        for i, c, w in zip(old["id"], old["code"], weigh(old_m, tables, weight), strict=True)
    ]
    return old, old_m, current


def _assign_codes(
    tables: Mapping[str, pd.DataFrame],
    community_id: str,
    comm: pd.Series,
    current: tuple[pd.DataFrame, np.ndarray],
    geoms: np.ndarray,
) -> codes_mod.CodeAssignment:
    """Grid codes for the new regions: old codes kept where a region replaces an old grid,
    the others numbered after the community's codes issued so far (retired ones included)."""
    old, old_m = current
    streets = tables["streets"]
    street_code = streets.loc[streets["id"] == comm["street_id"], "code"]
    if len(street_code) == 0:
        raise SplitError(f"community {community_id!r} refers to no street {comm['street_id']!r}")
    prefix = codes_mod.community_prefix(str(street_code.iloc[0]), str(comm["code"]))
    retired_before = codes_mod.parse_retired(comm.get("retired_grids"))
    return codes_mod.assign_grid_codes(
        list(old["code"]), old_m, geoms, prefix, retired_before, _theta()
    )


def _proposed_grids(
    tables: Mapping[str, pd.DataFrame],
    community_id: str,
    comm: pd.Series,
    old: pd.DataFrame,
    made: tuple[_Regions, codes_mod.CodeAssignment, list[int]],
) -> list[ProposedGrid]:
    """The proposed grids in code order: kept grids keep their id and name; new ones get
    ``<community>-G<seq>`` (primed while taken) and ``<short name>第<seq>网格``."""
    regions, assignment, order = made
    used_ids = set(tables["grids"]["id"]) - set(old["id"])
    short = str(comm["name"]).removesuffix("产业社区")
    lonlat = _snapped_lonlat(regions.geoms, comm.geometry)
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
                float(regions.weights[j]),
                int(regions.enterprises[j]),
                float(shapely.area(regions.geoms[j])),
                int(regions.blocks[j]),
                lonlat[j],
                replaces,
            )
        )
    return proposed


def _snapped_lonlat(geoms: np.ndarray, community: BaseGeometry) -> np.ndarray:
    """Metric grids back to lon/lat, with the community's own vertices where the grids meet its
    boundary, repaired where that made them invalid."""
    lonlat = shapely.snap(to_lonlat(geoms), community, SNAP_DEG)
    # "structure" keeps polygons polygonal (linework would add collapsed slivers as lines)
    fixed = shapely.make_valid(lonlat, method="structure", keep_collapsed=False)
    return np.where(shapely.is_valid(lonlat), lonlat, fixed)


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
    schema has a ``retired_grids`` field. Every other row is untouched, and every other table
    is ``tables``' own frame (a store writes only those it changed).
    """
    out = dict(tables)
    for name in ("communities", "grids", "parks", "buildings"):
        out[name] = tables[name].copy()
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


__all__ = [
    "COMPACTNESS",
    "GAP_TOLERANCE_M",
    "MIN_SHARED_M",
    "OVERLAP_M2",
    "RESTARTS",
    "SEED",
    "SLIVER_AREA_M2",
    "SLIVER_WIDTH_M",
    "SNAP_DEG",
    "WEIGHTS",
    "CommunityUnits",
    "Graph",
    "Proposal",
    "ProposedGrid",
    "SplitError",
    "Weight",
    "apply_split",
    "balance_ratio",
    "community_units",
    "find_community",
    "microgrids",
    "propose_split",
    "regionalise",
    "road_lines",
    "straddling",
    "street_blocks",
    "weigh",
]
