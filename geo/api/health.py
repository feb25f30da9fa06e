"""Liveness and the version being served."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from geo import __version__
from geo.api.deps import atlas
from geo.atlas import Atlas

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The service status, its version, the data version served and the layers' sizes."""

    status: str
    version: str
    data_version: int
    counts: dict[str, int]


@router.get("/health", response_model=Health, summary="Service status and the data version served")
def health(current: Annotated[Atlas, Depends(atlas)]) -> Health:
    """Service status and the data version served."""
    return Health(
        status="ok",
        version=__version__,
        data_version=current.version,
        counts={name: len(table) for name, table in current.tables.items()},
    )
