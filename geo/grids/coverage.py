"""Coverage of an area by its children, and the 一长二员 teams of the building micro-grids.

Pure: takes the atlas (an in-memory snapshot) and returns plain dicts and frames; no I/O.

- An area is the district (the union of the streets, holes kept as gaps), a street, a community
  or a grid; its children are streets, communities, grids or micro-grids (parks and the
  buildings outside parks). Children come from the attribute hierarchy (``street_id``,
  ``community_id``, ``grid_id``), exactly as the atlas constrains ownership.
- Areas in m² are computed in EPSG:4549. Overlaps are the pairwise intersections of children,
  gaps the parts of the area outside every child; pieces smaller than ``min_area_m2`` are
  slivers of floating-point noise and are not reported.
- Enterprises belong to the cells that own their point in the atlas (`Atlas.enterprises`).
- Teams: officers serve buildings (``building_ids``); a building micro-grid (a building outside
  every park) needs every role of `TEAM_ROLES[kind]`. Buildings inside parks need no team.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from geo.atlas import Atlas
from geo.crs import to_lonlat, to_metric
from geo.errors import NotFound
from geo.grids.blocks import straddling
from geo.model import COUNTY_CODE, TEAM_ROLES

LEVELS = ("district", "street", "community", "grid")
CHILD = {"district": "street", "street": "community", "community": "grid", "grid": "microgrid"}
_PARENT_KEY = {"community": "street_id", "grid": "community_id", "microgrid": "grid_id"}


class UnknownAreaError(NotFound):
    """No area of that level has that id; the message says what exists."""


# -- geometry helpers ------------------------------------------------------------------------
def _metric(geoms: Any) -> NDArray[np.object_]:
    """WGS84 geometries → EPSG:4549 (metres), as an array."""
    return to_metric(np.asarray(geoms, dtype=object))


def first_container(
    lon: NDArray[np.float64], lat: NDArray[np.float64], polygons: Any
) -> NDArray[np.int64]:
    """Position of the polygon holding each point (the lowest position on ties), else -1."""
    polys = np.asarray(polygons, dtype=object)
    out = np.full(len(lon), -1, dtype=np.int64)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not len(polys) or not ok.any():
        return out
    pts = shapely.points(lon[ok], lat[ok])
    hit_pt, hit_poly = shapely.STRtree(polys).query(pts, predicate="intersects")
    best = np.full(len(pts), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best, hit_pt, hit_poly)
    sub = np.where(best == np.iinfo(np.int64).max, -1, best)
    out[np.flatnonzero(ok)] = sub
    return out


# -- teams -------------------------------------------------------------------------------------
def officer_buildings(officers: pd.DataFrame) -> pd.DataFrame:
    """One row per (officer, building) served: ``officer_id, building_id`` (blank ids dropped)."""
    ids = officers["building_ids"].fillna("").astype(str).str.split(";")
    pairs = pd.DataFrame({"officer_id": officers["id"].to_numpy(), "building_id": ids.to_numpy()})
    pairs = pairs.explode("building_id")
    pairs["building_id"] = pairs["building_id"].str.strip()
    pairs = pairs[pairs["building_id"].fillna("") != ""]
    return pairs.drop_duplicates().reset_index(drop=True)


def building_teams(buildings: pd.DataFrame, officers: pd.DataFrame) -> pd.DataFrame:
    """Per building (indexed by id): ``kind, in_park, officer_ids, missing_roles, wrong_roles,
    complete`` — complete when every role of its kind is held (buildings in parks need none)."""
    pairs = officer_buildings(officers).merge(
        officers[["id", "role"]].rename(columns={"id": "officer_id"}), on="officer_id"
    )
    kind = buildings.set_index("id")["kind"]
    pairs = pairs[pairs["building_id"].isin(kind.index)]
    pairs = pairs.assign(kind=kind.reindex(pairs["building_id"]).to_numpy())
    held = pairs.groupby("building_id")["role"].agg(lambda r: set(r))
    team = pairs.groupby("building_id")["officer_id"].agg(lambda r: sorted(r))
    out = pd.DataFrame(
        {
            "name": buildings["name"].to_numpy(),
            "kind": buildings["kind"].to_numpy(),
            "grid_id": buildings["grid_id"].to_numpy(),
            "in_park": buildings["park_id"].fillna("").astype(str).ne("").to_numpy(),
        },
        index=pd.Index(buildings["id"].to_numpy(), name="id"),
    )
    out["officer_ids"] = team.reindex(out.index).apply(lambda v: v if isinstance(v, list) else [])
    roles = held.reindex(out.index).apply(lambda v: v if isinstance(v, set) else set())
    needed = out["kind"].map(lambda k: TEAM_ROLES.get(k, ()))
    out["missing_roles"] = [
        [] if park else [r for r in need if r not in have]
        for park, need, have in zip(out["in_park"], needed, roles, strict=True)
    ]
    out["wrong_roles"] = [
        sorted(have - set(need)) for need, have in zip(needed, roles, strict=True)
    ]
    out["complete"] = out["missing_roles"].str.len().eq(0)
    return out


# -- the area and its children ---------------------------------------------------------------
@dataclass(frozen=True)
class Area:
    """One area of the hierarchy (metric geometry) with its children and their geometries."""

    level: str
    id: str
    name: str
    code: str | None
    geometry: Any  # EPSG:4549
    children: pd.DataFrame  # the child level's rows (id, name, code, [kind]), with `pos`
    child_geoms: NDArray[np.object_]  # EPSG:4549
    building_grids: NDArray[np.bool_] | None = None


def _chain(atlas: Atlas) -> dict[str, NDArray[np.int64]]:
    """Positions of each cell's street, community and grid (attribute hierarchy)."""
    lv = atlas.levels
    streets = pd.Index(lv["street"].table["id"])
    comms = pd.Index(lv["community"].table["id"])
    grids = pd.Index(lv["grid"].table["id"])
    comm_street = streets.get_indexer(lv["community"].table["street_id"].fillna(""))
    grid_comm = comms.get_indexer(lv["grid"].table["community_id"].fillna(""))
    grid_street = np.where(grid_comm >= 0, np.append(comm_street, -1)[grid_comm], -1)
    return {
        "comm_street": comm_street,
        "grid_comm": grid_comm,
        "grid_street": grid_street,
        "grids": grids,
    }


def find_area(atlas: Atlas, level: str, area_id: str | None) -> Area:
    """The area of ``level`` with ``area_id`` (id or code) and its children, in metres."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}: use one of {', '.join(LEVELS)}")
    child_level = CHILD[level]
    child_table = atlas.levels[child_level].table
    if level == "district":
        streets = _metric(atlas.levels["street"].table.geometry)
        union = shapely.union_all(streets)
        shells = shapely.polygons(shapely.get_exterior_ring(shapely.get_parts(union)))
        geom = shapely.union_all(shells) if len(shells) else shapely.Polygon()
        children = child_table.assign(pos=np.arange(len(child_table)))
        return Area(level, COUNTY_CODE, "district", COUNTY_CODE, geom, children, streets)
    table = atlas.levels[level].table
    key = (area_id or "").strip()
    hit = np.flatnonzero((table["id"] == key).to_numpy() | (table["code"] == key).to_numpy())
    if not key or not len(hit):
        known = ", ".join(table["id"].head(8))
        raise UnknownAreaError(
            f"no {level} with id or code {key!r}; "
            + (f"known {level} ids include {known}" if known else f"the store has no {level} yet")
        )
    row = table.iloc[int(hit[0])]
    mask = (child_table[_PARENT_KEY[child_level]] == row["id"]).to_numpy()
    children = child_table[mask].assign(pos=np.flatnonzero(mask))
    geom = shapely.make_valid(_metric([row.geometry])[0])
    child_geoms = shapely.make_valid(_metric(children.geometry))
    return Area(level, row["id"], row["name"], row["code"] or None, geom, children, child_geoms)


def find_any(atlas: Atlas, area_id: str | None) -> tuple[str, str | None]:
    """The level of an id or code of a street, community or grid (None: the district)."""
    if not area_id or area_id == COUNTY_CODE:
        return "district", None
    for level in ("street", "community", "grid"):
        t = atlas.levels[level].table
        if ((t["id"] == area_id) | (t["code"] == area_id)).any():
            return level, area_id
    raise UnknownAreaError(
        f"{area_id!r} is not the id or code of a street, community or grid; "
        f"streets are {', '.join(atlas.levels['street'].table['id'])}"
    )


# -- the report ------------------------------------------------------------------------------
def _pieces(
    geoms: NDArray[np.object_], min_area: float, geometry: bool, limit: int
) -> dict[str, Any]:
    """Areas, lon/lat of a point inside each, and (optionally) GeoJSON of polygon pieces."""
    parts = shapely.get_parts(shapely.make_valid(geoms)) if len(geoms) else geoms
    if len(parts):
        parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))]  # polygons only
    areas = shapely.area(parts) if len(parts) else np.array([])
    keep = (areas >= min_area) & (areas > 0)  # min_area 0: not empty pieces
    parts, areas = parts[keep], areas[keep]
    order = np.argsort(-areas, kind="stable")[:limit]
    return _items(parts[order], areas[order], geometry) | {
        "count": len(parts),
        "area_m2": round(float(areas.sum()), 1),
    }


def _items(parts: NDArray[np.object_], areas: NDArray[np.float64], geometry: bool) -> dict:
    inner = to_lonlat(shapely.point_on_surface(parts)) if len(parts) else parts
    items = [
        {"area_m2": round(float(a), 1), "lon": round(p.x, 7), "lat": round(p.y, 7)}
        for a, p in zip(areas, inner, strict=True)
    ]
    if geometry and len(parts):
        shapes = shapely.to_geojson(shapely.set_precision(to_lonlat(parts), 1e-7))
        for item, shape in zip(items, shapes, strict=True):
            item["geometry"] = json.loads(shape)
    return {"items": items}


def _overlaps(area: Area, min_area: float, geometry: bool, limit: int) -> dict[str, Any]:
    geoms = area.child_geoms
    if len(geoms) < 2:
        return {"count": 0, "area_m2": 0.0, "items": []}
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    inter = shapely.intersection(geoms[left], geoms[right])
    areas = shapely.area(inter)
    keep = areas >= min_area
    left, right, inter, areas = left[keep], right[keep], inter[keep], areas[keep]
    order = np.argsort(-areas, kind="stable")[:limit]
    out = _items(inter[order], areas[order], geometry)
    ids = area.children["id"].to_numpy()
    for item, i, j in zip(out["items"], left[order], right[order], strict=True):
        item["ids"] = [ids[i], ids[j]]
    return out | {"count": len(areas), "area_m2": round(float(areas.sum()), 1)}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def coverage(
    atlas: Atlas,
    level: str,
    area_id: str | None = None,
    *,
    geometry: bool = False,
    min_area_m2: float = 1.0,
    limit: int = 100,
    teams: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The coverage report of one area: areas, overlaps, gaps, enterprises, buildings, officers,
    and the same figures per child. ``teams`` is `building_teams` (computed when not given)."""
    area = find_area(atlas, level, area_id)
    child_level = CHILD[level]
    if teams is None:
        teams = building_teams(atlas.tables["buildings"], atlas.tables["officers"])

    # areas
    union = shapely.union_all(area.child_geoms) if len(area.child_geoms) else shapely.Polygon()
    covered = shapely.intersection(union, area.geometry).area
    spill = shapely.difference(union, area.geometry).area
    gaps = shapely.difference(area.geometry, union)
    child_areas = shapely.area(area.child_geoms)
    places = _places(atlas, level, area, child_level, teams)
    officers, pairs = _officer_figures(atlas, places)
    area_m2 = float(area.geometry.area)
    return {
        "level": level,
        "id": area.id,
        "name": area.name,
        "code": area.code,
        "child_level": child_level,
        "area_m2": round(area_m2, 1),
        "children": {
            "count": places.n_children,
            "area_m2": round(float(child_areas.sum()), 1),
            "covered_m2": round(float(covered), 1),
            "outside_parent_m2": round(float(spill), 1),
        },
        "coverage_ratio": _ratio(float(covered), area_m2),
        "min_area_m2": min_area_m2,
        "overlaps": _overlaps(area, min_area_m2, geometry, limit),
        "gaps": _pieces(np.array([gaps], dtype=object), min_area_m2, geometry, limit),
        "enterprises": _enterprise_figures(atlas, places),
        "buildings": _building_figures(places),
        "officers": officers,
        "straddling": _straddling(atlas, level, area.id),
        "breakdown": _breakdown(area, child_level, child_areas, places, pairs),
    }


@dataclass(frozen=True)
class _Places:
    """Where the atlas's enterprises and buildings lie for one area's report: in the area or
    not, and their child's position among the area's children (-1: none)."""

    n_children: int
    in_area: NDArray[np.bool_]  # per enterprise
    ent_child: NDArray[np.int64]
    micro: NDArray[np.bool_]  # per enterprise: assigned to a micro-grid
    buildings: pd.DataFrame
    b_in: NDArray[np.bool_]  # per building
    b_child: NDArray[np.int64]
    team: pd.DataFrame  # `building_teams` per building
    loose: NDArray[np.bool_]  # outside every park: needs a team
    complete: NDArray[np.bool_]
    needs: NDArray[np.bool_]  # in the area and loose


def _places(atlas: Atlas, level: str, area: Area, child_level: str, teams: pd.DataFrame) -> _Places:
    """Enterprises by region and child position; buildings likewise, via the attribute
    hierarchy."""
    ent = atlas.enterprises
    n_children = len(area.children)
    local = np.full(len(atlas.levels[child_level].table) + 1, -1, dtype=np.int64)
    local[area.children["pos"].to_numpy()] = np.arange(n_children)
    ent_child = local[ent[f"_{child_level}"].to_numpy()]  # NONE (-1) indexes the sentinel
    if level == "district":
        pos = 0
        in_area = np.ones(len(ent), dtype=bool)
    else:
        pos = int(np.flatnonzero(atlas.levels[level].table["id"].to_numpy() == area.id)[0])
        in_area = ent[f"_{level}"].to_numpy() == pos
    b, b_in, b_child_global = _building_positions(atlas, level, child_level, pos)
    team = teams.reindex(b["id"])
    loose = ~team["in_park"].to_numpy(bool)
    return _Places(
        n_children,
        in_area,
        np.where(in_area, ent_child, -1),
        ent["_microgrid"].to_numpy() >= 0,
        b,
        b_in,
        np.where(b_in, local[b_child_global], -1),
        team,
        loose,
        team["complete"].to_numpy(bool),
        b_in & loose,
    )


def _building_positions(
    atlas: Atlas, level: str, child_level: str, pos: int
) -> tuple[pd.DataFrame, NDArray[np.bool_], NDArray[np.int64]]:
    """The buildings, which lie in the area (at ``pos`` of its level), and each one's child
    position at ``child_level`` in the whole atlas (-1: none)."""
    chain = _chain(atlas)
    b = atlas.tables["buildings"].reset_index(drop=True)
    b_grid = chain["grids"].get_indexer(b["grid_id"].fillna(""))
    lookup = {
        "district": np.where(b_grid >= 0, 0, -1),
        "street": np.append(chain["grid_street"], -1)[b_grid],
        "community": np.append(chain["grid_comm"], -1)[b_grid],
        "grid": b_grid,
    }
    b_in = lookup[level] == pos
    if child_level == "microgrid":
        micro_ids = pd.Index(atlas.levels["microgrid"].table["id"])
        own = np.where(b["park_id"].fillna("").ne(""), b["park_id"].fillna(""), b["id"])
        return b, b_in, micro_ids.get_indexer(own)
    return b, b_in, lookup[child_level]


def _enterprise_figures(atlas: Atlas, p: _Places) -> dict[str, Any]:
    """The area's enterprises: in children, assigned, outside grids or communities and why."""
    ent = atlas.enterprises
    in_area, micro = p.in_area, p.micro
    grid = ent["_grid"].to_numpy() >= 0
    comm = ent["_community"].to_numpy() >= 0
    lon, lat = ent["lon"].to_numpy(float), ent["lat"].to_numpy(float)
    no_xy = ~(np.isfinite(lon) & np.isfinite(lat))
    invalid = ~no_xy & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
    outside_comm = in_area & ~comm
    return {
        "total": int(in_area.sum()),
        "in_children": int((p.ent_child >= 0).sum()),
        "assigned_microgrid": int((in_area & micro).sum()),
        "in_grid_outside_microgrids": int((in_area & grid & ~micro).sum()),
        "outside_grids": int((in_area & comm & ~grid).sum()),
        "outside_communities": {
            "total": int(outside_comm.sum()),
            "no_coordinates": int((outside_comm & no_xy).sum()),
            "invalid": int((outside_comm & invalid).sum()),
            "outside": int((outside_comm & ~no_xy & ~invalid).sum()),
        },
        "credit_code_invalid": int((in_area & ~ent["credit_code_valid"].astype(bool)).sum()),
    }


def _building_figures(p: _Places) -> dict[str, Any]:
    """The area's buildings that need a team, with those whose team is incomplete."""
    needs, complete = p.needs, p.complete
    missing = p.team[needs & ~complete]
    return {
        "total": int(needs.sum()),
        "in_parks": int((p.b_in & ~p.loose).sum()),
        "complete_team": int((needs & complete).sum()),
        "incomplete_team": int((needs & ~complete).sum()),
        "missing": [
            {"building_id": i, "name": r["name"], "kind": r["kind"], "roles": r["missing_roles"]}
            for i, r in missing.iterrows()
        ],
    }


def _officer_figures(atlas: Atlas, p: _Places) -> tuple[dict[str, Any], pd.DataFrame]:
    """Officers, unique per area: how many, party members, enterprises served; and the
    (officer, building position ``b``) pairs for the per-child counts."""
    officers = atlas.tables["officers"]
    pairs = officer_buildings(officers)
    b_pos = pd.Index(p.buildings["id"]).get_indexer(pairs["building_id"])
    pairs = pairs.assign(b=b_pos)[b_pos >= 0]
    pairs_in = pairs[p.b_in[pairs["b"].to_numpy()]]
    party = officers.set_index("id")["party_member"].astype(bool)
    area_officers = pd.Index(pairs_in["officer_id"].unique())
    n_off = len(area_officers)
    n_party = int(party.reindex(area_officers).fillna(False).sum())
    served = int((p.in_area & _in_buildings(atlas, p.buildings, p.needs)).sum())
    figures = {
        "total": n_off,
        "party_members": n_party,
        "party_ratio": _ratio(n_party, n_off),
        "enterprises_served": served,
        "enterprises_per_officer": round(served / n_off, 2) if n_off else None,
    }
    return figures, pairs


def _breakdown(
    area: Area,
    child_level: str,
    child_areas: NDArray[np.float64],
    p: _Places,
    pairs: pd.DataFrame,
) -> list[dict[str, Any]]:
    """The figures per child: area, enterprises, buildings and teams, officers."""
    n_children, ent_child, b_child, loose = p.n_children, p.ent_child, p.b_child, p.loose
    ent_counts = np.bincount(ent_child[ent_child >= 0], minlength=n_children)
    sel = ent_child >= 0
    ent_micro = np.bincount(ent_child[sel & p.micro], minlength=n_children)
    b_sel = b_child >= 0
    b_need = np.bincount(b_child[b_sel & loose], minlength=n_children)
    b_done = np.bincount(b_child[b_sel & loose & p.complete], minlength=n_children)
    child_pairs = pairs.assign(c=b_child[pairs["b"].to_numpy()])
    child_pairs = child_pairs[child_pairs["c"] >= 0].drop_duplicates(["officer_id", "c"])
    off_counts = np.bincount(child_pairs["c"].to_numpy(int), minlength=n_children)
    breakdown = []
    for k, (_, child) in enumerate(area.children.iterrows()):
        row = {
            "id": child["id"],
            "name": child["name"],
            "code": child["code"] or None,
            "area_m2": round(float(child_areas[k]), 1),
            "enterprises": int(ent_counts[k]),
            "assigned_microgrid": int(ent_micro[k]),
            "unassigned": int(ent_counts[k] - ent_micro[k]),
            "buildings": int(b_need[k]),
            "complete_teams": int(b_done[k]),
            "incomplete_teams": int(b_need[k] - b_done[k]),
            "officers": int(off_counts[k]),
        }
        if child_level == "microgrid":
            row["kind"] = child["kind"]
        breakdown.append(row)
    return breakdown


def _straddling(atlas: Atlas, level: str, area_id: str) -> list[dict[str, Any]]:
    """Micro-grids of the area that overlap more than one grid (a split keeps them whole)."""
    grids = atlas.levels["grid"].table
    mine = grids
    if level == "street":
        comms = atlas.levels["community"].table
        mine = grids[grids["community_id"].isin(comms.loc[comms["street_id"] == area_id, "id"])]
    elif level == "community":
        mine = grids[grids["community_id"] == area_id]
    elif level == "grid":
        mine = grids[grids["id"] == area_id]
    micro = atlas.levels["microgrid"].table
    return straddling(grids, micro[micro["grid_id"].isin(mine["id"])])


def _in_buildings(atlas: Atlas, b: pd.DataFrame, needs: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Which enterprises stand in one of the building micro-grids selected by ``needs``."""
    micro_ids = atlas.levels["microgrid"].table["id"].to_numpy()
    chosen = np.isin(micro_ids, b["id"].to_numpy()[needs])
    return np.append(chosen, False)[atlas.enterprises["_microgrid"].to_numpy()]
