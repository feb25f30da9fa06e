"""People on the map (一长二员): officers and the teams of micro-grids.

Officers' phone numbers are personal data: responses are built with ``officer_view(row, role)``
where ``role`` is the caller's (`geo.api.auth.caller_role`) and the fields it may see come from
`geo.visibility` (``phone``: officer+); anonymous answers have no ``phone`` key at all. The
enterprise lists here are public views (`geo.visibility.public`).
Per-atlas indexes (teams, enterprise → building, metric coordinates; the search index of
`geo.api.search`) are built once per atlas (`per_atlas`) and dropped with it.

The views shared by the routes that show cells with their teams (officers and micro-grids here,
grids in `geo.api.grids`) are public: `position`, `cell_view`, `parents`, `enterprise_items`,
`team_fields`, `page_of`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Path, Query
from numpy.typing import NDArray

from geo import crs, visibility
from geo.api.auth import Role
from geo.api.deps import atlas
from geo.atlas import Atlas
from geo.errors import NotFound
from geo.grids import coverage as cov

router = APIRouter(tags=["people"])

PARK_TEAM_NOTE = (
    "a park micro-grid has no 一长二员 team of its own: the teams belong to its buildings "
    "(see GET /microgrids/{park id})"
)
_ENT_COLUMNS = visibility.public("enterprises", ["id", "name", "credit_code", "chain"])


# -- views -------------------------------------------------------------------------------------
_OFFICER_FIELDS = ("id", "name", "role", "party_member", "phone")


def officer_view(row: Any, role: str = visibility.PUBLIC) -> dict[str, Any]:
    """An officer as served to a caller of ``role``: name, role, party membership; the phone
    only for those `geo.visibility` lets see it (officer+)."""
    out = {f: row[f] for f in visibility.only_visible("officers", _OFFICER_FIELDS, role)}
    out["party_member"] = bool(out["party_member"])
    return out


# -- per-atlas indexes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class People:
    """The teams and enterprise → building index of one atlas."""

    officers: pd.DataFrame  # indexed by id
    pairs: pd.DataFrame  # officer_id, building_id
    teams: pd.DataFrame  # coverage.building_teams, indexed by building id
    buildings: pd.DataFrame  # the buildings table, positions 0..n-1
    ent_building: NDArray[np.int64]  # building position holding each enterprise, or -1
    by_building: NDArray[np.int64]  # enterprise rows sorted by building position
    ent_x: NDArray[np.float64]  # EPSG:4549
    ent_y: NDArray[np.float64]

    def building_enterprises(self, b: int) -> NDArray[np.int64]:
        """Rows of the enterprises inside building position ``b``, in order."""
        keys = self.ent_building[self.by_building]
        lo, hi = np.searchsorted(keys, [b, b + 1])
        return np.sort(self.by_building[lo:hi])

    def team(self, building_id: str, role: str = visibility.PUBLIC) -> list[dict[str, Any]]:
        """The officer views of a building's team (empty when it has none)."""
        if building_id not in self.teams.index:
            return []
        ids = self.teams.at[building_id, "officer_ids"]
        return [officer_view(self.officers.loc[i].to_dict() | {"id": i}, role) for i in ids]


_CACHE: weakref.WeakKeyDictionary[Atlas, dict[str, Any]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def per_atlas(current: Atlas, key: str, build: Callable[[Atlas], Any]) -> Any:
    """``build(current)``, made once per atlas and ``key`` (dropped with the atlas)."""
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
    return per_atlas(current, "people", _build_people)


# -- helpers -------------------------------------------------------------------------------------
def position(current: Atlas, level: str, key: str) -> int | None:
    """The row of the cell of ``level`` whose id or code is ``key`` (None: no such cell)."""
    table = current.levels[level].table
    hit = np.flatnonzero((table["id"] == key).to_numpy() | (table["code"] == key).to_numpy())
    return int(hit[0]) if len(hit) else None


def cell_view(current: Atlas, level: str, cell_id: Any) -> dict[str, Any] | None:
    """The cell of ``level`` with id (or code) ``cell_id`` as served (None: none)."""
    if not isinstance(cell_id, str) or not cell_id:
        return None
    pos = position(current, level, cell_id)
    return None if pos is None else current.levels[level].describe(pos)


def parents(current: Atlas, grid_id: Any) -> dict[str, Any]:
    """The grid, community and street above a grid id (attribute hierarchy)."""
    grid = cell_view(current, "grid", grid_id)
    community = street = None
    if grid is not None:
        g = current.levels["grid"].table.iloc[position(current, "grid", grid["id"])]
        community = cell_view(current, "community", g["community_id"])
        if community is not None:
            c = current.levels["community"].table
            street_id = c.loc[c["id"] == community["id"], "street_id"].iloc[0]
            street = cell_view(current, "street", street_id)
    return {"grid": grid, "community": community, "street": street}


def enterprise_items(current: Atlas, rows: NDArray[np.int64]) -> list[dict[str, Any]]:
    """The enterprises at ``rows``: id, name, credit code, chain and micro-grid id."""
    ent = current.enterprises.iloc[rows]
    frame = ent[_ENT_COLUMNS].astype(object).where(ent[_ENT_COLUMNS].notna(), None)
    frame["microgrid_id"] = current.ids_of("microgrid", ent["_microgrid"].to_numpy())
    return frame.to_dict("records")


def page_of(items: list, offset: int, limit: int) -> list:
    """``limit`` items from ``offset``."""
    return items[offset : offset + limit]


def team_fields(people: People, building_id: str, role: str = visibility.PUBLIC) -> dict[str, Any]:
    """``team``, ``team_complete`` and ``missing_roles`` of a building micro-grid."""
    if building_id not in people.teams.index:
        return {"team": [], "team_complete": None, "missing_roles": []}
    t = people.teams.loc[building_id]
    team = people.team(building_id, role)
    return {
        "team": team,
        # a building inside a park needs no team of its own: complete is not asked of it
        "team_complete": None if t["in_park"] and not team else bool(t["complete"]),
        "missing_roles": list(t["missing_roles"]),
    }


def microgrid_team(
    current: Atlas, microgrid_pos: int, role: str = visibility.PUBLIC
) -> dict[str, Any]:
    """``team`` (officer views) and ``team_note`` of a micro-grid position (for the owner)."""
    if microgrid_pos < 0:
        return {"team": [], "team_note": "the enterprise is in no micro-grid, so it has no team"}
    row = current.levels["microgrid"].table.iloc[microgrid_pos]
    if row["kind"] == "park":
        return {"team": [], "team_note": PARK_TEAM_NOTE}
    people = people_index(current)
    team = people.team(row["id"], role)
    note = None if team else "no officer serves this building yet"
    return {"team": team, "team_note": note}


Limit = Annotated[int, Query(ge=1, le=5000, description="at most this many enterprises")]
Offset = Annotated[int, Query(ge=0, description="skip this many enterprises")]


# -- officers --------------------------------------------------------------------------------------
@router.get("/officers/{officer_id}", summary="An officer's buildings, their enterprises and grid")
def get_officer(
    current: Annotated[Atlas, Depends(atlas)],
    role: Role,
    officer_id: Annotated[str, Path(description="officer id, e.g. O0001")],
) -> dict[str, Any]:
    """An officer, the buildings it serves with their enterprises, and their grids."""
    people = people_index(current)
    if officer_id not in people.officers.index:
        raise NotFound(f"no officer with id {officer_id!r} (ids look like O0001)")
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
        above = parents(current, b["grid_id"])
        if above["grid"] is not None:
            grids[above["grid"]["id"]] = above
        buildings.append(
            {
                "id": building_id,
                "name": b["name"],
                "address": b["address"],
                "kind": b["kind"],
                "microgrid": cell_view(current, "microgrid", micro_id),
                **above,
                **team_fields(people, building_id, role),
                "enterprise_count": len(rows),
                "enterprises": enterprise_items(current, rows),
            }
        )
    return {
        "officer": officer_view(row, role),
        "buildings": buildings,
        "grids": [p["grid"] | {"community": p["community"]} for p in grids.values()],
        "unknown_building_ids": unknown,
    }


# -- micro-grids ----------------------------------------------------------------------------------
@router.get(
    "/microgrids/{microgrid_id}",
    summary="A micro-grid (park or building): its buildings, team and enterprises",
)
def get_microgrid(
    current: Annotated[Atlas, Depends(atlas)],
    role: Role,
    microgrid_id: Annotated[str, Path(description="park id (P0001), building id or 18-digit code")],
    limit: Limit = 1000,
    offset: Offset = 0,
) -> dict[str, Any]:
    """A micro-grid: its buildings with their teams, its own team and its enterprises."""
    pos = position(current, "microgrid", microgrid_id)
    if pos is None:
        raise NotFound(
            f"no micro-grid with id or code {microgrid_id!r}: micro-grids are parks (P0001) "
            "and buildings outside parks; a building inside a park belongs to its park"
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
                **team_fields(people, bid, role),
            }
        )
    if row["kind"] == "park":
        team = {"team": [], "team_complete": None, "missing_roles": [], "team_note": PARK_TEAM_NOTE}
    else:
        team = team_fields(people, row["id"], role) | {"team_note": None}
    ent_rows = np.flatnonzero(current.enterprises["_microgrid"].to_numpy() == pos)
    return {
        "microgrid": current.levels["microgrid"].describe(pos),
        **parents(current, row["grid_id"]),
        "area_m2": round(float(crs.to_metric(row.geometry).area), 1),
        **team,
        "buildings": buildings,
        "enterprises": {
            "total": len(ent_rows),
            "offset": offset,
            "items": page_of(enterprise_items(current, ent_rows), offset, limit),
        },
    }
