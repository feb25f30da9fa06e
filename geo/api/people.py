"""People on the map (一长二员), grids and micro-grids with their teams, search, neighbours.

Officers' phone numbers are personal data: responses are built with
``officer_view(row, personal=...)`` where ``personal`` is `geo.api.auth.personal` (the caller
holds at least an ``officer`` token); anonymous answers have no ``phone`` key at all.
Per-atlas indexes (teams, enterprise → building, metric coordinates, the search index) are built
once per atlas and dropped with it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from numpy.typing import NDArray

from geo import crs
from geo.api.auth import Personal
from geo.api.deps import atlas
from geo.atlas import Atlas
from geo.grids import coverage as cov
from geo.search import KINDS, SearchIndex

router = APIRouter(tags=["people"])

PARK_TEAM_NOTE = (
    "a park micro-grid has no 一长二员 team of its own: the teams belong to its buildings "
    "(see GET /microgrids/{park id})"
)
_ENT_COLUMNS = ["id", "name", "credit_code", "chain"]


# -- views -------------------------------------------------------------------------------------
def officer_view(row: Any, personal: bool = False) -> dict[str, Any]:
    """An officer as served: name, role, party membership; the phone only when ``personal``."""
    out = {
        "id": row["id"],
        "name": row["name"],
        "role": row["role"],
        "party_member": bool(row["party_member"]),
    }
    if personal:
        out["phone"] = row["phone"]
    return out


# -- per-atlas indexes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class People:
    officers: pd.DataFrame  # indexed by id
    pairs: pd.DataFrame  # officer_id, building_id
    teams: pd.DataFrame  # coverage.building_teams, indexed by building id
    buildings: pd.DataFrame  # the buildings table, positions 0..n-1
    ent_building: NDArray[np.int64]  # building position holding each enterprise, or -1
    by_building: NDArray[np.int64]  # enterprise rows sorted by building position
    ent_x: NDArray[np.float64]  # EPSG:4549
    ent_y: NDArray[np.float64]

    def building_enterprises(self, b: int) -> NDArray[np.int64]:
        keys = self.ent_building[self.by_building]
        lo, hi = np.searchsorted(keys, [b, b + 1])
        return np.sort(self.by_building[lo:hi])

    def team(self, building_id: str, personal: bool = False) -> list[dict[str, Any]]:
        if building_id not in self.teams.index:
            return []
        ids = self.teams.at[building_id, "officer_ids"]
        return [officer_view(self.officers.loc[i].to_dict() | {"id": i}, personal) for i in ids]


_CACHE: weakref.WeakKeyDictionary[Atlas, dict[str, Any]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _cached(current: Atlas, key: str, build: Callable[[Atlas], Any]) -> Any:
    with _LOCK:
        slot = _CACHE.setdefault(current, {})
        if key not in slot:
            slot[key] = build(current)
        return slot[key]


def _build_people(current: Atlas) -> People:
    b = current.tables["buildings"].reset_index(drop=True)
    officers = current.tables["officers"]
    ent = current.enterprises
    lon, lat = ent["lon"].to_numpy(float), ent["lat"].to_numpy(float)
    ent_building = cov.first_container(lon, lat, b.geometry.to_numpy())
    x, y = crs.from_wgs84(lon, lat, crs.METRIC_CRS)
    return People(
        officers=officers.set_index("id"),
        pairs=cov.officer_buildings(officers),
        teams=cov.building_teams(b, officers),
        buildings=b,
        ent_building=ent_building,
        by_building=np.argsort(ent_building, kind="stable"),
        ent_x=x,
        ent_y=y,
    )


def people_index(current: Atlas) -> People:
    """The teams and enterprise → building index of this atlas (built once)."""
    return _cached(current, "people", _build_people)


def search_index(current: Atlas) -> SearchIndex:
    """The name / pinyin / initials index of this atlas (built once)."""
    return _cached(
        current,
        "search",
        lambda a: SearchIndex.build(
            [
                ("officer", a.tables["officers"], "role"),
                ("building", a.tables["buildings"], "address"),
                ("park", a.tables["parks"], "address"),
                ("enterprise", a.tables["enterprises"], "address"),
            ]
        ),
    )


# -- helpers -------------------------------------------------------------------------------------
def _position(current: Atlas, level: str, key: str) -> int | None:
    table = current.levels[level].table
    hit = np.flatnonzero((table["id"] == key).to_numpy() | (table["code"] == key).to_numpy())
    return int(hit[0]) if len(hit) else None


def _cell(current: Atlas, level: str, cell_id: Any) -> dict[str, Any] | None:
    if not isinstance(cell_id, str) or not cell_id:
        return None
    pos = _position(current, level, cell_id)
    return None if pos is None else current.levels[level].describe(pos)


def _parents(current: Atlas, grid_id: Any) -> dict[str, Any]:
    """The grid, community and street above a grid id (attribute hierarchy)."""
    grid = _cell(current, "grid", grid_id)
    community = street = None
    if grid is not None:
        g = current.levels["grid"].table.iloc[_position(current, "grid", grid["id"])]
        community = _cell(current, "community", g["community_id"])
        if community is not None:
            c = current.levels["community"].table
            street_id = c.loc[c["id"] == community["id"], "street_id"].iloc[0]
            street = _cell(current, "street", street_id)
    return {"grid": grid, "community": community, "street": street}


def _enterprise_items(current: Atlas, rows: NDArray[np.int64]) -> list[dict[str, Any]]:
    ent = current.enterprises.iloc[rows]
    frame = ent[_ENT_COLUMNS].astype(object).where(ent[_ENT_COLUMNS].notna(), None)
    frame["microgrid_id"] = current.ids_of("microgrid", ent["_microgrid"].to_numpy())
    return frame.to_dict("records")


def _page(items: list, offset: int, limit: int) -> list:
    return items[offset : offset + limit]


def _team_fields(people: People, building_id: str, personal: bool = False) -> dict[str, Any]:
    if building_id not in people.teams.index:
        return {"team": [], "team_complete": None, "missing_roles": []}
    t = people.teams.loc[building_id]
    team = people.team(building_id, personal)
    return {
        "team": team,
        # a building inside a park needs no team of its own: complete is not asked of it
        "team_complete": None if t["in_park"] and not team else bool(t["complete"]),
        "missing_roles": list(t["missing_roles"]),
    }


def microgrid_team(current: Atlas, microgrid_pos: int, personal: bool = False) -> dict[str, Any]:
    """``team`` (officer views) and ``team_note`` of a micro-grid position (for the owner)."""
    if microgrid_pos < 0:
        return {"team": [], "team_note": "the enterprise is in no micro-grid, so it has no team"}
    row = current.levels["microgrid"].table.iloc[microgrid_pos]
    if row["kind"] == "park":
        return {"team": [], "team_note": PARK_TEAM_NOTE}
    people = people_index(current)
    team = people.team(row["id"], personal)
    note = None if team else "no officer serves this building yet"
    return {"team": team, "team_note": note}


Limit = Annotated[int, Query(ge=1, le=5000, description="at most this many enterprises")]
Offset = Annotated[int, Query(ge=0, description="skip this many enterprises")]


# -- officers --------------------------------------------------------------------------------------
@router.get("/officers/{officer_id}", summary="An officer's buildings, their enterprises and grid")
def get_officer(
    current: Annotated[Atlas, Depends(atlas)],
    personal: Personal,
    officer_id: Annotated[str, Path(description="officer id, e.g. O0001")],
) -> dict[str, Any]:
    people = people_index(current)
    if officer_id not in people.officers.index:
        raise HTTPException(404, f"no officer with id {officer_id!r} (ids look like O0001)")
    row = people.officers.loc[officer_id].to_dict() | {"id": officer_id}
    served = people.pairs.loc[people.pairs["officer_id"] == officer_id, "building_id"].tolist()
    b_index = pd.Index(people.buildings["id"])
    buildings, grids, unknown = [], {}, []
    for building_id in served:
        pos = b_index.get_indexer([building_id])[0]
        if pos < 0:
            unknown.append(building_id)
            continue
        b = people.buildings.iloc[pos]
        park_id = b["park_id"] or None
        micro_id = park_id or building_id
        rows = people.building_enterprises(int(pos))
        parents = _parents(current, b["grid_id"])
        if parents["grid"] is not None:
            grids[parents["grid"]["id"]] = parents
        buildings.append(
            {
                "id": building_id,
                "name": b["name"],
                "address": b["address"],
                "kind": b["kind"],
                "microgrid": _cell(current, "microgrid", micro_id),
                **parents,
                **_team_fields(people, building_id, personal),
                "enterprise_count": len(rows),
                "enterprises": _enterprise_items(current, rows),
            }
        )
    return {
        "officer": officer_view(row, personal=personal),
        "buildings": buildings,
        "grids": [p["grid"] | {"community": p["community"]} for p in grids.values()],
        "unknown_building_ids": unknown,
    }


# -- grids -----------------------------------------------------------------------------------------
@router.get("/grids/{grid_id}", summary="A grid: its micro-grids, teams, officers, enterprises")
def get_grid(
    current: Annotated[Atlas, Depends(atlas)],
    personal: Personal,
    grid_id: Annotated[str, Path(description="grid id (C01-G01) or 15-digit grid code")],
    limit: Limit = 1000,
    offset: Offset = 0,
) -> dict[str, Any]:
    pos = _position(current, "grid", grid_id)
    if pos is None:
        raise HTTPException(404, f"no grid with id or code {grid_id!r} (ids look like C01-G01)")
    people = people_index(current)
    g = current.levels["grid"].table.iloc[pos]
    micro = current.levels["microgrid"].table
    mpos = np.flatnonzero((micro["grid_id"] == g["id"]).to_numpy())
    ent = current.enterprises
    in_grid = np.flatnonzero(ent["_grid"].to_numpy() == pos)
    per_micro = np.bincount(ent["_microgrid"].to_numpy()[in_grid] + 1, minlength=len(micro) + 1)[1:]
    microgrids = []
    officer_ids: dict[str, None] = {}
    for m in mpos:
        row = micro.iloc[m]
        item = {**current.levels["microgrid"].describe(int(m)), "enterprise_count": 0}
        item["enterprise_count"] = int(per_micro[m])
        if row["kind"] == "park":
            item |= {"team": [], "team_complete": None, "missing_roles": []}
            item["team_note"] = PARK_TEAM_NOTE
        else:
            item |= _team_fields(people, row["id"], personal)
            officer_ids.update(dict.fromkeys(o["id"] for o in item["team"]))
        microgrids.append(item)
    # officers serving buildings inside the grid's parks count for the grid as well
    grid_buildings = people.buildings.loc[people.buildings["grid_id"] == g["id"], "id"]
    extra = people.pairs.loc[people.pairs["building_id"].isin(grid_buildings), "officer_id"]
    officer_ids.update(dict.fromkeys(extra))
    officers = [
        officer_view(people.officers.loc[i].to_dict() | {"id": i}, personal)
        for i in sorted(officer_ids)
    ]
    items = _enterprise_items(current, in_grid)
    in_micro = int((ent["_microgrid"].to_numpy()[in_grid] >= 0).sum())
    return {
        **_parents(current, g["id"]),
        "area_m2": round(float(crs.to_metric(g.geometry).area), 1),
        "microgrids": microgrids,
        "officers": officers,
        "enterprises": {
            "total": len(in_grid),
            "in_microgrids": in_micro,
            "outside_microgrids": len(in_grid) - in_micro,
            "offset": offset,
            "items": _page(items, offset, limit),
        },
    }


# -- micro-grids ----------------------------------------------------------------------------------
@router.get(
    "/microgrids/{microgrid_id}",
    summary="A micro-grid (park or building): its buildings, team and enterprises",
)
def get_microgrid(
    current: Annotated[Atlas, Depends(atlas)],
    personal: Personal,
    microgrid_id: Annotated[str, Path(description="park id (P0001), building id or 18-digit code")],
    limit: Limit = 1000,
    offset: Offset = 0,
) -> dict[str, Any]:
    pos = _position(current, "microgrid", microgrid_id)
    if pos is None:
        raise HTTPException(
            404,
            f"no micro-grid with id or code {microgrid_id!r}: micro-grids are parks (P0001) "
            "and buildings outside parks; a building inside a park belongs to its park",
        )
    people = people_index(current)
    row = current.levels["microgrid"].table.iloc[pos]
    b = people.buildings
    members = np.flatnonzero(((b["park_id"] == row["id"]) | (b["id"] == row["id"])).to_numpy())
    buildings = []
    for m in members:
        bid = b.at[m, "id"]
        rows = people.building_enterprises(int(m))
        buildings.append(
            {
                "id": bid,
                "name": b.at[m, "name"],
                "address": b.at[m, "address"],
                "kind": b.at[m, "kind"],
                "enterprise_count": len(rows),
                **_team_fields(people, bid, personal),
            }
        )
    if row["kind"] == "park":
        team = {"team": [], "team_complete": None, "missing_roles": [], "team_note": PARK_TEAM_NOTE}
    else:
        team = _team_fields(people, row["id"], personal) | {"team_note": None}
    ent_rows = np.flatnonzero(current.enterprises["_microgrid"].to_numpy() == pos)
    return {
        "microgrid": current.levels["microgrid"].describe(pos),
        **_parents(current, row["grid_id"]),
        "area_m2": round(float(crs.to_metric(row.geometry).area), 1),
        **team,
        "buildings": buildings,
        "enterprises": {
            "total": len(ent_rows),
            "offset": offset,
            "items": _page(_enterprise_items(current, ent_rows), offset, limit),
        },
    }


# -- search ----------------------------------------------------------------------------------------
@router.get("/search", summary="Officers, parks, buildings and enterprises by name or pinyin")
def search(
    current: Annotated[Atlas, Depends(atlas)],
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=100,
            description="Chinese name, pinyin (haikang) or initials (hzhk)",
        ),
    ],
    kind: Annotated[
        list[Literal["officer", "building", "park", "enterprise"]] | None,
        Query(description=f"only these kinds ({', '.join(KINDS)}); repeat for several"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    if not q.strip():
        raise HTTPException(422, "q is blank: type a name, its pinyin or its initials")
    hits = search_index(current).search(q, kinds=kind, limit=limit)
    return {"query": q, "count": len(hits), "results": hits}


# -- neighbours ------------------------------------------------------------------------------------
@router.get(
    "/enterprises/{key}/neighbours",
    summary="Enterprises of the same industry chain nearby (上下楼就是上下游), nearest first",
)
def neighbours(
    current: Annotated[Atlas, Depends(atlas)],
    key: Annotated[str, Path(description="enterprise id or unified social credit code")],
    chain: Annotated[
        str, Query(description="'same' (the enterprise's chain), 'any', or a chain name")
    ] = "same",
    scope: Annotated[
        Literal["building", "grid", "radius"],
        Query(description="same building footprint, same grid, or within radius_m"),
    ] = "building",
    radius_m: Annotated[
        float, Query(gt=0, le=20_000, description="scope=radius: metres (EPSG:4549)")
    ] = 500.0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    row = current.find_enterprise(key)
    if row is None:
        raise HTTPException(
            404, f"no enterprise with id or credit code {key!r}; check the code (18 characters)"
        )
    people = people_index(current)
    ent = current.enterprises
    chains = ent["chain"].fillna("").astype(str).to_numpy()
    own_chain = chains[row]
    if chain == "same":
        if not own_chain:
            raise HTTPException(
                422, f"{ent.at[row, 'id']} has no industry chain recorded; pass chain=<name>"
            )
        wanted = own_chain
    elif chain == "any":
        wanted = None
    else:
        known = sorted(set(chains) - {""})
        if chain not in known:
            raise HTTPException(
                422, f"unknown chain {chain!r}: use same, any or one of {', '.join(known)}"
            )
        wanted = chain
    mask = np.ones(len(ent), dtype=bool) if wanted is None else chains == wanted
    mask[row] = False
    building = int(people.ent_building[row])
    note = None
    if scope == "building":
        mask &= (people.ent_building == building) & (building >= 0)
        if building < 0:
            note = "the enterprise stands in no building footprint, so it has no building mates"
    elif scope == "grid":
        grid = int(ent["_grid"].iat[row])
        mask &= (ent["_grid"].to_numpy() == grid) & (grid >= 0)
        if grid < 0:
            note = "the enterprise lies in no grid"
    dist = np.hypot(people.ent_x - people.ent_x[row], people.ent_y - people.ent_y[row])
    if scope == "radius":
        mask &= dist <= radius_m
    hits = np.flatnonzero(mask)
    order = hits[np.lexsort((ent["id"].to_numpy()[hits], dist[hits]))][:limit]
    b_ids = np.append(people.buildings["id"].to_numpy(dtype=object), None)
    b_names = np.append(people.buildings["name"].to_numpy(dtype=object), None)
    frame = pd.DataFrame(
        {
            "id": ent["id"].to_numpy()[order],
            "name": ent["name"].to_numpy()[order],
            "chain": chains[order],
            "distance_m": np.round(dist[order], 1),
            "building_id": b_ids[people.ent_building[order]],
            "building_name": b_names[people.ent_building[order]],
            "microgrid_id": current.ids_of("microgrid", ent["_microgrid"].to_numpy()[order]),
            "grid_id": current.ids_of("grid", ent["_grid"].to_numpy()[order]),
        }
    )
    return {
        "enterprise": {
            "id": ent.at[row, "id"],
            "name": ent.at[row, "name"],
            "chain": own_chain or None,
            "building_id": b_ids[building],
            "grid_id": current.ids_of("grid", ent["_grid"].to_numpy()[[row]])[0],
        },
        "chain": wanted,
        "scope": scope,
        "radius_m": radius_m if scope == "radius" else None,
        "count": len(hits),
        "note": note,
        "neighbours": frame.to_dict("records"),
    }
