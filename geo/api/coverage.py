"""Coverage of the district, a street, a community or a grid by its children."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from geo.api.deps import atlas
from geo.api.people import people_index
from geo.atlas import Atlas
from geo.errors import InvalidInput
from geo.grids import coverage as cov

router = APIRouter(tags=["coverage"])


@router.get(
    "/coverage",
    summary="Areas, coverage ratio, overlaps, gaps, enterprise, building and officer figures",
)
def coverage(
    current: Annotated[Atlas, Depends(atlas)],
    level: Annotated[
        Literal["district", "street", "community", "grid"],
        Query(description="the area's level; its children are the next level down"),
    ] = "district",
    id: Annotated[
        str | None, Query(description="id or code of the street, community or grid")
    ] = None,
    geometry: Annotated[
        bool, Query(description="add GeoJSON geometries of overlaps and gaps")
    ] = False,
    min_area_m2: Annotated[
        float, Query(ge=0, description="ignore overlap and gap pieces smaller than this")
    ] = 1.0,
    limit: Annotated[
        int, Query(ge=0, le=10_000, description="list at most this many overlaps and gaps")
    ] = 100,
) -> dict[str, Any]:
    """The area's children: their areas, how well they cover it, overlaps and gaps, figures."""
    if level != "district" and not (id or "").strip():
        raise InvalidInput(f"level={level} needs id=<id or code of the {level}>")
    return cov.coverage(  # an unknown area is cov.UnknownAreaError: a 404
        current,
        level,
        id,
        geometry=geometry,
        min_area_m2=min_area_m2,
        limit=limit,
        teams=people_index(current).teams,
    )
