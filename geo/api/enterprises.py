"""Who owns an enterprise: its community, grid and micro-grid."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel

from geo.api.deps import atlas
from geo.api.locate import Cell, MicroGrid
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


class Owner(BaseModel):
    enterprise: Enterprise
    street: Cell | None
    community: Cell | None
    grid: Cell | None
    microgrid: MicroGrid | None


@router.get(
    "/enterprises/{key}/owner",
    response_model=Owner,
    summary="The street, community, grid and micro-grid that own an enterprise",
)
def enterprise_owner(
    current: Annotated[Atlas, Depends(atlas)],
    key: Annotated[str, Path(description="enterprise id or unified social credit code")],
) -> dict[str, Any]:
    row = current.find_enterprise(key)
    if row is None:
        raise HTTPException(
            404, f"no enterprise with id or credit code {key!r}; check the code (18 characters)"
        )
    return current.enterprise_owner(row)
