"""Liveness, the version being served, and this server's place in the serving registry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from geo import __version__
from geo.api.deps import atlas
from geo.api.tiles import tiles_prepared
from geo.atlas import Atlas

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The service status, its version, the data version served and the layers' sizes."""

    status: str
    version: str
    data_version: int
    counts: dict[str, int]
    worker: str = Field(description="This server's id in the serving registry (geo_serving)")
    heartbeat_age_seconds: float | None = Field(
        description="Seconds since this server last wrote its heartbeat; null when it keeps none "
        "(GEO_REFRESH_SECONDS=0). Alert as it nears GEO_HEARTBEAT_TTL_SECONDS."
    )
    heartbeat_ttl_seconds: float
    tiles_prepared: bool = Field(
        description="Whether every layer's tiles of the version served are prepared (encoded "
        "attributes, per-zoom geometry): made in the background after start and before each "
        "new version is served; until then a tile makes what its own layer needs"
    )


@router.get("/health", response_model=Health, summary="Service status and the data version served")
def health(request: Request, current: Annotated[Atlas, Depends(atlas)]) -> Health:
    """Service status and the data version served, with this server's worker id and the age
    of its last heartbeat (a stuck watcher shows as a growing age)."""
    holder = request.app.state.atlas
    age = holder.heartbeat_age
    return Health(
        status="ok",
        version=__version__,
        data_version=current.version,
        counts={name: len(table) for name, table in current.tables.items()},
        worker=holder.worker,
        heartbeat_age_seconds=None if age is None else round(age, 3),
        heartbeat_ttl_seconds=holder.heartbeat_ttl,
        tiles_prepared=tiles_prepared(request.app),
    )
