"""Who owns an enterprise: its community, grid and micro-grid."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, Field

from geo.api.auth import Personal
from geo.api.deps import atlas
from geo.api.locate import Cell, MicroGrid
from geo.api.people import microgrid_team
from geo.atlas import Atlas

router = APIRouter(tags=["enterprises"])


class Enterprise(BaseModel):
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


@router.get(
    "/enterprises/{key}/owner",
    response_model=Owner,
    response_model_exclude_unset=True,  # personal fields are absent, not null, for anonymous
    summary="The street, community, grid and micro-grid that own an enterprise",
)
async def enterprise_owner(
    current: Annotated[Atlas, Depends(atlas)],
    key: Annotated[str, Path(description="enterprise id or unified social credit code")],
    personal: Personal,
) -> dict[str, Any]:
    row = current.find_enterprise(key)
    if row is None:
        raise HTTPException(
            404, f"no enterprise with id or credit code {key!r}; check the code (18 characters)"
        )
    owner = current.enterprise_owner(row)
    grid = owner.get("grid")
    owner["grid_code"] = grid["code"] if grid else None
    owner |= microgrid_team(current, int(current.enterprises["_microgrid"].iat[row]), personal)
    if personal:
        employees = current.enterprises["employees"].iat[row]
        owner["enterprise"] = dict(owner["enterprise"]) | {
            "employees": None if pd.isna(employees) else int(employees)
        }
    return owner
