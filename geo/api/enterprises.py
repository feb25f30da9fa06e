"""Enterprises: who owns one (street, community, grid, micro-grid) and its chain neighbours."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Path, Query
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from geo import visibility
from geo.api.auth import Role
from geo.api.deps import atlas
from geo.api.locate import Cell, MicroGrid
from geo.api.people import People, microgrid_team, people_index
from geo.atlas import Atlas
from geo.errors import InvalidInput, NotFound
from geo.model import ENTERPRISES

router = APIRouter(tags=["enterprises"])
_CAST: dict[str, Any] = {"int": int, "float": float, "bool": bool, "str": str}

EnterpriseKey = Annotated[str, Path(description="enterprise id or unified social credit code")]


class Enterprise(BaseModel):
    """An enterprise as the owner look-up shows it."""

    id: str
    name: str
    credit_code: str
    credit_code_valid: bool
    address: str
    lon: float
    lat: float
    employees: int | None = Field(None, description="officer+ only (absent otherwise)")


class Officer(BaseModel):
    """An officer of the 一长二员 team; the phone (personal) only for officer+ callers."""

    id: str
    name: str
    role: str
    party_member: bool
    phone: str | None = Field(None, description="officer+ only (absent otherwise)")


class Owner(BaseModel):
    """The cells that own an enterprise, and the team of its micro-grid."""

    enterprise: Enterprise
    street: Cell | None
    community: Cell | None
    grid: Cell | None
    grid_code: str | None = Field(description="the 15-digit code of the owning grid")
    microgrid: MicroGrid | None
    team: list[Officer] = Field(
        description="一长二员 of the building micro-grid that holds the enterprise; "
        "empty for a park micro-grid (its buildings' teams are not the park's) or no micro-grid"
    )
    team_note: str | None = Field(None, description="why the team is empty, when it is")


def enterprise_row(current: Atlas, key: str) -> int:
    """The row of the enterprise with id or credit code ``key`` (404 when there is none)."""
    row = current.find_enterprise(key)
    if row is None:
        raise NotFound(
            f"no enterprise with id or credit code {key!r}; check the code (18 characters)"
        )
    return row


@router.get(
    "/enterprises/{key}/owner",
    response_model=Owner,
    response_model_exclude_unset=True,  # personal fields are absent, not null, for anonymous
    summary="The street, community, grid and micro-grid that own an enterprise",
)
async def enterprise_owner(
    current: Annotated[Atlas, Depends(atlas)], key: EnterpriseKey, role: Role
) -> dict[str, Any]:
    """The street, community, grid and micro-grid of an enterprise, and its team."""
    row = enterprise_row(current, key)
    owner = current.enterprise_owner(row)
    grid = owner.get("grid")
    owner["grid_code"] = grid["code"] if grid else None
    owner |= microgrid_team(current, int(current.enterprises["_microgrid"].iat[row]), role)
    owner["enterprise"] = dict(owner["enterprise"]) | _restricted_details(current, row, role)
    return owner


def _restricted_details(current: Atlas, row: int, role: str) -> dict[str, Any]:
    """The enterprise's restricted fields ``role`` may see (`geo.visibility`: employees for
    officer+), as the owner look-up adds them; none for anonymous callers."""
    out: dict[str, Any] = {}
    for f in ENTERPRISES.fields:
        if f.name in visibility.RESTRICTED["enterprises"] and visibility.may_see(
            "enterprises", f.name, role
        ):
            value = current.enterprises[f.name].iat[row]
            out[f.name] = None if pd.isna(value) else _CAST[f.type](value)
    return out


# -- neighbours -------------------------------------------------------------------------------
Scope = Literal["building", "grid", "radius"]


def _wanted_chain(chains: NDArray[Any], row: int, chain: str, ent_id: str) -> str | None:
    """The chain the neighbours must have: the enterprise's own (``same``), any (None) or a
    named one (422 when the enterprise has none, or the name is unknown)."""
    if chain == "same":
        if not chains[row]:
            raise InvalidInput(f"{ent_id} has no industry chain recorded; pass chain=<name>")
        return str(chains[row])
    if chain == "any":
        return None
    known = sorted(set(chains) - {""})
    if chain not in known:
        raise InvalidInput(f"unknown chain {chain!r}: use same, any or one of {', '.join(known)}")
    return chain


def _in_scope(
    current: Atlas, people: People, row: int, scope: Scope
) -> tuple[NDArray[np.bool_], str | None]:
    """Which enterprises share the enterprise's building or grid (all for ``radius``), and a
    note when it has no building or grid."""
    if scope == "building":
        building = int(people.ent_building[row])
        note = (
            "the enterprise stands in no building footprint, so it has no building mates"
            if building < 0
            else None
        )
        return (people.ent_building == building) & (building >= 0), note
    if scope == "grid":
        grids = current.enterprises["_grid"].to_numpy()
        grid = int(grids[row])
        return (grids == grid) & (
            grid >= 0
        ), None if grid >= 0 else "the enterprise lies in no grid"
    return np.ones(len(current.enterprises), dtype=bool), None


def _neighbour_items(
    current: Atlas,
    people: People,
    chains: NDArray[Any],
    order: NDArray[np.int64],
    dist: NDArray[np.float64],
) -> list[dict[str, Any]]:
    """The neighbours at rows ``order``: id, name, chain, distance, building, micro-grid, grid."""
    ent = current.enterprises
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
    return frame.to_dict("records")


def _enterprise_view(current: Atlas, people: People, row: int, chain: str) -> dict[str, Any]:
    ent = current.enterprises
    building = int(people.ent_building[row])
    return {
        "id": ent.at[row, "id"],
        "name": ent.at[row, "name"],
        "chain": chain or None,
        "building_id": people.buildings["id"].iat[building] if building >= 0 else None,
        "grid_id": current.ids_of("grid", ent["_grid"].to_numpy()[[row]])[0],
    }


@router.get(
    "/enterprises/{key}/neighbours",
    summary="Enterprises of the same industry chain nearby (上下楼就是上下游), nearest first",
)
def neighbours(
    current: Annotated[Atlas, Depends(atlas)],
    key: EnterpriseKey,
    chain: Annotated[
        str, Query(description="'same' (the enterprise's chain), 'any', or a chain name")
    ] = "same",
    scope: Annotated[
        Scope, Query(description="same building footprint, same grid, or within radius_m")
    ] = "building",
    radius_m: Annotated[
        float, Query(gt=0, le=20_000, description="scope=radius: metres (EPSG:4549)")
    ] = 500.0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """Enterprises of the chain in the same building, grid or radius, nearest first."""
    row = enterprise_row(current, key)
    people = people_index(current)
    ent = current.enterprises
    chains = ent["chain"].fillna("").astype(str).to_numpy()
    wanted = _wanted_chain(chains, row, chain, ent.at[row, "id"])
    mask, note = _in_scope(current, people, row, scope)
    if wanted is not None:
        mask &= chains == wanted
    mask[row] = False
    dist = np.hypot(people.ent_x - people.ent_x[row], people.ent_y - people.ent_y[row])
    if scope == "radius":
        mask &= dist <= radius_m
    hits = np.flatnonzero(mask)
    order = hits[np.lexsort((ent["id"].to_numpy()[hits], dist[hits]))][:limit]
    return {
        "enterprise": _enterprise_view(current, people, row, chains[row]),
        "chain": wanted,
        "scope": scope,
        "radius_m": radius_m if scope == "radius" else None,
        "count": len(hits),
        "note": note,
        "neighbours": _neighbour_items(current, people, chains, order, dist),
    }
